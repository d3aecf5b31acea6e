"""Analyses of the Liu et al. (2022) reproductions: representation quality against the training
fraction (toy addition, S3 with matrix embeddings) and the effective theory's critical fraction
and grokking rate beside trained toy models.

Each function is an ``Analysis`` of the catalogue (``experiments/catalog.py``): it reads the runs,
writes ``figure.png`` into the entry's folder and returns the numbers its rule reads.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from grokscope.runner import Run
from grokscope.tasks.base import build_task

RQI_THRESHOLD = 0.95


@dataclass
class RQIPoint:
    """One trained run, summarized as in Liu figs. 3, 4b, 10 and 18."""

    label: str
    fraction: float
    rqi: float
    acc: float
    acc_hat: float
    rqi_bar: float
    acc_bar: float
    steps_to_rqi: float  # inf when RQI never exceeded the threshold within the budget
    budget: int


def train_fraction(run: Run) -> float:
    """|D| / |D0| of a run's task (rebuilt from its config: the split is deterministic)."""
    task = build_task(run.config.task)
    return len(task.x_train) / (len(task.x_train) + len(task.x_test))


def steps_to_rqi(run: Run, threshold: float = RQI_THRESHOLD) -> float:
    """First evaluated step with RQI > threshold (Liu fig. 4b, 5b, 18b); inf if never."""
    frame = run.metrics[["step", "rqi/rqi"]].dropna()
    above = frame[frame["rqi/rqi"] > threshold]
    return float(above["step"].iloc[0]) if len(above) else math.inf


def rqi_point(label: str, run: Run) -> RQIPoint:
    final = run.summary.get("final", {})
    return RQIPoint(
        label=label,
        fraction=train_fraction(run),
        rqi=final.get("rqi/rqi", math.nan),
        acc=final.get("rqi/acc", math.nan),
        acc_hat=final.get("rqi/acc_hat", math.nan),
        rqi_bar=final.get("rqi/rqi_bar", math.nan),
        acc_bar=final.get("rqi/acc_bar", math.nan),
        steps_to_rqi=steps_to_rqi(run),
        budget=int(run.summary.get("budget", 0)),
    )


def by_fraction(points: list[RQIPoint]) -> dict[float, list[RQIPoint]]:
    groups: dict[float, list[RQIPoint]] = {}
    for point in points:
        groups.setdefault(round(point.fraction, 4), []).append(point)
    return dict(sorted(groups.items()))


def transition_fraction(points: list[RQIPoint], share: float) -> float:
    """Smallest training fraction at which at least ``share`` of the runs reach RQI > 0.95 (the
    median runs of Liu fig. 4b for share = 0.5, the best run of fig. 18b for share -> 0); nan if
    no fraction does."""
    for fraction, group in by_fraction(points).items():
        reached = np.mean([math.isfinite(p.steps_to_rqi) for p in group])
        if reached >= share and reached > 0:
            return fraction
    return math.nan


def reach_share(points: list[RQIPoint], low: float = 0.0, high: float = 1.0) -> float:
    """Share of the runs with fraction in [low, high] that reach RQI > 0.95 (nan if none)."""
    chosen = [math.isfinite(p.steps_to_rqi) for p in points if low <= p.fraction <= high]
    return float(np.mean(chosen)) if chosen else math.nan


def median_steps(points: list[RQIPoint]) -> tuple[np.ndarray, np.ndarray]:
    """(fractions, median steps to RQI > 0.95) over the fractions where at least half the runs
    reach it (the median is then finite)."""
    fractions, medians = [], []
    for fraction, group in by_fraction(points).items():
        median = float(np.median([p.steps_to_rqi for p in group]))
        if math.isfinite(median):
            fractions.append(fraction)
            medians.append(median)
    return np.array(fractions), np.array(medians)


