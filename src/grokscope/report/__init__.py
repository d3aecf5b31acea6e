"""Figures and reports drawn from run folders (they read only the store).

Probe families add figures with ``@run_figure("name")`` in a module here; import the module
below so it registers.
"""

from grokscope.report import embedding, figures, oinfo, rqi, theory, zhao
from grokscope.report.figures import plot_run, plot_runs, save
from grokscope.report.registry import RUN_FIGURES, draw_run_figures, run_figure

__all__ = [
    "RUN_FIGURES",
    "draw_run_figures",
    "embedding",
    "figures",
    "oinfo",
    "plot_run",
    "plot_runs",
    "rqi",
    "run_figure",
    "save",
    "theory",
    "zhao",
]
