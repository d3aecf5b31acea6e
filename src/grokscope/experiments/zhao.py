"""Analysis of the Zhao-framework reproductions (Zhao-A, Zhao-B; SPEC.md sec. 1).

Each function reads the runs of one catalogue entry, returns the numbers its rule reads, and
draws the entry's ``figure.png``:

- ``tanh_vs_linear`` (``zhao_tanh_vs_linear``): test accuracy against training-set size for the
  tanh network, the linear network (LNN), and the tanh network's LP and L-map; RPD gradients at
  the smallest and largest sizes (Zhao-A fig. 2a-d, Zhao-B fig. 2a-d).
- ``rpd_over_training`` (``zhao_rpd_over_training``): rise, peak and fall of the RPD gradient of
  a shallow tanh network over training (Zhao-B fig. 2e).
- ``batchnorm_grokking`` (``zhao_batchnorm_grokking``): the delay of test accuracy in eval mode
  and in batch-statistics mode after the training set is fit (Zhao-B figs. 3g, 6).
- ``shallow_grokking`` (``zhao_shallow_grokking``): basin sizes before and after the grokking
  step, and the RPD-gradient peaks (Zhao-B fig. 7).
- ``pruning_vs_start_layer`` (``zhao_pruning_depth``): the first start layer at which LP and
  L-map pruning are exact (Zhao-A fig. 3a-b, Zhao-B fig. 3h).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grokscope.analysis.phases import first_step_reaching
from grokscope.report.figures import COLORS, plt, save
from grokscope.report.zhao import before_after, draw_projection, layer_columns, pick_steps
from grokscope.runner import Run
from grokscope.tasks.base import build_task

EXACT_TOLERANCE = 0.01
"""Pruning counts as exact when its test accuracy is within this of the network's."""


def first_step(metrics: pd.DataFrame, column: str, threshold: float) -> float:
    """First evaluated step with ``column >= threshold`` (inf when never)."""
    frame = metrics[["step", column]].dropna()
    step = first_step_reaching(frame["step"].to_numpy(), frame[column].to_numpy(), threshold)
    return math.inf if step is None else float(step)


def halfway_step(metrics: pd.DataFrame, column: str, chance: float) -> float:
    """First evaluated step where ``column`` reaches half-way from chance to its final value."""
    final = float(metrics[column].dropna().iloc[-1])
    return first_step(metrics, column, chance + 0.5 * (final - chance))


def value_at(metrics: pd.DataFrame, column: str, step: float) -> float:
    """The value at the last evaluated step <= ``step`` (NaN before the first)."""
    frame = metrics[["step", column]].dropna()
    frame = frame[frame["step"] <= step]
    return float(frame[column].iloc[-1]) if len(frame) else math.nan


def _log_axis(axis, label: str = "step") -> None:
    axis.set_xscale("log")
    axis.set_xlabel(label)
    axis.grid(alpha=0.3)


def _curve(axis, metrics: pd.DataFrame, column: str, **style) -> None:
    frame = metrics[["step", column]].dropna()
    frame = frame[frame["step"] >= 1]
    axis.plot(frame["step"], frame[column], **style)


# -- 1. shallow tanh vs linear network ---------------------------------------------------------


