"""Figures that lay theory beside experiment: the effective theory of representation learning
(Liu sec. 3.2) beside trained toy models, and the layerwise linear models (closed forms and
integrated gradient flows) beside trained linear networks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from grokscope.report.figures import COLORS, plt, save
from grokscope.report.registry import run_figure
from grokscope.runner import Run


def plot_effective_theory(
    scan,
    predicted: np.ndarray,
    predicted_sum: np.ndarray,
    points: Sequence,
    paths: dict[str, np.ndarray] | None,
    path: Path,
) -> list[Path]:
    """Liu figs. 4a, 5a, 5b, 4c-d in one row: P(nullity = 2) against r; lambda_3 against r (one
    dot per random training set); predicted steps 1/(lambda_3 eta) (l_0 as the mean over
    parallelograms, eq. 5, and as the sum, the paper's code) beside measured steps to
    RQI > 0.95; embedding trajectories under the theory and under training."""
    columns = 5 if paths is not None else 3
    figure, axes = plt.subplots(1, columns, figsize=(5.2 * columns, 4.4))
    fractions = scan.fractions
    axes[0].plot(fractions, scan.unique_probability, "o-", color=COLORS[0])
    axes[0].axhline(0.5, color="gray", linestyle=":")
    crossing = scan.crossing(0.5)
    if math.isfinite(crossing):
        axes[0].axvline(crossing, color=COLORS[3], linestyle="--", label=f"crosses 0.5 at r = {crossing:.2f}")
    axes[0].set_ylabel("P(nullity of A(P0(D)) = 2)")
    axes[0].set_title(f"unique linear structure (p = {scan.p}, {scan.nullities.shape[1]} sets per r)", fontsize=9)
    for f, rates in zip(fractions, scan.rates):
        jitter = f + (np.random.default_rng(0).random(len(rates)) - 0.5) * 0.02
        axes[1].scatter(jitter, rates, s=3, color=COLORS[0], alpha=0.3)
    medians = [np.median(r[r > 0]) if np.any(r > 0) else np.nan for r in scan.rates]
    axes[1].plot(fractions, medians, color=COLORS[1], label="median over sets with nullity 2")
    axes[1].set_ylabel("grokking rate lambda_3 (0: nullity > 2)")
    steps_axis = axes[2]
    shown = np.isfinite(predicted)
    steps_axis.plot(
        fractions[shown], predicted[shown], "s-", color=COLORS[2], label="1/(lambda_3 eta), l_0 mean (eq. 5)"
    )
    steps_axis.plot(
        fractions[shown],
        predicted_sum[shown],
        "s--",
        color=COLORS[2],
        alpha=0.6,
        label="1/(lambda_3 eta), l_0 summed (paper's code)",
    )
    measured = np.array([p.steps_to_rqi for p in points], dtype=float)
    runs_r = np.array([p.fraction for p in points])
    reached = np.isfinite(measured)
    steps_axis.scatter(
        runs_r[reached], measured[reached], color=COLORS[4], s=16, label="trained toy: steps to RQI > 0.95"
    )
    if (~reached).any():
        budget = max(p.budget for p in points)
        steps_axis.scatter(
            runs_r[~reached],
            np.full((~reached).sum(), budget),
            facecolors="none",
            edgecolors=COLORS[4],
            s=18,
            label=f"not within {budget} steps",
        )
    steps_axis.set_yscale("log")
    steps_axis.set_ylabel("steps")
    for axis in axes[:3]:
        axis.set_xlabel("training fraction r")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    if paths is not None:
        steps = np.maximum(paths["steps"], 1)
        for axis, key, title in (
            (axes[3], "theory", "effective theory (t = eta x step)"),
            (axes[4], "network", "trained toy model"),
        ):
            for k in range(paths[key].shape[1]):
                axis.plot(steps, paths[key][:, k], color=plt.cm.viridis(k / max(1, paths[key].shape[1] - 1)))
            axis.set_xscale("log")
            axis.set_xlabel("step")
            axis.set_title(title, fontsize=9)
            axis.grid(alpha=0.3)
        axes[3].set_ylabel("normalized embedding E_k (colour: k)")
    figure.suptitle("Liu effective theory: critical training fraction and grokking rate")
    return save(figure, path)


def plot_mode_runs(compared: dict[str, dict], path: Path, title: str, normalized: bool = False) -> list[Path]:
    """One panel per run: measured mode strengths (solid) against step, the gradient-flow
    prediction from the run's own start (dashed), targets dotted; log step axis. ``normalized``
    divides each mode by its target S (every mode then rises from 0 to 1: target scales a
    decade apart stay visible)."""
    figure, axes = plt.subplots(1, len(compared), figsize=(6 * len(compared), 4.2), squeeze=False)
    for axis, (label, value) in zip(axes[0], compared.items()):
        steps = np.maximum(value["steps"], 1)
        for k in range(value["modes"].shape[1]):
            color = COLORS[k % len(COLORS)]
            unit = value["targets"][k] if normalized else 1.0
            axis.plot(steps, value["modes"][:, k] / unit, color=color, label=f"mode {k}: S = {value['targets'][k]:g}")
            if value["predicted"] is not None:
                axis.plot(steps, value["predicted"][:, k] / unit, color="black", linestyle="--", linewidth=0.9)
            axis.axhline(value["targets"][k] / unit, color=color, linestyle=":", linewidth=0.8)
        deviation = value["deviation"]
        note = f"max |measured - theory| = {100 * deviation:.2f} % of max S" if math.isfinite(deviation) else ""
        axis.set_title(f"{label}  (dashed: gradient-flow theory)\n{note}", fontsize=9)
        axis.set_xscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel("mode strength / S" if normalized else "mode strength")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title, y=1.04)
    return save(figure, path)


@run_figure("theory")
def theory_figure(run: Run, out: Path) -> list[Path]:
    """``theory.png``: a linear or diagonal network's mode strengths (``linear_modes`` probe)
    beside the gradient flow of its own initial weights, when the run is full-batch gradient
    descent on the mse loss (t = 2 lr step / outputs). Nothing for other runs."""
    from grokscope.experiments.layerwise import measured_modes, predicted_modes, teacher_scales

    measured = measured_modes(run)
    if measured is None:
        return []
    steps, modes = measured
    try:
        predicted = predicted_modes(run, steps)
        targets = teacher_scales(run)[: modes.shape[1]]
    except KeyError:  # a task without a teacher: draw the measured modes only
        predicted, targets = None, np.full(modes.shape[1], np.nan)
    deviation = (
        float(np.max(np.abs(modes - predicted)) / np.nanmax(np.abs(targets))) if predicted is not None else math.nan
    )
    compared = {
        run.path.name: {
            "steps": steps,
            "modes": modes,
            "predicted": predicted,
            "targets": targets,
            "deviation": deviation,
        }
    }
    return plot_mode_runs(compared, out / "theory.png", "Layerwise linear theory beside the trained network")


def plot_emergence(mlp: Run, layerwise: Run, theory: dict | None, path: Path) -> list[Path]:
    """Skill curves of the 2-layer MLP (test accuracy per skill) and of the prebuilt-skill model
    (skill strength, with its sigmoid theory dashed), colour = skill (0 most frequent)."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for axis, run, ylabel in (
        (axes[0], mlp, "test accuracy of skill t"),
        (axes[1], layerwise, "skill strength u_t = a_t b_t"),
    ):
        columns = sorted((c for c in run.metrics.columns if c.startswith("skills/")), key=lambda c: int(c[7:]))
        frame = run.metrics[["step", *columns]].dropna()
        steps = np.maximum(frame["step"].to_numpy(), 1)
        for k, column in enumerate(columns):
            color = plt.cm.viridis(k / max(1, len(columns) - 1))
            axis.plot(steps, frame[column], color=color, label=column.replace("skills/", "skill "))
            if run is layerwise and theory is not None:
                axis.plot(
                    np.maximum(theory["steps"], 1),
                    theory["predicted"][:, k],
                    color=color,
                    linestyle="--",
                    linewidth=0.8,
                )
        axis.set_xscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=6, ncol=2)
    axes[0].set_title(f"{mlp.path.name}: 2-layer ReLU MLP", fontsize=9)
    axes[1].set_title(f"{layerwise.path.name}: layerwise model with prebuilt skills (dashed: theory)", fontsize=9)
    figure.suptitle("Layerwise fig. 4: skills emerge one by one, most frequent first")
    return save(figure, path)


