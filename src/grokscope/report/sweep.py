"""Figures of a sweep, drawn from its table (``sweep.parquet``): the phase diagram (Liu fig. 6),
any metric as a heatmap over two axes, and steps-to-generalize against one axis with seeds as
error bars.

The x and y of the two-axis figures are the sweep's first two non-seed axes (spec order). Cells
that differ only in seed are pooled: the phase shown is the most common one among the seeds
(ties: the first in the order comprehension, grokking, memorization, confusion), numbers are
medians over the seeds that reached them. A sweep drawn at random (``samples``) is drawn as a
scatter plot instead of a grid.

>>> from grokscope.sweep import open_sweep
>>> plot_phase_diagram(open_sweep("runs/sweeps/liu_toy_lr_wd"), Path("phase.png"))   # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm
from matplotlib.patches import Patch

from grokscope.analysis.phases import PHASES
from grokscope.report.figures import COLORS, save
from grokscope.sweep.spec import SEED_AXIS, format_value, short_keys
from grokscope.sweep.table import SweepResult

# the paper's colours are not given as values; these keep the four phases apart, and the
# Goldilocks zone (comprehension, grokking) in warm colours
PHASE_COLORS = {
    "comprehension": COLORS[2],  # green
    "grokking": COLORS[1],  # orange
    "memorization": COLORS[0],  # blue
    "confusion": COLORS[7],  # grey
    "diverged": "#000000",
    "failed": "#d62728",
    "not run": "#ffffff",
}


def _axes(sweep: SweepResult) -> list[str]:
    return [a for a in sweep.axes if a != SEED_AXIS]


def _ordered_values(sweep: SweepResult, key: str) -> list[Any]:
    """The values of an axis in the order of the spec's grid (first appearance among cells)."""
    seen: list[Any] = []
    for cell in sweep.record["cells"]:
        value = cell["values"].get(key)
        value = json.dumps(value) if isinstance(value, (list, dict)) else value
        if value not in seen:
            seen.append(value)
    return seen


def _sampled(sweep: SweepResult) -> bool:
    return sweep.record["spec"].get("samples") is not None


def cell_phase(table: pd.DataFrame) -> str:
    """The label of a group of seeds: the most common phase of finished cells; a group with no
    finished cell shows its status (diverged, failed, not run)."""
    done = table[table["status"] == "finished"]
    if len(done):
        counts = Counter(p for p in done["phase"] if p in PHASES)
        if counts:
            top = max(counts.values())
            return next(p for p in PHASES if counts.get(p) == top)
    statuses = set(table["status"])
    for status in ("diverged", "failed"):
        if status in statuses:
            return status
    return "not run"


def _median(values: pd.Series) -> float | None:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.median()) if len(values) else None


def grid(sweep: SweepResult, column: str | None = None) -> tuple[list[Any], list[Any], np.ndarray]:
    """(x values, y values, array (ny, nx)) over the first two non-seed axes: the phase label
    per cell when ``column`` is None, else the median of ``column`` over seeds (NaN where none).
    A sweep of one axis gives one row (y values ``[None]``)."""
    axes = _axes(sweep)
    if not axes:
        raise ValueError(f"{sweep.path}: the sweep has no axis besides the seed")
    table = sweep.table
    xs = _ordered_values(sweep, axes[0])
    ys = _ordered_values(sweep, axes[1]) if len(axes) > 1 else [None]
    out = np.empty((len(ys), len(xs)), dtype=object if column is None else float)
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            mask = table[axes[0]] == x
            if len(axes) > 1:
                mask &= table[axes[1]] == y
            group = table[mask]
            if column is None:
                out[j, i] = cell_phase(group)
            else:
                value = _median(group[column]) if column in group else None
                out[j, i] = np.nan if value is None else value
    return xs, ys, out


def _label(key: str, keys: list[str]) -> str:
    """Axis title: the full dotted key (``optimizer.groups.decoder.lr``); legends use short keys."""
    return key


def _ticks(axis, xs: list[Any], ys: list[Any]) -> None:
    axis.set_xticks(range(len(xs)), [format_value(v) for v in xs], rotation=45, ha="right")
    axis.set_yticks(range(len(ys)), ["" if v is None else format_value(v) for v in ys])


def plot_phase_diagram(sweep: SweepResult, path: Path) -> list[Path]:
    """The phase diagram (Liu et al. fig. 6): colour = phase of learning (Liu appendix A, table 1)
    over the first two non-seed axes, each cell's generalization step as text (median over
    seeds; "-" where the test threshold was never reached). Returns the files written."""
    axes = _axes(sweep)
    table = sweep.table
    figure, axis = plt.subplots(figsize=(7.5, 6))
    present: list[str] = []
    if _sampled(sweep) and len(axes) > 1:
        for label in (*PHASES, "diverged", "failed", "not run"):
            rows = table[[cell_phase(table.loc[[i]]) == label for i in table.index]]
            if len(rows):
                present.append(label)
                axis.scatter(rows[axes[0]], rows[axes[1]], color=PHASE_COLORS[label], edgecolor="k", s=60)
        for name, setter in ((axes[0], axis.set_xscale), (axes[1], axis.set_yscale)):
            values = pd.to_numeric(table[name], errors="coerce").dropna()
            if len(values) and values.min() > 0 and values.max() / values.min() > 100:
                setter("log")
    else:
        xs, ys, phases = grid(sweep)
        _, _, steps = grid(sweep, "generalization_step")
        labels = [*PHASES, "diverged", "failed", "not run"]
        codes = np.vectorize(labels.index)(phases).astype(float)
        cmap = ListedColormap([PHASE_COLORS[label] for label in labels])
        norm = BoundaryNorm(np.arange(len(labels) + 1) - 0.5, cmap.N)
        axis.imshow(codes, cmap=cmap, norm=norm, origin="lower", aspect="auto")
        for j in range(len(ys)):
            for i in range(len(xs)):
                step = steps[j, i]
                text = "-" if np.isnan(step) else f"{step:.3g}"
                axis.text(
                    i,
                    j,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if phases[j, i] in ("diverged", "memorization") else "black",
                )
        _ticks(axis, xs, ys)
        present = [label for label in labels if (phases == label).any()]
    axis.set_xlabel(_label(axes[0], axes))
    if len(axes) > 1:
        axis.set_ylabel(_label(axes[1], axes))
    axis.legend(
        handles=[Patch(facecolor=PHASE_COLORS[p], edgecolor="k", label=p) for p in present],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
    )
    seeds = (
        f", {table['cell'].nunique() // max(1, len(table.drop_duplicates(axes)))} seeds"
        if SEED_AXIS in sweep.axes
        else ""
    )
    budget = pd.to_numeric(table.get("step"), errors="coerce").max() if "step" in table else None
    budget_text = f", {budget:.3g} steps" if budget is not None and budget == budget else ""
    axis.set_title(f"{sweep.name}: phases{seeds}{budget_text} (text: steps to generalize)", fontsize=10)
    return save(figure, path)


