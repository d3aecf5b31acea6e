"""Analyses of the Layerwise reproductions: trained linear networks against the gradient-flow
theory (sigmoidal vs exponential saturation, stage-like training), emergence of skills on
multitask sparse parity, the lazy/rich map, and grokking control by the weight-to-target ratio.

Time: the trainer's ``mse`` loss is the mean over samples and outputs of the squared error,
i.e. ``(2 / k) L`` with the theory's ``L = 1/2 E|y - f|^2`` and k outputs, so full-batch
gradient descent with step ``lr`` is the theory's gradient flow at ``t = 2 lr step / k``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from grokscope.measures.ntk import kernel_distance
from grokscope.runner import Experiment, Run
from grokscope.theory.layerwise import integrate_deep_linear, integrate_diagonal, integrate_two_layer
from grokscope.theory.lazy_rich import NTKPath, lazy_rich_map, linear_network_ntk, ntk_path


def time_per_step(run: Run) -> float | None:
    """Gradient-flow time of one step, or None when the run is not plain full-batch gradient
    descent on the mse loss (Adam, momentum, minibatches or weight decay have no such map)."""
    config = run.config
    optimizer, training = config.optimizer, config.training
    if optimizer.name != "sgd" or optimizer.momentum or optimizer.weight_decay or optimizer.groups:
        return None
    if training.loss != "mse" or training.batch_size is not None or training.warmup_steps:
        return None
    outputs = Experiment(config, device="cpu").task.output_dim
    return 2.0 * optimizer.lr / outputs


def measured_modes(run: Run) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, mode strengths (T, r)) recorded by the ``linear_modes`` probe."""
    columns = sorted(
        (c for c in run.metrics.columns if c.startswith("modes/") and c[6:].isdigit()), key=lambda c: int(c[6:])
    )
    if not columns:
        return None
    frame = run.metrics[["step", *columns]].dropna()
    return frame["step"].to_numpy(), frame[columns].to_numpy()


def predicted_modes(run: Run, steps: np.ndarray) -> np.ndarray | None:
    """Mode strengths (T, r) predicted by integrating the gradient flow of the run's own
    initial weights (rebuilt from its seed) on its training data, at t = time_per_step x step;
    None when the run is not gradient descent on a linear or diagonal linear network."""
    from grokscope.models.linear import DiagonalLinear, LinearNetwork

    dt = time_per_step(run)
    if dt is None:
        return None
    experiment = Experiment(run.config, device="cpu")
    model, task = experiment.model, experiment.task
    x = task.x_train.flatten(1).double().numpy()
    y = task.y_train.double().numpy().reshape(len(x), -1)
    sigma_xx, sigma_yx = x.T @ x / len(x), y.T @ x / len(x)
    teacher = np.atleast_2d(task.metadata.get("teacher", sigma_yx))
    times = np.asarray(steps, dtype=float) * dt
    if isinstance(model, DiagonalLinear):
        S = np.linalg.solve(sigma_xx, sigma_yx[0])
        a, b = integrate_diagonal(
            S,
            model.a.detach().double().numpy(),
            model.b.detach().double().numpy(),
            times,
            sigma_xx,
            model.spec.output_scale,
        )
        maps = (model.spec.output_scale * a * b)[:, None, :]
    elif isinstance(model, LinearNetwork) and not model.spec.bias:
        weights = [layer.weight.detach().double().numpy() for layer in model.linears]
        path = integrate_deep_linear(sigma_yx, weights, times, sigma_xx, model.spec.output_scale)
        maps = path[0]
        for layer in path[1:]:
            maps = layer @ maps
        maps = maps * model.spec.output_scale
    else:
        return None
    if teacher.shape[0] == 1:
        return maps[:, 0, :]
    U, s, Vt = np.linalg.svd(teacher, full_matrices=False)
    keep = s > 1e-12 * s.max()
    return np.einsum("or,toi,ir->tr", U[:, keep], maps, Vt[keep].T)


def crossing_step(steps: np.ndarray, values: np.ndarray, level: float) -> float:
    """First step where ``values`` reach ``level``, interpolated linearly (inf if never)."""
    above = np.flatnonzero(values >= level)
    if not len(above):
        return math.inf
    k = above[0]
    if k == 0:
        return float(steps[0])
    s0, s1, v0, v1 = steps[k - 1], steps[k], values[k - 1], values[k]
    return float(s0 + (level - v0) * (s1 - s0) / (v1 - v0))


