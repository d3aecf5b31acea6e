"""Throughput of the batched ensemble against sequential runs of the same cells, in the same
process: the Liu toy-model grid of ``liu_grid_100.yaml`` (decoder lr x decoder weight decay,
p = 10 regression, decoder 1-200-200-30) with ``--cells`` cells, ``--steps`` steps each, every
cell a full run (run folder, loss/accuracy and weight-norm probes every ``--eval-every`` steps,
10 as the preset evaluates, and on a log grid of 5 points per decade; a final checkpoint).
Whether the ensemble gives each cell of that grid the phase the sequential run gives it, at the
full budget, is ``benchmarks/sweep_labels.py``'s question.

Prints model-steps per second and milliseconds per model-step of the sequential runs and of
the ensemble, eager (the default: on CPU, stacks of at least 25 cells side by side, one per
torch thread, each stepped in a thread of its own, ``ensemble.side_by_side``) and compiled
(``compile=True``: ``torch.compile`` of the stacked step, one stack; Inductor's cache starts
empty, so the first compiled run includes a first compilation, as a machine's first sweep does,
and the second finds the cache warm), and the ensembles' ratios to the sequential runs (target:
>= 5x on 100 cells on 2 CPU cores). The sides alternate, a quarter of the sequential runs before
each of the four ensemble runs, so that the machine's drifting speed biases neither. Then the
same for the bare training step alone (no probes, no run folder; best of 3 rounds, the paths
alternating; the eager step of one stack too), and where the eager step of one stack goes, by
operation (torch profiler): once Python is out of the way, its arithmetic (batched matmuls,
tanh, the fused Adam kernel) bounds the ratio. For scale: the paper's own toy code runs one cell
at about 2.7 ms per step, evaluating every step (``--eval-every 1``).

    python benchmarks/sweep_ensemble.py [--cells 100] [--steps 1000] [--eval-every 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from torch.profiler import profile

import grokscope
from grokscope.runner import Experiment
from grokscope.sweep import SweepSpec, expand
from grokscope.train.ensemble import (
    StackedGroup,
    _open_member,
    in_threads,
    reuse_freed_memory,
    side_by_side,
    stacks_side_by_side,
    train_ensemble,
)

GRID = Path(__file__).with_name("liu_grid_100.yaml")
"""The grid at its full budget (2e4 steps): ``benchmarks/sweep_labels.py`` compares the phases."""


def grid(cells: int, steps: int, eval_every: int = 10):
    """The cells of ``GRID``, about sqrt(cells) per axis, each ``steps`` steps long."""
    data = yaml.safe_load(GRID.read_text())
    side = max(1, round(math.sqrt(cells)))
    learning_rates, weight_decays = data["axes"].values()
    learning_rates["num"], weight_decays["num"] = side, max(1, cells // side)
    data["overrides"].update(
        {
            "training": {"steps": steps},
            "schedule": {"linear_points": max(1, steps // eval_every), "log_points_per_decade": 5},
            # one checkpoint, at the end: at a few hundred steps the default (every budget/10)
            # would time the disk more than the training, on both sides alike
            "output": {"checkpoint_every": steps},
        }
    )
    return expand(SweepSpec.model_validate(data))


def full_runs(cells, root: Path) -> tuple[float, dict[str, list[tuple[float, float]]]]:
    """Seconds for the sequential runs, and for each run of the eager and compiled ensembles
    with the seconds until its first step had ended (opening the cells and, when compiled,
    compiling); each cell a complete run folder. The machine's speed drifts by tens of percent
    over minutes, so the sides alternate: a quarter of the sequential runs, then an ensemble
    run, four times (eager, compiled into Inductor's empty cache, eager, compiled again from the
    warm cache). Each side's time is then spread over the whole benchmark."""
    sequential = 0.0
    runs: dict[str, list[tuple[float, float]]] = {"ensemble": [], "compiled": []}
    for round_, (label, compile) in enumerate([("ensemble", False), ("compiled", True)] * 2):
        sequential += _sequential(cells[round_::4], root)
        started = time.perf_counter()
        first: list[float] = []

        def on_step(_: int, first: list[float] = first, started: float = started) -> None:
            if not first:
                first.append(time.perf_counter() - started)

        folders = [root / f"{label}{round_}" / c.id for c in cells]
        train_ensemble([c.config for c in cells], folders, on_step=on_step, compile=compile)
        runs[label].append((time.perf_counter() - started, first[0]))
    return sequential, runs


def _sequential(cells, root: Path) -> float:
    started = time.perf_counter()
    for cell in cells:
        grokscope.run(cell.config, out=root / "seq" / cell.id, progress=False)
    return time.perf_counter() - started