def plot_metric_heatmap(sweep: SweepResult, column: str, path: Path) -> list[Path]:
    """Any table column (``generalization_step``, ``final/test/acc``...) as a heatmap over the
    first two non-seed axes, median over seeds; step columns on a log colour scale."""
    axes = _axes(sweep)
    if column not in sweep.table:
        raise ValueError(f"{column!r} is not a column of the sweep table; columns: {', '.join(sweep.table.columns)}")
    xs, ys, values = grid(sweep, column)
    figure, axis = plt.subplots(figsize=(7, 6))
    positive = values[np.isfinite(values) & (values > 0)]
    log = "step" in column and positive.size > 0
    norm = LogNorm(vmin=positive.min(), vmax=max(positive.max(), positive.min() * 10)) if log else None
    image = axis.imshow(np.ma.masked_invalid(values), origin="lower", aspect="auto", norm=norm, cmap="viridis")
    axis.set_facecolor("#dddddd")  # cells without a value (never reached, not run)
    figure.colorbar(image, ax=axis, label=column)
    _ticks(axis, xs, ys)
    axis.set_xlabel(_label(axes[0], axes))
    if len(axes) > 1:
        axis.set_ylabel(_label(axes[1], axes))
    axis.set_title(f"{sweep.name}: {column} (grey: none)", fontsize=10)
    return save(figure, path)


def plot_steps_vs_axis(
    sweep: SweepResult, path: Path, axis_key: str | None = None, column: str = "generalization_step"
) -> list[Path]:
    """Steps to generalize (``column``) against one axis (default the first), one line per value
    of the second axis if any; points are the mean over the seeds that generalized, error bars
    their standard deviation; the step axis is log-scaled. Cells that never generalized are
    counted in the legend."""
    axes = _axes(sweep)
    axis_key = axis_key or axes[0]
    others = [a for a in axes if a != axis_key]
    table = sweep.table
    xs = _ordered_values(sweep, axis_key)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
    series = _ordered_values(sweep, others[0]) if others else [None]
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for n, value in enumerate(series):
        rows = table if value is None else table[table[others[0]] == value]
        means, stds, positions, missing = [], [], [], 0
        for i, x in enumerate(xs):
            steps = pd.to_numeric(rows.loc[rows[axis_key] == x, column], errors="coerce")
            missing += int(steps.isna().sum())
            steps = steps.dropna()
            if len(steps):
                positions.append(x if numeric else i)
                means.append(float(steps.mean()))
                stds.append(float(steps.std(ddof=0)))
        label = "" if value is None else f"{short_keys(axes)[others[0]]}={format_value(value)}"
        label += f" ({missing} never)" if missing else ""
        axis.errorbar(
            positions, means, yerr=stds, marker="o", capsize=3, color=COLORS[n % len(COLORS)], label=label or None
        )
    if any(line.get_ydata().size for line in axis.get_lines()):
        axis.set_yscale("log")
    else:
        axis.text(0.5, 0.5, "no cell reached the test threshold", ha="center", transform=axis.transAxes)
    if numeric:
        values = np.asarray(xs, dtype=float)
        if values.min() > 0 and values.max() / values.min() > 50:
            axis.set_xscale("log")
    else:
        axis.set_xticks(range(len(xs)), [format_value(v) for v in xs], rotation=45, ha="right")
    axis.set_xlabel(_label(axis_key, axes))
    axis.set_ylabel(f"{column} (mean ± std over seeds)")
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7, ncol=2)
    axis.set_title(f"{sweep.name}: {column} vs {_label(axis_key, axes)}", fontsize=10)
    return save(figure, path)


def draw_sweep_figures(sweep: SweepResult, out: Path) -> list[Path]:
    """What ``grokscope report SWEEP_DIR`` draws: phase_diagram, heatmaps of the generalization
    step and the final test accuracy (two or more axes), generalization step vs the first axis."""
    out = Path(out)
    written = plot_phase_diagram(sweep, out / "phase_diagram.png")
    table = sweep.table
    if len(_axes(sweep)) > 1 and not _sampled(sweep):
        for column, name in (
            ("generalization_step", "heatmap_generalization_step"),
            ("final/test/acc", "heatmap_test_acc"),
        ):
            if column in table:
                written += plot_metric_heatmap(sweep, column, out / f"{name}.png")
    if "generalization_step" in table:
        written += plot_steps_vs_axis(sweep, out / "generalization_vs_axis.png")
    return written
