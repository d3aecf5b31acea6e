"""Seconds per checkpoint of the O-info layer pipeline (drop constant neurons, cluster 250
neurons into 10 bins, exhaustive search over all 968 multiplets of 3..10 bins) on the O-info
setup: 3,763 training samples x 250 hidden ReLU units of the modular-addition MLP (p = 97),
after a short training so the layer has its dead neurons and structure. Target: < 0.5 s on CPU.

Baseline in the same run: the same search with every multiplet estimated on its own
(``o_information`` of each subset of bin signals), as a straightforward implementation would.

    python benchmarks/oinfo_search.py [--steps 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import numpy as np
import torch

import grokscope
from grokscope.measures.oinfo import cluster_neurons, layer_oinfo, o_information
from grokscope.runner import Experiment

CONFIG = {
    "name": "bench",
    "device": "cpu",
    "task": {"name": "modular_arithmetic", "p": 97, "train_fraction": 0.4},
    "model": {"name": "mlp", "depth": 2, "width": 250, "output_bias": False},
    "optimizer": {"name": "adamw", "lr": 0.03, "weight_decay": 2.0},
}


def trained_layer(steps: int) -> np.ndarray:
    """(3763, 250) post-ReLU activations of the first hidden layer after ``steps`` updates."""
    config = grokscope.RunConfig.model_validate({**CONFIG, "training": {"steps": steps}})
    experiment = Experiment(config)
    experiment.trainer(callbacks=[]).fit()
    with torch.no_grad():
        return experiment.model.eval().trace(experiment.task.x_train).layers[0].x.double().numpy()


def naive_search(activations: np.ndarray, n_bins: int = 10) -> float:
    """Every multiplet's O-information computed from its own copula transform and covariance."""
    active = activations[:, np.ptp(activations, axis=0) > 0]
    labels = cluster_neurons(active, n_bins)
    signals = np.stack([active[:, labels == b].mean(axis=1) for b in range(n_bins)], axis=1)
    return min(
        o_information(signals[:, list(subset)])
        for order in range(3, n_bins + 1)
        for subset in itertools.combinations(range(n_bins), order)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    activations = trained_layer(args.steps)
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        result = layer_oinfo(activations, n_bins=10)
        times.append(time.perf_counter() - started)
    fast = statistics.median(times)
    started = time.perf_counter()
    naive = naive_search(activations)
    slow = time.perf_counter() - started
    print(f"layer: {activations.shape[0]} samples x {activations.shape[1]} neurons, {result.n_active} active")
    print(f"pipeline (batched search), median of {args.repeats}: {fast:.3f} s per checkpoint (target < 0.5 s)")
    print(f"baseline (each multiplet on its own): {slow:.3f} s; speed-up {slow / fast:.1f}x")
    print(f"max synergy {result.synergy:.4f} bits (baseline {naive:.4f}), {result.synergy_neurons} neurons")


if __name__ == "__main__":
    main()