def tanh_vs_linear(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """Runs labelled ``<tanh|linear>_n<size>[_s<seed>]``. Numbers (means over seeds):
    ``acc_<kind>_small|large`` (test accuracy at the smallest / largest size), ``gap_small`` and
    ``gap_large`` (tanh minus linear), ``rpd_<kind>_small|large`` (final RPD gradient)."""
    cells: dict[tuple[str, int], list[dict[str, float]]] = defaultdict(list)
    rpds: dict[tuple[str, int], list[np.ndarray]] = defaultdict(list)
    for label, run in runs.items():
        match = re.fullmatch(r"(tanh|linear)_n(\d+)(?:_s\d+)?", label)
        if match is None:
            continue
        key = (match.group(1), int(match.group(2)))
        final = run.summary["final"]
        cells[key].append(
            {
                "acc": final["test/acc"],
                "rpd": final["rpd/grad/layer1"],
                "lp": final["lmap/lp_acc/test/layer1"],
                "lmap": final["lmap/prune_acc/test/layer1"],
            }
        )
        stored = run.arrays("rpd")
        rpds[key].append(stored[max(stored)]["layer1"])
    mean = {
        key: {name: float(np.mean([c[name] for c in values])) for name in values[0]} for key, values in cells.items()
    }
    sizes = sorted({n for _, n in mean})
    small, large = sizes[0], sizes[-1]
    numbers: dict[str, Any] = {"n_small": small, "n_large": large}
    for kind in ("tanh", "linear"):
        for name, n in (("small", small), ("large", large)):
            numbers[f"acc_{kind}_{name}"] = mean[(kind, n)]["acc"]
            numbers[f"rpd_{kind}_{name}"] = mean[(kind, n)]["rpd"]
    numbers["gap_small"] = numbers["acc_tanh_small"] - numbers["acc_linear_small"]
    numbers["gap_large"] = numbers["acc_tanh_large"] - numbers["acc_linear_large"]

    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for (kind, name, label), color in zip(
        [
            ("tanh", "acc", "tanh network"),
            ("linear", "acc", "linear network (LNN)"),
            ("tanh", "lp", "LP of the tanh network"),
            ("tanh", "lmap", "L-map of the tanh network"),
        ],
        COLORS,
    ):
        axes[0].plot(sizes, [mean[(kind, n)][name] for n in sizes], "-o", color=color, label=label)
    axes[0].set_ylabel("test accuracy")
    _log_axis(axes[0], "training-set size")
    axes[0].legend(fontsize=8)
    for axis, n in zip(axes[1:], (small, large)):
        for kind, color in (("tanh", COLORS[0]), ("linear", COLORS[1])):
            density = np.mean(rpds[(kind, n)], axis=0)  # over seeds
            centres = (np.arange(len(density)) + 0.5) / len(density)
            axis.plot(centres, density, color=color, label=f"{kind}: gradient {mean[(kind, n)]['rpd']:.2f}")
        axis.set_title(f"RPD of the hidden layer, {n} training samples")
        axis.set_xlabel("rank position")
        axis.set_ylabel("density")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("Shallow tanh vs linear network on digits (Zhao-A fig. 2, Zhao-B fig. 2a-d)")
    save(figure, out / "figure.png")
    return numbers


# -- 2. RPD gradient over training -------------------------------------------------------------


def rpd_over_training(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """One run. Numbers: ``initial`` (step 0), ``peak``, ``peak_step``, ``final``, ``final_step``
    of ``rpd/grad/layer1``; ``rise = peak - initial``, ``fall = peak - final``."""
    run = next(iter(runs.values()))
    metrics = run.metrics
    frame = metrics[["step", "rpd/grad/layer1"]].dropna()
    values = frame["rpd/grad/layer1"].to_numpy()
    steps = frame["step"].to_numpy()
    peak_index = int(np.argmax(values))
    numbers = {
        "initial": float(values[0]),
        "peak": float(values[peak_index]),
        "peak_step": int(steps[peak_index]),
        "final": float(values[-1]),
        "final_step": int(steps[-1]),
    }
    numbers["rise"] = numbers["peak"] - numbers["initial"]
    numbers["fall"] = numbers["peak"] - numbers["final"]

    figure, axes = plt.subplots(1, 3, figsize=(16, 4))
    for column, color in (("train/acc", COLORS[0]), ("test/acc", COLORS[1]), ("lmap/prune_acc/test/layer1", COLORS[2])):
        if column in metrics:
            _curve(axes[0], metrics, column, color=color, label=column)
    gradient = axes[0].twinx()
    _curve(gradient, metrics, "rpd/grad/layer1", color="black", label="RPD gradient")
    gradient.axvline(numbers["peak_step"], color="black", linestyle=":", linewidth=1)
    gradient.set_ylabel("RPD gradient")
    axes[0].set_ylabel("accuracy")
    _log_axis(axes[0])
    axes[0].legend(fontsize=7, loc="center left")
    stored = run.arrays("rpd")
    for index, step in enumerate(pick_steps(list(stored), 6)):
        density = stored[step]["layer1"]
        centres = (np.arange(len(density)) + 0.5) / len(density)
        axes[1].plot(centres, density, color=plt.cm.plasma(index / 5), label=f"step {step}")
    axes[1].set_xlabel("rank position")
    axes[1].set_ylabel("density")
    axes[1].set_title("RPD of the hidden layer over training")
    axes[1].grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    class_steps = sorted(s for s in stored if s >= 1)
    per_class = np.array([stored[s]["layer1_grad_per_class"] for s in class_steps])
    for k in range(per_class.shape[1]):
        axes[2].plot(class_steps, per_class[:, k], color=plt.cm.tab10(k), label=f"class {k}")
    axes[2].set_ylabel("RPD gradient per class")
    _log_axis(axes[2])
    axes[2].legend(fontsize=6, ncol=2)
    figure.suptitle("RPD gradient of a shallow tanh network over training (Zhao-B fig. 2e)")
    save(figure, out / "figure.png")
    return numbers


# -- 3. deep batch-norm network: eval vs batch statistics --------------------------------------


def batchnorm_grokking(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """One run with the batchnorm probe. Generalization and fit are measured half-way from
    chance to the final value: ``fit_step`` (training accuracy in batch-statistics mode, what
    training sees), ``gen_eval`` (test, running statistics), ``gen_batch`` (test, batch
    statistics), and the delays ``eval_delay = gen_eval / fit_step``, ``batch_delay =
    gen_batch / fit_step``; also the test accuracies in both modes at the fit step."""
    run = next(iter(runs.values()))
    metrics = run.metrics
    chance = 1.0 / build_task(run.config.task).n_classes
    fit = halfway_step(metrics, "bn/batchstat/train/acc", chance)
    gen_eval = halfway_step(metrics, "test/acc", chance)
    gen_batch = halfway_step(metrics, "bn/batchstat/test/acc", chance)
    numbers = {
        "fit_step": fit,
        "gen_eval": gen_eval,
        "gen_batch": gen_batch,
        "eval_delay": gen_eval / max(fit, 1),
        "batch_delay": gen_batch / max(fit, 1),
        "eval_test_at_fit": value_at(metrics, "test/acc", fit),
        "batch_test_at_fit": value_at(metrics, "bn/batchstat/test/acc", fit),
        "final_eval_test": float(metrics["test/acc"].dropna().iloc[-1]),
        "final_batch_test": float(metrics["bn/batchstat/test/acc"].dropna().iloc[-1]),
    }
    figure = plt.figure(figsize=(16, 8), layout="constrained")
    grid = figure.add_gridspec(2, 3)
    curves = figure.add_subplot(grid[:, 0])
    for column, style, color in (
        ("bn/batchstat/train/acc", "--", COLORS[0]),
        ("train/acc", "-", COLORS[0]),
        ("bn/batchstat/test/acc", "--", COLORS[1]),
        ("test/acc", "-", COLORS[1]),
    ):
        mode = "batch statistics" if column.startswith("bn/") else "running statistics"
        _curve(curves, metrics, column, linestyle=style, color=color, label=f"{column.split('/')[-2]} acc, {mode}")
    for step, color in ((fit, "gray"), (gen_eval, "black")):
        if math.isfinite(step):
            curves.axvline(step, color=color, linestyle=":", linewidth=1)
    curves.set_ylabel("accuracy")
    curves.set_title("dotted: fit step (batch stats), eval-mode generalization")
    _log_axis(curves)
    curves.legend(fontsize=8)
    geometry = {s: a for s, a in run.arrays("geometry").items() if "proj_train" in a}
    batch = run.arrays("batchnorm")
    pair = before_after([s for s in geometry if s in batch], None if math.isinf(gen_eval) else int(gen_eval))
    if pair:
        for row, (stored, mode) in enumerate(((geometry, "eval mode"), (batch, "batch statistics"))):
            for column, (step, when) in enumerate(zip(pair, ("before", "after"))):
                axis = figure.add_subplot(grid[row, column + 1])
                draw_projection(axis, stored[step], (0, 2, 5))
                axis.set_title(f"{mode}, step {step} ({when} eval-mode generalization)", fontsize=9)
                axis.grid(alpha=0.3)
                if row == 0 and column == 0:
                    axis.legend(fontsize=6, ncol=2)
    figure.suptitle("Deep ReLU network with batch norm: running vs batch statistics (Zhao-B figs. 3g, 6)")
    save(figure, out / "figure.png")
    return numbers


# -- 4. shallow grokking: basins and RPD around the grokking step ------------------------------


def shallow_grokking(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """One run with the basins and rpd probes. ``fit_step`` / ``gen_step`` from the summary
    (90 % train / test). Basin sizes (size50) at the last basin measurement at or before the fit
    step (``*_before``) and the first at or after the generalization step (``*_after``), their
    ratios ``*_growth``; per hidden layer the step of the RPD-gradient peak, its ratio to the
    generalization step (``peak_ratio_layer<l>``) and the fall after it (``fall_layer<l>``)."""
    run = next(iter(runs.values()))
    metrics, summary = run.metrics, run.summary
    fit = summary.get("fit_step") or math.inf
    gen = summary.get("generalization_step") or math.inf
    numbers: dict[str, Any] = {"fit_step": fit, "gen_step": gen}
    for space in ("sample", "weight"):
        column = f"basins/{space}/size50"
        frame = metrics[["step", column]].dropna()
        before = frame[frame["step"] <= fit][column]
        after = frame[frame["step"] >= gen][column]
        numbers[f"{space}_before"] = float(before.iloc[-1]) if len(before) else math.nan
        numbers[f"{space}_after"] = float(after.iloc[0]) if len(after) else math.nan
        numbers[f"{space}_growth"] = numbers[f"{space}_after"] / numbers[f"{space}_before"]
    for number, column in layer_columns(metrics, "rpd/grad/"):
        frame = metrics[["step", column]].dropna()
        frame = frame[frame["step"] >= 1]
        peak = frame.loc[frame[column].idxmax()]
        numbers[f"peak_step_layer{number}"] = int(peak["step"])
        numbers[f"peak_ratio_layer{number}"] = float(peak["step"]) / gen
        numbers[f"fall_layer{number}"] = float(peak[column] - frame[column].iloc[-1])

    figure = plt.figure(figsize=(16, 8), layout="constrained")
    grid = figure.add_gridspec(2, 4)
    accuracy = figure.add_subplot(grid[0, :2])
    _curve(accuracy, metrics, "train/acc", color=COLORS[0], label="train")
    _curve(accuracy, metrics, "test/acc", color=COLORS[1], label="test")
    basins = run.arrays("basins")
    steps = sorted(s for s in basins if s >= 1 and "sample_mean" in basins[s])
    if steps:
        amplitudes = basins[steps[0]]["amplitudes"]
        for index, target in enumerate((1e-2, 1e-1, 3e-1)):
            a = int(np.argmin(np.abs(np.log(amplitudes / target))))
            accuracy.plot(
                steps,
                [basins[s]["sample_mean"][a] for s in steps],
                ":",
                color=COLORS[2 + index],
                label=f"train + noise {amplitudes[a]:.2g}",
            )
    for step in (fit, gen):
        if math.isfinite(step):
            accuracy.axvline(step, color="gray", linestyle="--", linewidth=1)
    accuracy.set_ylabel("accuracy")
    accuracy.set_title("accuracy, and of noisy training samples (fig. 7a)")
    _log_axis(accuracy)
    accuracy.legend(fontsize=7)
    sizes = figure.add_subplot(grid[0, 2])
    for index, space in enumerate(("sample", "weight")):
        _curve(sizes, metrics, f"basins/{space}/size50", color=COLORS[index], label=f"{space} space")
    sizes.set_yscale("log")
    sizes.set_ylabel("basin size (size50)")
    sizes.set_title("basin sizes (fig. 7b)")
    rpd = figure.add_subplot(grid[0, 3])
    for index, (number, column) in enumerate(layer_columns(metrics, "rpd/grad/")):
        _curve(rpd, metrics, column, color=COLORS[index], label=f"layer {number}")
    rpd.set_ylabel("RPD gradient")
    rpd.set_title("RPD gradients (fig. 7c)")
    for axis in (sizes, rpd):
        for step in (fit, gen):
            if math.isfinite(step):
                axis.axvline(step, color="gray", linestyle="--", linewidth=1)
        _log_axis(axis)
        axis.legend(fontsize=7)
    geometry = {s: a for s, a in run.arrays("geometry").items() if "proj_train" in a}
    pair = before_after(list(geometry), None if math.isinf(gen) else int(gen))
    if pair:
        for column, (step, when) in enumerate(zip(pair, ("before", "after"))):
            for offset, split in enumerate(("train", "test")):
                axis = figure.add_subplot(grid[1, 2 * column + offset])
                arrays = geometry[step]
                shown = {f"proj_{s}": arrays[f"proj_{s}"][:0] for s in ("train", "test")}
                shown.update({f"y_{s}": arrays[f"y_{s}"][:0] for s in ("train", "test")})
                shown[f"proj_{split}"], shown[f"y_{split}"] = arrays[f"proj_{split}"], arrays[f"y_{split}"]
                draw_projection(axis, shown, (1, 5, 9))
                axis.set_title(f"{split}, step {step} ({when} grokking)", fontsize=9)
                axis.grid(alpha=0.3)
                axis.legend(fontsize=6)
    figure.suptitle("Shallow grokking on digits: basins and RPD (Zhao-B fig. 7)")
    save(figure, out / "figure.png")
    return numbers


# -- 5. L-map vs LP pruning against start layer ------------------------------------------------


def first_exact_layer(last: pd.Series, prefix: str, reference: float) -> float:
    """Smallest start layer whose accuracy is within ``EXACT_TOLERANCE`` of ``reference``."""
    for number, column in layer_columns(last.to_frame().T, prefix):
        if last[column] >= reference - EXACT_TOLERANCE:
            return float(number)
    return math.inf


def pruning_vs_start_layer(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """One run with the lmap probe. At the last step: the network's test accuracy, and the first
    start layer at which LP (``lp_first``) and L-map (``lmap_first``) pruning reach it within
    ``EXACT_TOLERANCE`` (inf: never); ``layers`` = number of linear layers L."""
    run = next(iter(runs.values()))
    metrics = run.metrics
    columns = layer_columns(metrics, "lmap/prune_acc/test/")
    last = metrics.dropna(subset=[c for _, c in columns]).iloc[-1]
    network = float(last["test/acc"])
    numbers = {
        "step": int(last["step"]),
        "network_test_acc": network,
        "layers": len(columns) + 1,
        "lp_first": first_exact_layer(last, "lmap/lp_acc/test/", network),
        "lmap_first": first_exact_layer(last, "lmap/prune_acc/test/", network),
    }
    figure, axes = plt.subplots(1, 3, figsize=(17, 4.3))
    for split, style in (("train", "-"), ("test", "--")):
        for prefix, color, name in (("lmap/prune_acc", COLORS[0], "L-map"), ("lmap/lp_acc", COLORS[1], "LP")):
            layer_cols = layer_columns(metrics, f"{prefix}/{split}/")
            axes[0].plot(
                [n for n, _ in layer_cols],
                [last[c] for _, c in layer_cols],
                style,
                marker="o",
                color=color,
                label=f"{name} {split}",
            )
        axes[0].axhline(last[f"{split}/acc"], color="gray", linestyle=style, linewidth=1, label=f"network {split}")
    axes[0].set_xlabel("start layer")
    axes[0].set_ylabel("accuracy")
    axes[0].set_title(f"pruning at step {numbers['step']} (Zhao-A fig. 3a-b)")
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    train_columns = layer_columns(metrics, "lmap/prune_acc/train/")
    for index, (number, column) in enumerate(train_columns):
        _curve(
            axes[1],
            metrics,
            column,
            color=plt.cm.viridis(index / max(len(train_columns) - 1, 1)),
            label=f"start {number}",
        )
    _curve(axes[1], metrics, "train/acc", color="black", linewidth=2, label="network")
    axes[1].set_ylabel("L-map pruning accuracy (train)")
    axes[1].set_title('"entering meditation" (Zhao-A fig. 10)')
    _log_axis(axes[1])
    axes[1].legend(fontsize=6, ncol=2)
    gradients = layer_columns(metrics, "rpd/grad/")
    if gradients:
        axes[2].plot([n for n, _ in gradients], [last[c] for _, c in gradients], "-o", color=COLORS[3])
        axes[2].set_xlabel("hidden layer")
        axes[2].set_ylabel("RPD gradient")
        axes[2].set_title("RPD gradient per layer (Zhao-A fig. 3c)")
        axes[2].grid(alpha=0.3)
    figure.suptitle("L-map and LP pruning in a deep ReLU network with batch norm")
    save(figure, out / "figure.png")
    return numbers