def decreasing(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman correlation of y with x (nan with fewer than three points): < 0 means y falls as
    x grows."""
    if len(x) < 3:
        return math.nan
    return float(spearmanr(x, y).statistic)


def _write_points(points: list[RQIPoint], out: Path) -> None:
    import json

    (out / "rqi_points.json").write_text(json.dumps([asdict(p) for p in points], indent=1, default=str))


def rqi_vs_fraction(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """Liu figs. 3 and 4b (toy addition): RQI, Acc and Acc_hat against the training fraction, and
    steps to RQI > 0.95. Numbers: ``acc_gap`` (mean |Acc - Acc_hat|), ``transition`` (smallest
    fraction where half the runs reach RQI > 0.95), ``reach_low`` / ``reach_high`` (share of
    runs reaching it at r <= 0.3 / r >= 0.6), ``steps_trend`` (Spearman of median steps vs r)."""
    from grokscope.report.rqi import plot_rqi_vs_fraction

    points = [rqi_point(label, run) for label, run in runs.items()]
    _write_points(points, out)
    plot_rqi_vs_fraction(points, out / "figure.png", title="Liu toy addition (p = 10): representation vs data")
    fractions, medians = median_steps(points)
    return {
        "acc_gap": float(np.nanmean([abs(p.acc - p.acc_hat) for p in points])),
        "transition": transition_fraction(points, 0.5),
        "reach_low": reach_share(points, high=0.3),
        "reach_high": reach_share(points, low=0.6),
        "steps_trend": decreasing(fractions, medians),
        "runs": len(points),
    }


def s3_rqi_vs_fraction(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """Liu fig. 18 (S3, 3x3 matrix embeddings): RQI against the training fraction and steps to
    RQI > 0.95 of the best run per fraction. Numbers: ``transition`` (smallest fraction where the
    best run reaches RQI > 0.95), ``best_rqi_low`` / ``best_rqi_high`` (highest final RQI at
    r <= 0.4 / r >= 0.7) and ``acc_hat_below_acc`` (share of runs with Acc_hat <= Acc, fig. 18e)."""
    from grokscope.report.rqi import plot_rqi_vs_fraction

    points = [rqi_point(label, run) for label, run in runs.items()]
    _write_points(points, out)
    plot_rqi_vs_fraction(points, out / "figure.png", title="Liu S3, 3x3 matrix embeddings", best=True)

    def best(low: float, high: float) -> float:
        chosen = [p.rqi for p in points if low <= p.fraction <= high]
        return float(max(chosen)) if chosen else math.nan

    return {
        "transition": transition_fraction(points, 1e-9),
        "best_rqi_low": best(0.0, 0.4),
        "best_rqi_high": best(0.7, 1.0),
        "acc_hat_below_acc": float(np.mean([p.acc_hat <= p.acc + 1e-9 for p in points])),
        "runs": len(points),
    }


def embedding_lr(run: Run) -> float:
    """The learning rate of the embeddings' parameter group (eta of Liu sec. 3.2)."""
    optimizer = run.config.optimizer
    group = optimizer.groups.get("embeddings")
    return group.lr if group is not None and group.lr is not None else optimizer.lr


def trajectories(run: Run, times_per_step: float) -> dict[str, np.ndarray] | None:
    """The run's 1-D embedding trajectory (normalized per step, Liu fig. 4d) and the effective
    theory's from the same normalized start with the run's training set (fig. 4c), at the same
    steps (t = eta x step)."""
    from grokscope.measures.rqi import constraint_matrix, parallelograms
    from grokscope.probes.rqi import pair_dataset
    from grokscope.theory.effective import integrate_effective, normalize_embeddings

    arrays = run.arrays("rqi")
    if not arrays or next(iter(arrays.values()))["embeddings"].squeeze().ndim != 1:
        return None
    steps = np.array(sorted(arrays))
    network = np.array([normalize_embeddings(arrays[s]["embeddings"])[:, 0] for s in steps])  # (T, p)
    operands, results, train = pair_dataset(build_task(run.config.task))
    A = constraint_matrix(operands, parallelograms(results, train), network.shape[1])
    theory = integrate_effective(network[0], A, steps * times_per_step)[:, :, 0]
    return {"steps": steps, "network": network, "theory": theory}


def effective_theory(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """Liu figs. 4a, 4c-d, 5a-b: probability that a random training set fixes the linear structure
    (nullity of A(P0(D)) = 2) against the fraction, the grokking rate lambda_3 and the predicted
    steps 1 / (lambda_3 eta) beside the steps to RQI > 0.95 of trained toy models, and one
    trajectory of the embeddings under the effective theory and under training.

    Numbers: ``critical_fraction`` (where P(nullity 2) crosses 0.5), ``theory_trend`` and
    ``measured_trend`` (Spearman correlation of predicted / measured median steps with r; < 0 when
    more data means fewer steps), ``measured_over_predicted`` (median ratio where both exist)."""
    from grokscope.report.theory import plot_effective_theory
    from grokscope.theory.effective import critical_fraction_scan

    fractions = np.round(np.arange(0.1, 0.96, 0.05), 2)
    scan = critical_fraction_scan(10, fractions, n_sets=100 if smoke else 1000, seed=0)
    eta = embedding_lr(next(iter(runs.values())))
    rates = np.array([np.median(r[r > 0]) if np.mean(r > 0) >= 0.5 else 0.0 for r in scan.rates])
    predicted = np.where(rates > 0, 1.0 / np.maximum(rates, 1e-300) / eta, np.inf)
    sizes = np.array([np.median(q[r > 0]) if np.any(r > 0) else np.nan for q, r in zip(scan.sizes, scan.rates)])
    predicted_sum = np.where(rates > 0, predicted / sizes, np.inf)  # l_0 summed, as the paper's code
    points = [rqi_point(label, run) for label, run in runs.items()]
    measured_fractions, measured_steps = median_steps(points)
    finite = np.isfinite(predicted)
    trajectory_run = max(runs.values(), key=train_fraction)
    paths = trajectories(trajectory_run, eta)
    plot_effective_theory(scan, predicted, predicted_sum, points, paths, out / "figure.png")
    ratios = [m / predicted[np.argmin(np.abs(fractions - f))] for f, m in zip(measured_fractions, measured_steps)]
    ratios = [r for r in ratios if np.isfinite(r) and r > 0]
    return {
        "critical_fraction": scan.crossing(0.5),
        "theory_trend": decreasing(fractions[finite], predicted[finite]),
        "measured_trend": decreasing(measured_fractions, measured_steps),
        "measured_over_predicted": float(np.median(ratios)) if ratios else math.nan,
        "unique_probability": {f"{f:.2f}": float(p) for f, p in zip(fractions, scan.unique_probability)},
        "predicted_steps": {f"{f:.2f}": float(p) for f, p in zip(fractions, predicted)},
        "measured_steps": {f"{f:.2f}": float(m) for f, m in zip(measured_fractions, measured_steps)},
    }


def random_encoding(x: np.ndarray, width: int = 200, out: int = 2, seed: int = 0) -> np.ndarray:
    """Liu appendix I: images through one randomly initialized tanh MLP (std 1/sqrt(fan_in)) to
    ``out``-dimensional embeddings (N, out), scaled so that Z = sum |f|^2 = N."""
    rng = np.random.default_rng(seed)
    hidden = np.tanh(x @ rng.standard_normal((x.shape[1], width)) / np.sqrt(x.shape[1]))
    features = hidden @ rng.standard_normal((width, out)) / np.sqrt(width)
    features -= features.mean(axis=0)
    return features * np.sqrt(len(features) / np.sum(features**2))


def structure_step(run: Run) -> tuple[float, float, float]:
    """(first step where ``effective/within_class`` has covered half its way from its first to
    its last value (interpolated), first value, last value)."""
    from grokscope.experiments.layerwise import crossing_step

    frame = run.metrics[["step", "effective/within_class"]].dropna()
    steps, values = frame["step"].to_numpy(), frame["effective/within_class"].to_numpy()
    start, end = float(values[0]), float(values[-1])
    if start <= end:  # no structure formed: never
        return math.inf, start, end
    covered = (start - values) / (start - end)
    return crossing_step(steps, covered, 0.5), start, end


def class_structure(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """Liu appendix I (eq. 32, fig. 19): the gradient flow of free embeddings of digits on the
    class effective loss collapses each class to its mean while Z stays fixed; in trained MLPs the
    same loss, read on the last hidden layer of test images, falls when the test accuracy rises --
    late in a grokking (large-init) run, early after weight downscaling."""
    from grokscope.report.theory import plot_class_structure
    from grokscope.runner import Experiment
    from grokscope.theory.effective import integrate_class_effective, within_class_fraction

    first = next(iter(runs.values()))
    task = Experiment(first.config, device="cpu").task
    keep = 200 if smoke else len(task.x_train)
    x, labels = task.x_train[:keep].double().numpy(), task.y_train[:keep].numpy()
    F0 = random_encoding(x)
    times = np.concatenate([[0.0], np.geomspace(0.1, 10.0 if smoke else 100.0, 12)])
    path = integrate_class_effective(F0, labels, times)
    Z = np.sum(path**2, axis=(1, 2))
    within = np.array([within_class_fraction(F, labels) for F in path])
    numbers: dict[str, Any] = {
        "theory_within_start": float(within[0]),
        "theory_within_end": float(within[-1]),
        "theory_z_drift": float(np.max(np.abs(Z / Z[0] - 1))),
    }
    structure = {}
    for label, run in runs.items():
        step, start, end = structure_step(run)
        structure[label] = step
        numbers[f"{label}_structure_step"] = step
        numbers[f"{label}_within_start"] = start
        numbers[f"{label}_within_end"] = end
    plot_class_structure(path, labels, times, within, runs, structure, out / "figure.png")
    return numbers


@dataclass
class EmbeddingTimeline:
    """One transformer run on modular addition, summarized as in Liu figs. 1 and 7 (left)."""

    label: str
    fit_step: float  # first step with train accuracy >= 0.9 (inf if never)
    generalization_step: float  # first step with test accuracy >= 0.9 (inf if never)
    init_step: int
    before_step: int  # the stored step nearest the fit step (memorized, not yet generalized)
    end_step: int
    ring_init: float  # Fourier concentration of the first two PCs (own PCA) at init
    ring_before: float
    ring_end: float
    ring_at_generalization: float  # at the first stored step >= the generalization step
    ring_init_on_final: float  # the initial table on the final first two PCs (app. K)
    dim_init: float  # effective dimension exp(S)
    dim_peak: float  # its highest value up to the generalization step (or the end)
    dim_at_generalization: float
    dim_end: float

    @property
    def dim_drop(self) -> float:
        """Relative fall of exp(S) from its peak to the end."""
        return (self.dim_peak - self.dim_end) / self.dim_peak

    @property
    def drop_after_generalization(self) -> float:
        """Share of that fall that happens after the generalization step (nan without a fall)."""
        fall = self.dim_peak - self.dim_end
        return (self.dim_at_generalization - self.dim_end) / fall if fall > 0 else math.nan


def top_two_ring(table: np.ndarray, basis_table: np.ndarray | None = None) -> float:
    """Fourier concentration (``measures.embedding.fourier_concentration``) of ``table`` on the
    first two principal axes of ``basis_table`` (its own when None): 1 for Liu's ring."""
    import torch

    from grokscope.measures.embedding import fourier_concentration, pca, project

    own = torch.from_numpy(table)
    basis = pca(own if basis_table is None else torch.from_numpy(basis_table))
    return fourier_concentration(project(own, basis, 2))[0]


def embedding_timeline(label: str, run: Run) -> EmbeddingTimeline:
    from grokscope.report.embedding import stored_tables

    summary = run.summary
    fit = summary.get("fit_step")
    generalization = summary.get("generalization_step")
    fit = math.inf if fit is None else float(fit)
    generalization = math.inf if generalization is None else float(generalization)
    tables = stored_tables(run)
    steps = np.array(sorted(tables))
    before = int(steps[np.argmin(np.abs(steps - (fit if math.isfinite(fit) else steps[-1])))])
    frame = run.metrics[["step", "embedding/effective_dim"]].dropna()
    dim_steps, dims = frame["step"].to_numpy(), frame["embedding/effective_dim"].to_numpy()
    until = dim_steps <= (generalization if math.isfinite(generalization) else dim_steps[-1])
    at_generalization = dims[until][-1]
    return EmbeddingTimeline(
        label=label,
        fit_step=fit,
        generalization_step=generalization,
        init_step=int(steps[0]),
        before_step=before,
        end_step=int(steps[-1]),
        ring_init=top_two_ring(tables[steps[0]]),
        ring_before=top_two_ring(tables[before]),
        ring_end=top_two_ring(tables[steps[-1]]),
        ring_at_generalization=top_two_ring(
            tables[int(steps[min(np.searchsorted(steps, generalization), len(steps) - 1)])]
        )
        if math.isfinite(generalization)
        else math.nan,
        ring_init_on_final=top_two_ring(tables[steps[0]], tables[steps[-1]]),
        dim_init=float(dims[0]),
        dim_peak=float(dims[until].max()),
        dim_at_generalization=float(at_generalization),
        dim_end=float(dims[-1]),
    )


def transformer_embeddings(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """Liu figs. 1 and 7 (left): a transformer's embeddings on modular addition on their first two
    principal components before and after generalization, and their effective dimension exp(S)
    over training. The ring of fig. 1 is read as the Fourier concentration of the two PC
    coordinates over the token index (1: a ring ordered by k t mod p; ~0.1 for p = 53 without
    structure). Numbers (medians over runs): ``grokked`` (share of runs reaching test accuracy
    0.9), ``ring_before`` / ``ring_end`` (after memorization / at the end), ``ring_init_on_final``
    (app. K), ``dim_drop`` (relative fall of exp(S) from its peak up to generalization to the end)
    and ``drop_after`` (share of that fall after the generalization step)."""
    import json

    from grokscope.report.embedding import plot_transformer_embeddings

    rows = [embedding_timeline(label, run) for label, run in runs.items()]
    (out / "embedding_timelines.json").write_text(
        json.dumps(
            [{**asdict(r), "dim_drop": r.dim_drop, "drop_after": r.drop_after_generalization} for r in rows], indent=1
        )
    )
    plot_transformer_embeddings(
        rows, runs, rows[0].label, out / "figure.png", title="Liu transformer on a + b mod 53: embedding geometry"
    )

    def median(values: list[float]) -> float:
        known = [v for v in values if not math.isnan(v)]
        return float(np.median(known)) if known else math.nan

    return {
        "grokked": float(np.mean([math.isfinite(r.generalization_step) for r in rows])),
        "ring_init": median([r.ring_init for r in rows]),
        "ring_before": median([r.ring_before for r in rows]),
        "ring_end": median([r.ring_end for r in rows]),
        "ring_at_generalization": median([r.ring_at_generalization for r in rows]),
        "ring_init_on_final": median([r.ring_init_on_final for r in rows]),
        "dim_init": median([r.dim_init for r in rows]),
        "dim_peak": median([r.dim_peak for r in rows]),
        "dim_end": median([r.dim_end for r in rows]),
        "dim_rise": median([r.dim_peak / r.dim_init - 1 for r in rows]),
        "dim_drop": median([r.dim_drop for r in rows]),
        "drop_after": median([r.drop_after_generalization for r in rows]),
        "delay_ratio": median(
            [r.generalization_step / r.fit_step if math.isfinite(r.fit_step) else math.nan for r in rows]
        ),
        "runs": len(rows),
    }
