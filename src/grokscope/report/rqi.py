"""Figures of representation quality (Liu sec. 3.1): a run's RQI over training, and RQI,
accuracy and steps to RQI > 0.95 against the training fraction over many runs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from grokscope.report.figures import COLORS, plt, save
from grokscope.report.registry import run_figure
from grokscope.runner import Run


@run_figure("rqi")
def rqi_figure(run: Run, out: Path) -> list[Path]:
    """``rqi.png``: RQI, Acc and Acc_hat over training with the ideal bounds, and the embedding
    trajectories when they are one-dimensional (Liu fig. 4d). Nothing without the rqi probe."""
    metrics = run.metrics
    if "rqi/rqi" not in metrics:
        return []
    frame = metrics[metrics["step"] >= 1]
    arrays = run.arrays("rqi")
    one_dimensional = bool(arrays) and next(iter(arrays.values()))["embeddings"].squeeze().ndim == 1
    figure, axes = plt.subplots(
        1, 2 if one_dimensional else 1, figsize=(11 if one_dimensional else 6, 4), squeeze=False
    )
    axis = axes[0, 0]
    for column, label, color in (
        ("rqi/rqi", "RQI", COLORS[0]),
        ("rqi/acc", "Acc", COLORS[1]),
        ("rqi/acc_hat", "Acc_hat (from parallelograms)", COLORS[2]),
    ):
        data = frame[["step", column]].dropna()
        axis.plot(data["step"], data[column], color=color, label=label)
    for column, label, color in (("rqi/rqi_bar", "RQI_bar", COLORS[0]), ("rqi/acc_bar", "Acc_bar", COLORS[2])):
        if column in frame and frame[column].notna().any():
            axis.axhline(float(frame[column].dropna().iloc[-1]), color=color, linestyle=":", label=label)
    axis.set_xscale("log")
    axis.set_xlabel("step")
    axis.set_ylim(-0.02, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    if one_dimensional:
        steps = sorted(arrays)
        table = np.array([arrays[s]["embeddings"].squeeze() for s in steps])  # (T, p)
        table = (table - table.mean(axis=1, keepdims=True)) / table.std(axis=1, keepdims=True)
        trajectory = axes[0, 1]
        for k in range(table.shape[1]):
            trajectory.plot(np.maximum(steps, 1), table[:, k], color=plt.cm.viridis(k / max(1, table.shape[1] - 1)))
        trajectory.set_xscale("log")
        trajectory.set_xlabel("step")
        trajectory.set_ylabel("normalized embedding E_k (colour: k)")
        trajectory.grid(alpha=0.3)
    figure.suptitle(f"{run.path.name}: representation quality")
    return save(figure, out / "rqi.png")


def plot_rqi_vs_fraction(points: Sequence, path: Path, title: str = "", best: bool = False) -> list[Path]:
    """Four panels over runs (``experiments.liu.RQIPoint``): final RQI and RQI_bar, Acc and Acc_hat
    against the training fraction, Acc against Acc_hat, steps to RQI > 0.95 (never reached: at the
    top, hollow). Lines: the median per fraction, or the best run when ``best`` (Liu fig. 18)."""
    fractions = np.array([p.fraction for p in points])
    levels = np.unique(np.round(fractions, 4))
    pick = np.max if best else np.median
    figure, axes = plt.subplots(1, 4, figsize=(20, 4.2))

    def line(axis, values, color, label):
        values = np.asarray(values, dtype=float)
        summary = [pick(values[np.isclose(fractions, f, atol=1e-4)]) for f in levels]
        axis.plot(levels, summary, color=color, label=f"{label} ({'best' if best else 'median'})")

    rqi = [p.rqi for p in points]
    axes[0].scatter(fractions, rqi, s=14, color=COLORS[0], alpha=0.6)
    line(axes[0], rqi, COLORS[0], "RQI")
    bars = np.array([p.rqi_bar for p in points], dtype=float)
    if np.isfinite(bars).any():
        axes[0].scatter(fractions, bars, s=14, marker="x", color=COLORS[3], label="RQI_bar (ideal)")
    axes[0].set_ylabel("RQI at the end of training")
    for column, color, label in (("acc", COLORS[1], "Acc"), ("acc_hat", COLORS[2], "Acc_hat")):
        values = [getattr(p, column) for p in points]
        axes[1].scatter(fractions, values, s=14, color=color, alpha=0.6)
        line(axes[1], values, color, label)
    axes[1].plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="memorization (Acc = r)")
    axes[1].set_ylabel("accuracy on the whole dataset")
    axes[2].scatter([p.acc_hat for p in points], [p.acc for p in points], c=fractions, cmap="viridis", s=18)
    axes[2].plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1)
    axes[2].set_xlabel("Acc_hat (predicted from parallelograms)")
    axes[2].set_ylabel("Acc (measured)")
    budget = max((p.budget for p in points), default=1)
    steps = np.array([p.steps_to_rqi for p in points], dtype=float)
    reached = np.isfinite(steps)
    axes[3].scatter(fractions[reached], np.maximum(steps[reached], 1), s=14, color=COLORS[4])
    axes[3].scatter(
        fractions[~reached],
        np.full((~reached).sum(), budget),
        s=18,
        facecolors="none",
        edgecolors=COLORS[4],
        label=f"not within {budget} steps",
    )
    medians = [pick(steps[np.isclose(fractions, f, atol=1e-4)]) for f in levels]
    shown = [(f, m) for f, m in zip(levels, medians) if math.isfinite(m)]
    if shown:
        axes[3].plot(*zip(*shown), color=COLORS[4], label="best" if best else "median")
    axes[3].set_yscale("log")
    axes[3].set_ylabel("steps to RQI > 0.95")
    for axis in axes[[0, 1, 3]]:
        axis.set_xlabel("training fraction r")
    for axis in axes:
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return save(figure, path)
