"""Steps per second of the grokscope trainer (basic probes, default schedule, run folder
written) against a bare PyTorch loop that computes the same metrics at the same steps, in the
same process, on the same config. Prints the ratio (target: >= 0.95).

    python benchmarks/trainer_vs_bare.py [--steps 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import grokscope
from grokscope.runner import Experiment

CONFIG = {
    "name": "bench",
    "task": {"name": "modular_arithmetic", "p": 97, "train_fraction": 0.4},
    "model": {"name": "mlp", "depth": 2, "width": 250, "output_bias": False},
    "optimizer": {"name": "adamw", "lr": 0.03, "weight_decay": 2.0},
    "device": "cpu",
}


def bare_loop(config: grokscope.RunConfig) -> float:
    """The loop a researcher would write by hand (data and model built the same way, so both
    sides pay for the same set-up); returns seconds."""
    started = time.perf_counter()
    experiment = Experiment(config)
    model, task, objective = experiment.model, experiment.task, experiment.objective
    optimizer = experiment.optimizer
    eval_steps = experiment.schedule.every
    rows = []
    for step in range(config.training.steps + 1):
        if step in eval_steps:
            model.eval()
            with torch.no_grad():
                row = {"step": step}
                for split, x, y in (("train", task.x_train, task.y_train), ("test", task.x_test, task.y_test)):
                    out = model(x)
                    row[f"{split}/loss"] = float(objective.loss(out, y))
                    row[f"{split}/acc"] = float((out.argmax(1) == y).float().mean())
                norms = {n: float(p.double().pow(2).sum()) for n, p in model.named_parameters()}
                row["norm/total"] = sum(norms.values()) ** 0.5
                rows.append(row)
            model.train()
        if step == config.training.steps:
            break
        optimizer.zero_grad(set_to_none=True)
        loss = objective.loss(model(task.x_train), task.y_train)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def grokscope_trainer(config: grokscope.RunConfig) -> float:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        grokscope.run(config, out=Path(folder) / "run", progress=False)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = grokscope.parse_config({**CONFIG, "training": {"steps": args.steps}})
    bare, ours = [], []
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both alike
        bare.append(bare_loop(config))
        ours.append(grokscope_trainer(config))
    best_bare, best_ours = min(bare), min(ours)
    print(
        f"config: modular addition p=97, MLP 194-250-97, full batch AdamW, {args.steps} steps, "
        f"{len(Experiment(config).schedule.every)} evaluation steps, torch threads {torch.get_num_threads()}"
    )
    print(f"bare PyTorch loop : {args.steps / best_bare:8.1f} steps/s  ({best_bare / args.steps * 1e3:.2f} ms/step)")
    print(f"grokscope trainer : {args.steps / best_ours:8.1f} steps/s  ({best_ours / args.steps * 1e3:.2f} ms/step)")
    print(f"ratio grokscope / bare: {best_bare / best_ours:.3f}  (target >= 0.95; best of {args.repeats})")


if __name__ == "__main__":
    main()
