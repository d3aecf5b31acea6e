"""Figures and reports drawn from run folders (they read only the store)."""

from grokscope.report.figures import plot_run, plot_runs, save

__all__ = ["plot_run", "plot_runs", "save"]