def saturation_windows(steps: np.ndarray, modes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(r, 2): steps where each mode covers 10 % and 90 % of its way from start to target."""
    windows = []
    for k, target in enumerate(targets):
        fraction = (modes[:, k] - modes[0, k]) / (target - modes[0, k])
        windows.append((crossing_step(steps, fraction, 0.1), crossing_step(steps, fraction, 0.9)))
    return np.array(windows)


def overlaps(windows: np.ndarray) -> int:
    """Pairs of modes whose 10-90 % saturation windows overlap (0: one mode after another)."""
    count = 0
    for i in range(len(windows)):
        for j in range(i + 1, len(windows)):
            count += int(windows[i, 0] < windows[j, 1] and windows[j, 0] < windows[i, 1])
    return count


def rise_ratio(windows: np.ndarray) -> float:
    """Mean over modes of t10 / t90: ~0.05 for an exponential start, near 1 for a delayed
    sigmoid whose rise is short beside its wait."""
    finite = np.all(np.isfinite(windows), axis=1) & (windows[:, 1] > 0)
    return float(np.mean(windows[finite, 0] / windows[finite, 1])) if finite.any() else math.nan


def teacher_scales(run: Run) -> np.ndarray:
    teacher = np.atleast_2d(Experiment(run.config, device="cpu").task.metadata["teacher"])
    return teacher[0] if teacher.shape[0] == 1 else np.linalg.svd(teacher, compute_uv=False)


def mode_comparison(run: Run) -> dict[str, Any]:
    """Measured and predicted modes of one run with the numbers the rules read."""
    steps, modes = measured_modes(run)
    predicted = predicted_modes(run, steps)
    targets = teacher_scales(run)[: modes.shape[1]]
    windows = saturation_windows(steps, modes, targets)
    deviation = float(np.max(np.abs(modes - predicted)) / np.abs(targets).max()) if predicted is not None else math.nan
    return {
        "steps": steps,
        "modes": modes,
        "predicted": predicted,
        "targets": targets,
        "windows": windows,
        "deviation": deviation,
        "rise": rise_ratio(windows),
        "overlaps": overlaps(windows),
    }


def sigmoidal_vs_exponential(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """Layerwise fig. 3 / eqs. 9-10: the linear model's modes saturate exponentially from the
    start, the diagonal network's sigmoidally after a delay; both follow the theory."""
    from grokscope.report.theory import plot_mode_runs

    compared = {label: mode_comparison(run) for label, run in runs.items()}
    plot_mode_runs(compared, out / "figure.png", "Layerwise fig. 3: exponential (linear model) vs sigmoidal (diagonal)")
    return {f"{label}_{key}": value[key] for label, value in compared.items() for key in ("deviation", "rise")}


def stage_like(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """Layerwise fig. 3b, sec. 4.1-4.2: with target scales a decade apart the diagonal network
    saturates one mode after another (no overlap of the 10-90 % windows, largest first) while the
    linear model saturates them together."""
    from grokscope.report.theory import plot_mode_runs

    compared = {label: mode_comparison(run) for label, run in runs.items()}
    plot_mode_runs(
        compared,
        out / "figure.png",
        "Layerwise sec. 4.1: stage-like training (target scales a decade apart)",
        normalized=True,
    )
    numbers: dict[str, Any] = {}
    for label, value in compared.items():
        order = np.argsort(-np.abs(value["targets"]))
        numbers[f"{label}_overlaps"] = value["overlaps"]
        ends = value["windows"][order, 1]  # a mode that never reached 90 % (inf) is not in order
        numbers[f"{label}_in_order"] = bool(np.all(np.isfinite(ends)) and np.all(np.diff(ends) > 0))
        numbers[f"{label}_deviation"] = value["deviation"]
    return numbers


def emergence_steps(run: Run, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(skill ids, first step where ``skills/<t>`` reaches ``level``; inf if never)."""
    columns = sorted((c for c in run.metrics.columns if c.startswith("skills/")), key=lambda c: int(c[7:]))
    frame = run.metrics[["step", *columns]].dropna()
    steps = frame["step"].to_numpy()
    return (
        np.array([int(c[7:]) for c in columns]),
        np.array([crossing_step(steps, frame[c].to_numpy(), level) for c in columns]),
    )


def emergence(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """Layerwise fig. 4 / sec. 4.3: skills of multitask sparse parity emerge one by one, most
    frequent first, in a 2-layer ReLU MLP (``mlp``: test accuracy per skill crosses 0.75,
    halfway from chance) as in the layerwise model with prebuilt skills (``layerwise``: skill
    strength crosses 0.5), whose skill curves follow the sigmoid with S = frequency."""
    from grokscope.report.theory import plot_emergence

    mlp_ids, mlp_steps = emergence_steps(runs["mlp"], 0.75)
    layer_ids, layer_steps = emergence_steps(runs["layerwise"], 0.5)
    theory = layerwise_skill_theory(runs["layerwise"])
    plot_emergence(runs["mlp"], runs["layerwise"], theory, out / "figure.png")

    def order(ids: np.ndarray, steps: np.ndarray) -> float:
        finite = np.isfinite(steps)
        return float(spearmanr(ids[finite], steps[finite]).statistic) if finite.sum() >= 3 else math.nan

    both = np.isfinite(mlp_steps) & np.isfinite(layer_steps)
    return {
        "mlp_order": order(mlp_ids, mlp_steps),
        "layerwise_order": order(layer_ids, layer_steps),
        "mlp_skills": int(np.isfinite(mlp_steps).sum()),
        "layerwise_skills": int(np.isfinite(layer_steps).sum()),
        "agreement": float(spearmanr(mlp_steps[both], layer_steps[both]).statistic) if both.sum() >= 3 else math.nan,
        "layerwise_theory_deviation": theory["deviation"] if theory else math.nan,
    }


def layerwise_skill_theory(run: Run) -> dict[str, Any] | None:
    """Skill strengths of the prebuilt-skill model predicted by the diagonal network's flow with
    Sigma_xx = diag(training frequency of each skill) and S = 1 (Layerwise eq. 11, Nam et al.)."""
    dt = time_per_step(run)
    columns = sorted((c for c in run.metrics.columns if c.startswith("skills/")), key=lambda c: int(c[7:]))
    if dt is None or not columns:
        return None
    experiment = Experiment(run.config, device="cpu")
    model, task = experiment.model, experiment.task
    x = task.x_train.double().numpy()
    sigma_xx = x.T @ x / len(x)
    S = np.linalg.solve(sigma_xx, x.T @ task.y_train.double().numpy()[:, 0] / len(x))
    frame = run.metrics[["step", *columns]].dropna()
    steps = frame["step"].to_numpy()
    a, b = integrate_diagonal(
        S,
        model.a.detach().double().numpy(),
        model.b.detach().double().numpy(),
        steps * dt,
        sigma_xx,
        model.spec.output_scale,
    )
    predicted = model.spec.output_scale * a * b
    measured = frame[columns].to_numpy()
    return {"steps": steps, "predicted": predicted, "deviation": float(np.max(np.abs(measured - predicted)))}


# -- lazy / rich -----------------------------------------------------------------------------
MAP_LAMBDAS = (-10.0, -3.0, -1.0, -0.3, 0.0, 0.3, 1.0, 3.0, 10.0)
MAP_SCALES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
HEAVY, LIGHT = 3.0, 0.03  # layer scales of the funnel / anti-funnel starts (a ratio of 100)


def torch_vs_flow_ntk(run: Run) -> tuple[float, float]:
    """(kernel distance measured by the run's ``ntk`` probe at its last step, the same distance
    on the same samples for the gradient flow of the run's own initial W1, W2 at t = dt x step)."""
    from grokscope.models.linear import LinearNetwork
    from grokscope.probes.ntk import subset

    frame = run.metrics[["step", "ntk/kernel_distance"]].dropna()
    step, measured = float(frame["step"].iloc[-1]), float(frame["ntk/kernel_distance"].iloc[-1])
    experiment = Experiment(run.config, device="cpu")
    model, task, dt = experiment.model, experiment.task, time_per_step(run)
    if not isinstance(model, LinearNetwork) or len(model.linears) != 2 or dt is None:
        return measured, math.nan
    x = task.x_train.double().numpy()
    y = task.y_train.double().numpy()
    W1, W2 = (layer.weight.detach().double().numpy() for layer in model.linears)
    W1t, W2t = integrate_two_layer(y.T @ x / len(x), W1, W2, [0.0, step * dt], x.T @ x / len(x))
    samples = subset(task.x_train, 32).double().numpy()  # the probe's default subset
    c = model.spec.output_scale
    K0 = c**2 * linear_network_ntk(W1, W2, samples)
    K1 = c**2 * linear_network_ntk(W1t[-1], W2t[-1], samples)
    return measured, kernel_distance(K0, K1)


def kernel_delay(path: NTKPath) -> float:
    """Time for the kernel distance to cover half its final value over the time for the loss
    to halve: < 1 when the kernel moves as the network learns (rich), >> 1 when the network first
    fits lazily and its kernel moves later (delayed entry into the rich regime)."""
    kernel_half = path.times[np.argmax(path.kernel_distance >= path.kernel_distance[-1] / 2)]
    loss_half = path.times[np.argmax(path.relative_loss <= 0.5)]
    return float(kernel_half / loss_half) if loss_half > 0 else math.inf


def lazy_rich(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """Layerwise fig. 6a and fig. 10 (appendix G): the map of kernel distance and final loss
    over relative scale lambda x absolute scale of a square two-layer linear network (gradient
    flow of the raw weights), funnel and anti-funnel networks whose heavy layer sits on the wide
    side entering the rich regime late, and trained torch networks beside the flow of their own
    start."""
    from grokscope.report.theory import plot_lazy_rich

    lambdas = (-10.0, 0.0, 10.0) if smoke else MAP_LAMBDAS
    scales = (0.03, 0.3) if smoke else MAP_SCALES
    flow_time = 10.0 if smoke else 300.0
    grid = lazy_rich_map(lambdas, scales, time=flow_time)
    times = np.concatenate([[0.0], np.geomspace(1e-2, 30.0 if smoke else 3000.0, 16 if smoke else 60)])
    paths = {
        "funnel, heavy input layer": ntk_path(24, 8, 4, HEAVY, LIGHT, times),
        "funnel, heavy output layer": ntk_path(24, 8, 4, LIGHT, HEAVY, times),
        "anti-funnel, heavy output layer": ntk_path(4, 8, 24, LIGHT, HEAVY, times),
        "anti-funnel, heavy input layer": ntk_path(4, 8, 24, HEAVY, LIGHT, times),
        "funnel, small balanced": ntk_path(24, 8, 4, 0.1, 0.1, times),
    }
    torch_runs = {label: torch_vs_flow_ntk(run) for label, run in runs.items()}
    plot_lazy_rich(grid, paths, torch_runs, out / "figure.png")
    lams, scl = np.asarray(grid.lambdas), np.asarray(grid.scales)
    lazy_rows = np.abs(lams) == np.abs(lams).max()
    numbers: dict[str, Any] = {
        "map_rich_distance": float(grid.kernel_distance[lams == 0].min()),
        "map_lazy_distance": float(grid.kernel_distance[np.ix_(lazy_rows, scl <= 0.3)].max()),
        "map_max_loss": float(grid.final_loss.max()),
    }
    for key, label in (("funnel", "funnel, heavy input layer"), ("antifunnel", "anti-funnel, heavy output layer")):
        numbers[f"{key}_rich_distance"] = float(paths[label].kernel_distance[-1])
        numbers[f"{key}_delay"] = kernel_delay(paths[label])
    numbers["funnel_lazy_distance"] = float(paths["funnel, heavy output layer"].kernel_distance[-1])
    numbers["antifunnel_lazy_distance"] = float(paths["anti-funnel, heavy input layer"].kernel_distance[-1])
    numbers["balanced_delay"] = kernel_delay(paths["funnel, small balanced"])
    for label, (measured, flow) in torch_runs.items():
        numbers[f"{label}_distance"] = measured
        numbers[f"{label}_flow_distance"] = flow
    return numbers
