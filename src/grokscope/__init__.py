"""grokscope: a laboratory for the dynamics of learning.

>>> import grokscope
>>> config = grokscope.load_config("my_run.yaml")          # doctest: +SKIP
>>> run = grokscope.run(config, out="runs/my_run")          # doctest: +SKIP
>>> run.summary["phase"], run.metrics.tail()                # doctest: +SKIP
"""

from grokscope.config import RunConfig, load_config, parse_config
from grokscope.errors import ConfigError, GrokscopeError, RunFolderError
from grokscope.runner import Experiment, Run, open_run, run

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Experiment",
    "GrokscopeError",
    "Run",
    "RunConfig",
    "RunFolderError",
    "__version__",
    "load_config",
    "open_run",
    "parse_config",
    "run",
]
