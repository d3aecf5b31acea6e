"""Figures that lay theory beside experiment: the effective theory of representation learning
(Liu sec. 3.2) beside trained toy models, and the layerwise linear models (closed forms and
integrated gradient flows) beside trained linear networks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from grokscope.report.figures import COLORS, plt, save


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