def plot_lazy_rich(grid, paths: dict, torch_runs: dict[str, tuple[float, float]], path: Path) -> list[Path]:
    """Layerwise fig. 6a and fig. 10 in one row: log10 kernel distance and log10 final loss over
    lambda x absolute scale (heatmaps); kernel distance and loss against time for funnel and
    anti-funnel starts (log time axis); trained torch networks' kernel distance beside the flow
    of their own start."""
    figure, axes = plt.subplots(1, 5, figsize=(27, 4.8))
    extent_labels = [f"{s:g}" for s in grid.scales], [f"{lam:g}" for lam in grid.lambdas]
    for axis, values, title in (
        (axes[0], grid.kernel_distance, "log10 kernel distance (init -> end)"),
        (axes[1], grid.final_loss, "log10 final loss / loss of f = 0"),
    ):
        image = axis.imshow(np.log10(np.maximum(values, 1e-30)), origin="lower", aspect="auto", cmap="viridis")
        figure.colorbar(image, ax=axis, shrink=0.85)
        axis.set_xticks(range(len(grid.scales)), extent_labels[0])
        axis.set_yticks(range(len(grid.lambdas)), extent_labels[1])
        axis.set_xlabel("absolute scale (std x sqrt(fan_in) of the lighter layer)")
        axis.set_ylabel("relative scale lambda (W2^T W2 - W1 W1^T)")
        axis.set_title(title, fontsize=9)
    for k, (label, value) in enumerate(paths.items()):
        color = COLORS[k % len(COLORS)]
        times = np.maximum(value.times, value.times[1] / 2)
        axes[2].plot(times, value.kernel_distance, color=color, label=label)
        axes[3].plot(times, np.maximum(value.relative_loss, 1e-30), color=color, label=label)
    axes[2].set_ylabel("kernel distance from t = 0")
    axes[3].set_ylabel("loss / loss of f = 0")
    axes[3].set_yscale("log")
    axes[3].set_ylim(1e-12, 2)
    for axis in axes[2:4]:
        axis.set_xscale("log")
        axis.set_xlabel("gradient-flow time t")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    axes[2].set_title("funnel 24-8-4 / anti-funnel 4-8-24: heavy layer 100x the light one", fontsize=9)
    labels = list(torch_runs)
    positions = np.arange(len(labels))
    measured = [max(torch_runs[k][0], 1e-12) for k in labels]
    flow = [max(torch_runs[k][1], 1e-12) if math.isfinite(torch_runs[k][1]) else np.nan for k in labels]
    axes[4].bar(positions - 0.2, measured, width=0.4, color=COLORS[0], label="trained (ntk probe)")
    axes[4].bar(positions + 0.2, flow, width=0.4, color=COLORS[1], label="gradient flow of the same start")
    axes[4].set_xticks(positions, labels)
    axes[4].set_yscale("log")
    axes[4].set_ylabel("kernel distance at the last step")
    axes[4].set_title("torch two-layer linear networks (lambda-balanced)", fontsize=9)
    axes[4].legend(fontsize=7)
    figure.suptitle("Layerwise app. G: lazy vs rich from relative and absolute scale; delayed rich entry", y=1.02)
    return save(figure, path)


