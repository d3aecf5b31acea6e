"""Overhead of the Zhao-framework probes (lmap, rpd, basins, batchnorm, geometry) at their
default cadences, as a fraction of the training time of the same run with only the basic probes
(loss_accuracy, weight_norm), in the same process; then the time of one basin curve at the size
of the issue's target (1000 samples x 20 amplitudes x 5 trials on a 784-200-200-10 MLP).

    python benchmarks/probe_overhead.py [--steps 2000] [--repeats 2] [--each]

Runs are interleaved (basic, all, basic, all, ...) so drifts in machine load hit both alike; the
best of the repeats is reported. ``--each`` also times every probe alone on top of the basic ones.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import torch

import grokscope
from grokscope.measures.basins import log_amplitudes, sample_space_curves, weight_space_curves
from grokscope.measures.lmap import ChainLayer
from grokscope.runner import Experiment

BASIC = [{"name": "loss_accuracy"}, {"name": "weight_norm"}]
ZHAO = [{"name": name} for name in ("lmap", "rpd", "basins", "batchnorm", "geometry")]
CONFIG = {
    "name": "bench",
    "device": "cpu",
    "task": {"name": "digits", "train_fraction": 0.6, "n_train": 1000},
    "model": {"name": "mlp", "depth": 3, "width": 200, "batch_norm": True},
    "optimizer": {"name": "adam", "lr": 1e-3},
}


def timed_run(steps: int, probes: list[dict]) -> float:
    config = grokscope.parse_config({**CONFIG, "training": {"steps": steps}, "probes": probes})
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        grokscope.run(config, out=Path(folder) / "run", progress=False)
        return time.perf_counter() - started


def basin_curve_seconds(repeats: int) -> dict[str, float]:
    """Best time of each basin curve on a random 784-200-200-10 ReLU MLP and 1000 samples."""
    generator = torch.Generator().manual_seed(0)
    widths = [784, 200, 200, 10]
    layers = [
        ChainLayer(
            torch.randn(n_out, n_in, generator=generator) / n_in**0.5,
            torch.zeros(n_out),
            activation="relu" if n_out != 10 else "identity",
        )
        for n_in, n_out in itertools.pairwise(widths)
    ]
    x = torch.rand(1000, 784, generator=generator)
    y = torch.randint(0, 10, (1000,), generator=generator)
    amplitudes = log_amplitudes(1e-4, 10.0, 20)
    curves = {
        "sample space": lambda: sample_space_curves(layers, x, y, amplitudes, 5, generator, 0.0, 1.0),
        "sample space, noise on the inputs": lambda: sample_space_curves(
            layers, x, y, amplitudes, 5, generator, 0.0, 1.0, project_noise=False
        ),
        "weight space": lambda: weight_space_curves(layers, x, y, amplitudes, 5, generator),
    }
    best = {}
    for name, curve in curves.items():
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            curve()
            times.append(time.perf_counter() - started)
        best[name] = min(times)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--each", action="store_true", help="also time every probe alone")
    args = parser.parse_args()
    variants = {"basic": BASIC, "basic + Zhao probes": BASIC + ZHAO}
    if args.each:
        variants.update({f"basic + {probe['name']}": [*BASIC, probe] for probe in ZHAO})
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, probes in variants.items():
            times[name].append(timed_run(args.steps, probes))
    config = grokscope.parse_config({**CONFIG, "training": {"steps": args.steps}, "probes": BASIC + ZHAO})
    experiment = Experiment(config)
    schedule = {probe.name: len(experiment.schedule.steps_for(probe.cadence)) for probe in experiment.probes}
    print(
        f"config: digits (1000 train), MLP 64-200-200-10 with batch norm, full batch Adam, {args.steps} steps, "
        f"torch threads {torch.get_num_threads()}, best of {args.repeats}"
    )
    print("evaluations per probe at the default cadences: " + ", ".join(f"{k} {v}" for k, v in schedule.items()))
    base = min(times["basic"])
    for name, values in times.items():
        best = min(values)
        overhead = "" if name == "basic" else f"  overhead {(best - base) / base:6.1%} of the basic run"
        print(f"{name:28s} {best:7.2f} s{overhead}")
    print("basin curve, 1000 samples x 20 amplitudes x 5 trials, 784-200-200-10 MLP:")
    for name, seconds in basin_curve_seconds(args.repeats + 1).items():
        print(f"  {name:36s} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