def bare_steps(cells, groups: dict[str, list[StackedGroup]], steps: int, rounds: int = 3) -> dict[str, float]:
    """Seconds per model-step of the training step alone: each cell's Trainer.train_step in turn,
    and for each label the StackedGroup.train_step of its stacks (``groups``: label -> stacks;
    several stacks side by side in threads, as ``train_ensemble`` steps them), each path run once
    beforehand so that compiling and the one-time probes of ``stacked_linear`` and
    ``stacked_adam`` for its number of threads are not timed; the best of ``rounds`` rounds, the
    paths alternating."""
    trainers = [Experiment(c.config).trainer([]) for c in cells]

    def sequential() -> None:
        for trainer in trainers:
            for _ in range(steps):
                trainer.train_step()

    def stacked(stacks: list[StackedGroup], steps: int) -> Callable[[], None]:
        def work(group: StackedGroup, _: object = None) -> None:
            for _ in range(steps):
                group.train_step()

        return (lambda: work(stacks[0])) if len(stacks) == 1 else (lambda: in_threads(stacks, work))

    for stacks in groups.values():
        stacked(stacks, 1)()
    paths = {"sequential": sequential, **{label: stacked(stacks, steps) for label, stacks in groups.items()}}
    best = dict.fromkeys(paths, math.inf)
    for _ in range(rounds):
        for label, path in paths.items():
            started = time.perf_counter()
            path()
            best[label] = min(best[label], (time.perf_counter() - started) / (steps * len(cells)))
    return best


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


def machine() -> str:
    """The CPU (its name, and its family and model, which tell apart CPUs that share a name), its
    cores and the vector unit torch's kernels use: the ratio depends on them. On three kinds of
    2-core machine its median was 5.1x (AVX2, one stack), 4.7x (an AMD Zen 4 with AVX-512, where
    MKL takes its generic code path) and 6.3x (an Intel Xeon with AVX-512): docs/benchmarks.md."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        first = {}
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            first.setdefault(key.strip(), value.strip())
        if "model name" in first:
            model = f"{first['model name']} (family {first.get('cpu family', '?')}, model {first.get('model', '?')})"
    return f"{model}, {os.cpu_count()} cores, torch CPU capability {torch.backends.cpu.get_cpu_capability()}"


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
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")  # a first compilation
        sequential, runs = full_runs(cells, Path(tmp))
        print(f"full runs (run folders, probes every {args.eval_every} steps and on a log grid, final checkpoint):")

        def rate(label: str, seconds: float, ratio: bool = True) -> str:
            line = (
                f"  {label:28s} {seconds:7.1f} s {model_steps / seconds:6.0f} model-steps/s "
                f"{seconds / model_steps * 1e3:6.3f} ms/model-step"
            )
            return line + (f"  {sequential / seconds:5.2f}x" if ratio else "")

        print(rate("sequential", sequential, ratio=False))
        eager, compiled = runs["ensemble"], runs["compiled"]
        print(rate("ensemble (mean of 2 runs)", sum(t for t, _ in eager) / 2))
        print(rate("compiled, empty cache", compiled[0][0]))
        print(rate("compiled, warm cache", compiled[1][0]))
        print("  target: ensemble / sequential >= 5x")
        for label, label_runs in runs.items():
            print(
                f"  {label} runs: " + ", ".join(f"{t:.1f} s (first step ended after {f:.1f} s)" for t, f in label_runs)
            )
        print("after the first step (without opening the cells and compiling), mean of 2 runs:")
        for label, label_runs in runs.items():
            rest = sum(t - f for t, f in label_runs) / 2 / (model_steps - len(cells))
            print(f"  {label:10s} {rest * 1e3:6.3f} ms/model-step  {sequential / model_steps / rest:5.2f}x")
        groups = {}
        for label, compile in (("ensemble", False), ("one stack", False), ("compiled", True)):
            members = [
                _open_member(i, c.config, Path(tmp) / "bare" / label / c.id, None, []) for i, c in enumerate(cells)
            ]
            count = side_by_side(members, compile) if label == "ensemble" else 1
            groups[label] = stacks_side_by_side(members, count, compile)
        best = bare_steps(cells, groups, args.bare_steps)
        print(f"bare training step ({args.bare_steps} steps, best of 3; ensemble: {len(groups['ensemble'])} stacks):")
        for label, seconds in best.items():
            ratio = "" if label == "sequential" else f"  {best['sequential'] / seconds:5.2f}x"
            print(f"  {label:10s} {seconds * 1e3:6.3f} ms/model-step{ratio}")
        step_breakdown(groups["one stack"][0])
        for stacks in groups.values():
            for group in stacks:
                for member in group.members:
                    member.store.unlock()
    print("for scale: the paper's toy code, about 2.7 ms per step for one cell (evaluating every step)")


if __name__ == "__main__":
    main()
