"""Figures of the Zhao-framework probes (Zhao-A, Zhao-B; SPEC.md sec. 1), drawn from a run's
stored metrics and arrays; each draws nothing when the run lacks what it needs.

- ``rpd_gradient``: RPD gradient per hidden layer against step (heatmap and curves).
- ``rpd_curves``: RPD of each hidden layer at a few steps.
- ``basins``: basin curves at a few steps and basin sizes over time.
- ``lmap_pruning``: L-map / LP pruning accuracy against start layer, and "entering meditation".
- ``projection``: 2D projections of train and test before and after the generalization step.
- ``geometry``: cosines to class centres and between centres against layer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from grokscope.report.figures import COLORS, save
from grokscope.report.registry import run_figure
from grokscope.runner import Run


def layer_columns(metrics: pd.DataFrame, prefix: str) -> list[tuple[int, str]]:
    """(layer number, column) of every ``<prefix>layer<l>`` column, in layer order."""
    found = []
    for column in metrics.columns:
        match = re.fullmatch(re.escape(prefix) + r"layer(\d+)", column)
        if match:
            found.append((int(match.group(1)), column))
    return sorted(found)


def pick_steps(steps: Sequence[int], count: int = 5) -> list[int]:
    """Up to ``count`` of ``steps`` spread evenly in log(step + 1), first and last included."""
    steps = sorted(steps)
    if len(steps) <= count:
        return steps
    targets = np.linspace(np.log1p(steps[0]), np.log1p(steps[-1]), count)
    chosen = {min(steps, key=lambda s, t=t: abs(np.log1p(s) - t)) for t in targets}
    return sorted(chosen)


def before_after(steps: Sequence[int], event: int | None) -> tuple[int, int] | None:
    """The last step before ``event`` and the first at or after it (the middle and the last
    step when there is no event)."""
    steps = sorted(steps)
    if len(steps) < 2:
        return None
    if event is None or event <= steps[0] or event > steps[-1]:
        return steps[len(steps) // 2], steps[-1]
    before = max(s for s in steps if s < event)
    after = min(s for s in steps if s >= event)
    return before, after


def _mark_event(axis, run: Run) -> None:
    step = run.summary.get("generalization_step")
    if step:
        axis.axvline(step, color="gray", linestyle="--", linewidth=1, label=f"generalization step {step}")


def _positive(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    frame = frame[["step", column]].dropna()
    return frame[frame["step"] >= 1]


@run_figure("rpd_gradient")
def rpd_gradient_figure(run: Run, out: Path) -> list[Path]:
    """Heatmap of the RPD gradient (hidden layer x step, log step axis) and its curves."""
    metrics = run.metrics
    columns = layer_columns(metrics, "rpd/grad/")
    if not columns:
        return []
    frame = metrics[["step"] + [c for _, c in columns]].dropna()
    frame = frame[frame["step"] >= 1]
    if len(frame) < 2:
        return []
    steps = frame["step"].to_numpy(dtype=float)
    edges = np.concatenate([[steps[0] / 1.2], np.sqrt(steps[1:] * steps[:-1]), [steps[-1] * 1.2]])
    values = frame[[c for _, c in columns]].to_numpy().T  # (layers, steps)
    figure, (heat, lines) = plt.subplots(1, 2, figsize=(12, 4))
    layers = np.arange(len(columns) + 1) + 0.5
    mesh = heat.pcolormesh(edges, layers, values, cmap="viridis", shading="flat")
    figure.colorbar(mesh, ax=heat, label="RPD gradient")
    heat.set_xscale("log")
    heat.set_yticks([n for n, _ in columns])
    heat.set_ylabel("hidden layer")
    heat.set_xlabel("step")
    for index, (number, column) in enumerate(columns):
        color = plt.cm.viridis(index / max(len(columns) - 1, 1))
        lines.plot(steps, frame[column], color=color, label=f"layer {number}")
    _mark_event(lines, run)
    lines.set_xscale("log")
    lines.set_xlabel("step")
    lines.set_ylabel("RPD gradient")
    lines.grid(alpha=0.3)
    lines.legend(fontsize=7, ncol=2)
    figure.suptitle(f"{run.path.name}: RPD gradient (Zhao-B fig. 3)")
    return save(figure, out / "rpd_gradient.png")


@run_figure("rpd_curves")
def rpd_curves_figure(run: Run, out: Path) -> list[Path]:
    """Pooled RPD of each hidden layer (up to six) at up to five steps."""
    stored = run.arrays("rpd")
    if not stored:
        return []
    steps = pick_steps(list(stored))
    names = sorted((k for k in stored[steps[-1]] if re.fullmatch(r"layer\d+", k)), key=lambda k: int(k[5:]))
    if len(names) > 6:
        names = [names[i] for i in np.linspace(0, len(names) - 1, 6).round().astype(int)]
    figure, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), squeeze=False)
    for axis, name in zip(axes[0], names):
        for index, step in enumerate(steps):
            density = stored[step][name]
            centres = (np.arange(len(density)) + 0.5) / len(density)
            axis.plot(centres, density, color=plt.cm.plasma(index / max(len(steps) - 1, 1)), label=f"step {step}")
        axis.axhline(1.0, color="gray", linewidth=0.8)
        axis.set_title(name)
        axis.set_xlabel("rank position")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("density")
    axes[0][0].legend(fontsize=7)
    figure.suptitle(f"{run.path.name}: RPD (Zhao-B fig. 2c-e)")
    return save(figure, out / "rpd_curves.png")


@run_figure("basins")
def basins_figure(run: Run, out: Path) -> list[Path]:
    """Mean basin curves at a few steps (sample and weight space) and basin sizes over time."""
    stored = run.arrays("basins")
    if not stored:
        return []
    spaces = [s for s in ("sample", "weight") if f"{s}_mean" in next(iter(stored.values()))]
    steps = pick_steps([s for s, arrays in stored.items() if spaces and f"{spaces[0]}_mean" in arrays])
    figure, axes = plt.subplots(1, len(spaces) + 1, figsize=(5 * (len(spaces) + 1), 3.8), squeeze=False)
    for axis, space in zip(axes[0], spaces):
        for index, step in enumerate(steps):
            arrays = stored[step]
            axis.plot(
                arrays["amplitudes"],
                arrays[f"{space}_mean"],
                marker=".",
                color=plt.cm.plasma(index / max(len(steps) - 1, 1)),
                label=f"step {step}",
            )
        axis.axhline(0.5, color="gray", linewidth=0.8)
        axis.set_xscale("log")
        axis.set_xlabel("noise amplitude")
        axis.set_ylabel("accuracy of correct training samples")
        axis.set_title(f"{space} space")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    sizes = axes[0][-1]
    metrics = run.metrics
    for index, space in enumerate(spaces):
        for key, style in (("size50", "-"), ("size_half", ":")):
            column = f"basins/{space}/{key}"
            if column in metrics:
                frame = _positive(metrics, column)
                sizes.plot(frame["step"], frame[column], style, color=COLORS[index], label=f"{space} {key}")
    _mark_event(sizes, run)
    sizes.set_xscale("log")
    sizes.set_yscale("log")
    sizes.set_xlabel("step")
    sizes.set_ylabel("basin size (amplitude)")
    sizes.grid(alpha=0.3)
    sizes.legend(fontsize=7)
    figure.suptitle(f"{run.path.name}: attraction basins (Zhao-B figs. 4, 7b)")
    return save(figure, out / "basins.png")


@run_figure("lmap_pruning")
def lmap_pruning_figure(run: Run, out: Path) -> list[Path]:
    """Pruning accuracy against start layer at the last step, and L-map pruning accuracy on the
    training set over time ("entering meditation", Zhao-A fig. 10)."""
    metrics = run.metrics
    prune = {split: layer_columns(metrics, f"lmap/prune_acc/{split}/") for split in ("train", "test")}
    if not any(prune.values()):
        return []
    last = metrics.dropna(subset=[c for columns in prune.values() for _, c in columns]).iloc[-1]
    figure, (by_layer, meditation) = plt.subplots(1, 2, figsize=(12, 4))
    for split, style in (("train", "-"), ("test", "--")):
        for kind, color in (("prune_acc", COLORS[0]), ("lp_acc", COLORS[1])):
            columns = layer_columns(metrics, f"lmap/{kind}/{split}/")
            if columns:
                label = f"{'L-map' if kind == 'prune_acc' else 'LP'} {split}"
                by_layer.plot(
                    [n for n, _ in columns], [last[c] for _, c in columns], style, marker="o", color=color, label=label
                )
        if f"{split}/acc" in metrics:
            by_layer.axhline(last[f"{split}/acc"], color="gray", linestyle=style, linewidth=1, label=f"network {split}")
    by_layer.set_xlabel("start layer (layers from it onward replaced)")
    by_layer.set_ylabel("accuracy")
    by_layer.set_title(f"step {int(last['step'])}")
    by_layer.grid(alpha=0.3)
    by_layer.legend(fontsize=7)
    for index, (number, column) in enumerate(prune["train"]):
        frame = _positive(metrics, column)
        meditation.plot(
            frame["step"],
            frame[column],
            color=plt.cm.viridis(index / max(len(prune["train"]) - 1, 1)),
            label=f"start {number}",
        )
    if "train/acc" in metrics:
        frame = _positive(metrics, "train/acc")
        meditation.plot(frame["step"], frame["train/acc"], color="black", linewidth=2, label="network")
    _mark_event(meditation, run)
    meditation.set_xscale("log")
    meditation.set_xlabel("step")
    meditation.set_ylabel("L-map pruning accuracy (train)")
    meditation.grid(alpha=0.3)
    meditation.legend(fontsize=6, ncol=2)
    figure.suptitle(f"{run.path.name}: L-map and LP pruning (Zhao-A figs. 3a-b, 10)")
    return save(figure, out / "lmap_pruning.png")


def draw_projection(axis, arrays: dict[str, np.ndarray], classes: Sequence[int]) -> None:
    """Train (dots) and test (crosses) projections of a few classes on one axis."""
    for index, label in enumerate(classes):
        color = COLORS[index % len(COLORS)]
        for split, marker, size in (("train", "o", 6), ("test", "x", 14)):
            points = arrays[f"proj_{split}"][arrays[f"y_{split}"] == label]
            axis.scatter(
                points[:, 0],
                points[:, 1],
                s=size,
                marker=marker,
                color=color,
                alpha=0.6,
                linewidths=0.8,
                label=f"{label} {split}",
            )


@run_figure("projection")
def projection_figure(run: Run, out: Path, classes: Sequence[int] = (0, 2, 5)) -> list[Path]:
    """2D projections before and after the generalization step: eval mode (geometry probe) and,
    when stored, batch-statistics mode (batchnorm probe) (Zhao-B figs. 6-7)."""
    sources = [(probe, title) for probe, title in (("geometry", "eval mode"), ("batchnorm", "batch statistics"))]
    rows = []
    for probe, title in sources:
        stored = {s: a for s, a in run.arrays(probe).items() if "proj_train" in a}
        pair = before_after(list(stored), run.summary.get("generalization_step"))
        if pair:
            rows.append((title, stored, pair))
    if not rows:
        return []
    figure, axes = plt.subplots(len(rows), 2, figsize=(10, 4.3 * len(rows)), squeeze=False, layout="constrained")
    for row, (title, stored, pair) in zip(axes, rows):
        for axis, step, when in zip(row, pair, ("before", "after")):
            draw_projection(axis, stored[step], classes)
            axis.set_title(f"{title}, step {step} ({when})")
            axis.set_xlabel("v1 . x")
            axis.set_ylabel("v2 . x")
            axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, ncol=2)
    figure.suptitle(f"{run.path.name}: last hidden layer on the leading singular directions of W^(L)")
    return save(figure, out / "projection.png")


@run_figure("geometry")
def geometry_figure(run: Run, out: Path) -> list[Path]:
    """Mean cosine to the class centre and between centres against layer at a few steps."""
    metrics = run.metrics
    centre = layer_columns(metrics, "geometry/cos_centre/")
    between = layer_columns(metrics, "geometry/cos_between/")
    if not centre:
        return []
    frame = metrics.dropna(subset=[c for _, c in centre])
    steps = pick_steps(frame["step"].astype(int).tolist(), 4)
    figure, axis = plt.subplots(figsize=(6, 4))
    for index, step in enumerate(steps):
        row = frame[frame["step"] == step].iloc[0]
        color = plt.cm.plasma(index / max(len(steps) - 1, 1))
        axis.plot([n for n, _ in centre], [row[c] for _, c in centre], "-o", color=color, label=f"to centre, {step}")
        axis.plot([n for n, _ in between], [row[c] for _, c in between], ":s", color=color, label=f"between, {step}")
    axis.set_xlabel("hidden layer")
    axis.set_ylabel("mean cosine")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    figure.suptitle(f"{run.path.name}: class geometry (Zhao-A fig. 3e-f)")
    return save(figure, out / "geometry.png")