def plot_class_structure(
    path: np.ndarray,
    labels: np.ndarray,
    times: np.ndarray,
    within: np.ndarray,
    runs: dict[str, Run],
    structure: dict[str, float],
    out: Path,
) -> list[Path]:
    """Liu fig. 19 and appendix I: digits embeddings from a random encoder before and after the
    gradient flow of the class effective loss (colour: class); the within-class share of the
    variance under the flow; and of trained MLPs' last hidden layer on test images against step
    (log axis), with test accuracy dashed and the step where the structure formed marked."""
    figure, axes = plt.subplots(1, 4, figsize=(22, 4.6))
    cmap = plt.get_cmap("tab10")
    for axis, index, title in ((axes[0], 0, "random encoder (t = 0)"), (axes[1], -1, f"flow, t = {times[-1]:g}")):
        F = path[index]
        axis.scatter(F[:, 0], F[:, 1], c=cmap(labels % 10), s=5)
        axis.set_title(f"{title}: within-class share {within[index]:.3f}", fontsize=9)
        axis.set_aspect("equal")
    axes[2].plot(np.maximum(times, times[1] / 2), within, "o-", color=COLORS[0])
    axes[2].set_xscale("log")
    axes[2].set_xlabel("effective-theory time t")
    axes[2].set_ylabel("within-class share of variance")
    axes[2].set_title("gradient flow of l_eff (Z conserved)", fontsize=9)
    accuracy = axes[3].twinx()
    for k, (label, run) in enumerate(runs.items()):
        color = COLORS[k % len(COLORS)]
        frame = run.metrics[["step", "effective/within_class"]].dropna()
        axes[3].plot(np.maximum(frame["step"], 1), frame["effective/within_class"], color=color, label=label)
        test = run.metrics[["step", "test/acc"]].dropna()
        accuracy.plot(np.maximum(test["step"], 1), test["test/acc"], color=color, linestyle="--", linewidth=0.8)
        if math.isfinite(structure[label]):
            axes[3].axvline(max(structure[label], 1), color=color, linestyle=":")
    axes[3].set_xscale("log")
    axes[3].set_xlabel("step")
    axes[3].set_ylabel("within-class share (solid), last hidden layer, test")
    accuracy.set_ylabel("test accuracy (dashed)")
    axes[3].set_title("trained tanh MLPs on digits (dotted: structure half formed)", fontsize=9)
    axes[3].legend(fontsize=7)
    for axis in axes[2:]:
        axis.grid(alpha=0.3)
    figure.suptitle("Liu app. I: the class effective loss on digits representations", y=1.02)
    return save(figure, out)
