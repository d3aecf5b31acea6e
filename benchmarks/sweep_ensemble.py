"""Throughput of the batched ensemble against sequential runs of the same cells, in the same
process: a Liu toy-model grid (decoder lr x decoder weight decay, p = 10 regression, decoder
1-200-200-30) of ``--cells`` cells, ``--steps`` steps each, every cell a full run (run folder,
loss/accuracy and weight-norm probes every ``--eval-every`` steps, 10 as the preset evaluates,
and on a log grid of 5 points per decade; a final checkpoint).

Prints model-steps per second and milliseconds per model-step of both paths, and their ratio
(target: >= 5x on 100 cells on 2 CPU cores); the same for the bare training step alone (no
probes, no run folder; best of 3 rounds, the two paths alternating); then where the stacked
step's time goes, by operation (torch profiler): once Python is out of the way, its arithmetic
(batched matmuls, tanh, the fused Adam kernel) bounds the ratio. For scale: the paper's own toy
code runs one cell at about 2.7 ms per step, evaluating every step (``--eval-every 1``).

    python benchmarks/sweep_ensemble.py [--cells 100] [--steps 1000] [--eval-every 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import profile

import grokscope
from grokscope.runner import Experiment
from grokscope.sweep import SweepSpec, expand
from grokscope.train.ensemble import StackedGroup, _open_member, reuse_freed_memory, train_ensemble


def grid(cells: int, steps: int, eval_every: int = 10):
    side = max(1, round(math.sqrt(cells)))
    spec = SweepSpec.model_validate(
        {
            "name": "bench",
            "base": "liu_fig6b_toy_addition",
            "overrides": {
                "device": "cpu",
                "training": {"steps": steps},
                "schedule": {"linear_points": max(1, steps // eval_every), "log_points_per_decade": 5},
                # one checkpoint, at the end: at a few hundred steps the default (every budget/10)
                # would time the disk more than the training, on both sides alike
                "output": {"checkpoint_every": steps},
            },
            "axes": {
                "optimizer.groups.decoder.lr": {"log": [1e-5, 1e-2], "num": side},
                "optimizer.groups.decoder.weight_decay": {"linear": [0, 10], "num": max(1, cells // side)},
            },
        }
    )
    return expand(spec)


def full_runs(cells, root: Path) -> tuple[float, float]:
    """Seconds for the sequential runs and for the ensemble, each cell a complete run folder. The
    sequential runs are timed in two halves, before and after the ensemble, so that a machine
    whose speed drifts during the benchmark biases neither side."""
    half = len(cells) // 2
    sequential = _sequential(cells[:half], root)
    started = time.perf_counter()
    train_ensemble([c.config for c in cells], [root / "ens" / c.id for c in cells])
    ensemble = time.perf_counter() - started
    return sequential + _sequential(cells[half:], root), ensemble


def _sequential(cells, root: Path) -> float:
    started = time.perf_counter()
    for cell in cells:
        grokscope.run(cell.config, out=root / "seq" / cell.id, progress=False)
    return time.perf_counter() - started


def bare_steps(cells, group: StackedGroup, steps: int, rounds: int = 3) -> tuple[float, float]:
    """Seconds per model-step of the training step alone: each cell's Trainer.train_step in turn,
    and one StackedGroup.train_step for all cells; the best of ``rounds`` alternating rounds."""
    trainers = [Experiment(c.config).trainer([]) for c in cells]

    def sequential() -> None:
        for trainer in trainers:
            for _ in range(steps):
                trainer.train_step()

    def stacked() -> None:
        for _ in range(steps):
            group.train_step()

    best = {sequential: math.inf, stacked: math.inf}
    for _ in range(rounds):
        for path in best:
            started = time.perf_counter()
            path()
            best[path] = min(best[path], (time.perf_counter() - started) / (steps * len(cells)))
    return best[sequential], best[stacked]


def step_breakdown(group: StackedGroup, steps: int = 10, rows: int = 6) -> None:
    """The operations that take most of the stacked step: self time by operation (torch profiler),
    as shares of the step (the profiler slows every operation, so its milliseconds are not the
    step's)."""
    with profile() as profiled:
        for _ in range(steps):
            group.train_step()
    events = sorted(profiled.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"where the stacked step of {len(group.members)} cells goes (torch profiler, {steps} steps):")
    for event in events[:rows]:
        print(f"  {event.key:24s} {event.self_cpu_time_total / total:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--bare-steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reuse_freed_memory()  # process-wide (the ensemble sets it): both paths timed under it
    cells = grid(args.cells, args.steps, args.eval_every)
    model_steps = len(cells) * args.steps
    print(f"{len(cells)} cells x {args.steps} steps = {model_steps} model-steps, {args.threads} torch threads")
    with tempfile.TemporaryDirectory() as tmp:
        sequential, ensemble = full_runs(cells, Path(tmp))
        print(f"full runs (run folders, probes every {args.eval_every} steps and on a log grid, final checkpoint):")
        for label, seconds in (("sequential", sequential), ("ensemble", ensemble)):
            print(
                f"  {label:10s} {seconds:8.1f} s  {model_steps / seconds:8.0f} model-steps/s  "
                f"{seconds / model_steps * 1e3:6.3f} ms/model-step"
            )
        print(f"  ratio ensemble / sequential: {sequential / ensemble:.2f}x (target >= 5x)")
        members = [_open_member(i, c.config, Path(tmp) / "bare" / c.id, None, []) for i, c in enumerate(cells)]
        group = StackedGroup(members)
        seq_step, ens_step = bare_steps(cells, group, args.bare_steps)
        print(f"bare training step ({args.bare_steps} steps, best of 3):")
        print(f"  sequential {seq_step * 1e3:6.3f} ms/model-step   ensemble {ens_step * 1e3:6.3f} ms/model-step")
        print(f"  ratio: {seq_step / ens_step:.2f}x")
        step_breakdown(group)
        for member in members:
            member.store.unlock()
    print("for scale: the paper's toy code, about 2.7 ms per step for one cell (evaluating every step)")


if __name__ == "__main__":
    main()
