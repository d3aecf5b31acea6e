"""Sweeps: a base run config and axes over any config key, trained cell by cell (or stacked)
into ordinary run folders plus a table, ``sweep.parquet``; resumable.

>>> import grokscope.sweep as sweep
>>> result = sweep.run_sweep("my_sweep.yaml", "runs/sweeps/mine", backend="ensemble")   # doctest: +SKIP
>>> sweep.open_sweep("runs/sweeps/mine").table                                          # doctest: +SKIP
"""

from grokscope.sweep.backends import BACKENDS, run_sweep
from grokscope.sweep.cells import cell_state
from grokscope.sweep.spec import AxisSpec, Cell, SweepSpec, expand, load_sweep
from grokscope.sweep.table import SweepResult, is_sweep_folder, open_sweep

__all__ = [
    "BACKENDS",
    "AxisSpec",
    "Cell",
    "SweepResult",
    "SweepSpec",
    "cell_state",
    "expand",
    "is_sweep_folder",
    "load_sweep",
    "open_sweep",
    "run_sweep",
]
