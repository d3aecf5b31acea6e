"""Figures of runs: curves against a log-scaled step axis, as the papers draw them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

if not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")  # figures are files; never ask for a screen
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from grokscope.report.registry import run_figure
from grokscope.runner import Run

COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def save(figure: Figure, path: Path, svg: bool = True) -> list[Path]:
    """Write ``path`` (PNG) and, when asked, an SVG beside it; close the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = [path]
    figure.savefig(path, dpi=130, bbox_inches="tight")
    if svg:
        figure.savefig(path.with_suffix(".svg"), bbox_inches="tight")
        written.append(path.with_suffix(".svg"))
    plt.close(figure)
    return written


def _positive_steps(run: Run, column: str):
    frame = run.metrics[["step", column]].dropna() if column in run.metrics else None
    if frame is None:
        return None, None
    frame = frame[frame["step"] >= 1]  # step 0 has no place on a log axis
    return frame["step"].to_numpy(), frame[column].to_numpy()


def _mark_steps(axis, summary: Mapping, color: str, label_prefix: str = "") -> None:
    for key, style in (("fit_step", ":"), ("generalization_step", "--")):
        step = summary.get(key)
        if step:
            name = "fit" if key == "fit_step" else "generalization"
            axis.axvline(
                step, color=color, linestyle=style, linewidth=1, alpha=0.8, label=f"{label_prefix}{name} step {step}"
            )


@run_figure("curves")
def curves_figure(run: Run, out: Path) -> list[Path]:
    """``curves.png``: accuracy and loss against step (the figure every run has)."""
    return plot_run(run, out / "curves.png")


def plot_run(run: Run, path: Path) -> list[Path]:
    """Accuracy and loss on train and test against step (log axis); fit and generalization
    steps marked. Returns the files written."""
    summary = run.summary
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, kind in zip(axes, ("acc", "loss")):
        for split, color in (("train", COLORS[0]), ("test", COLORS[1])):
            steps, values = _positive_steps(run, f"{split}/{kind}")
            if steps is not None:
                axis.plot(steps, values, color=color, label=f"{split} {kind}")
        axis.set_xscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel("accuracy" if kind == "acc" else "loss")
        if kind == "loss":
            axis.set_yscale("log")
        else:
            _mark_steps(axis, summary, "gray")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:  # a regression run has no accuracy curves
            axis.legend(fontsize=8)
    figure.suptitle(f"{run.path.name}: phase {summary.get('phase', '?')}, status {summary.get('status', '?')}")
    return save(figure, path)


def plot_runs(
    runs: Mapping[str, Run], path: Path, columns: Sequence[str] = ("train/acc", "test/acc"), title: str = ""
) -> list[Path]:
    """Several runs in one figure, one panel per metric column; train columns dashed, the
    generalization step of each run marked on accuracy panels."""
    figure, axes = plt.subplots(1, len(columns), figsize=(5.5 * len(columns), 4), squeeze=False)
    for axis, column in zip(axes[0], columns):
        for index, (label, run) in enumerate(runs.items()):
            color = COLORS[index % len(COLORS)]
            steps, values = _positive_steps(run, column)
            if steps is None:
                continue
            axis.plot(steps, values, color=color, linestyle="--" if column.startswith("train") else "-", label=label)
            step = run.summary.get("generalization_step")
            if column.endswith("acc") and step:
                axis.axvline(step, color=color, linestyle=":", linewidth=1)
        axis.set_xscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel(column)
        if column.endswith("loss"):
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return save(figure, path)
