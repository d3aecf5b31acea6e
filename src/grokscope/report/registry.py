"""Figures that probe families contribute to ``grokscope report RUN``.

A figure function takes a run and an output folder, draws whatever it can from the run's
stored metrics and arrays (and nothing when the run lacks them), and returns the files it
wrote. Modules register theirs with ``@run_figure``; ``report`` calls every registered one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from grokscope.runner import Run

RunFigure = Callable[[Run, Path], list[Path]]
RUN_FIGURES: dict[str, RunFigure] = {}


def run_figure(name: str) -> Callable[[RunFigure], RunFigure]:
    """Register a figure function under ``name`` (also the stem of the files it writes)."""

    def register(function: RunFigure) -> RunFigure:
        RUN_FIGURES[name] = function
        return function

    return register


def draw_run_figures(run: Run, out: Path) -> list[Path]:
    """Call every registered figure function; returns all files written."""
    written: list[Path] = []
    for function in RUN_FIGURES.values():
        written.extend(function(run, out))
    return written
