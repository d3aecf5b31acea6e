"""The modular-addition sweep that ``grokscope leadtime`` is run on (issue 8, part 3): weight
decay x init scale x seeds, each cell an ordinary run folder ``OUT/wd<wd>_init<alpha>_seed<s>``.

a + b mod 47, half of the 2209 pairs for training, one-hidden-layer ReLU MLP (94-128-47, no
output bias), full-batch AdamW lr 0.03, 6000 steps; probes at every evaluation step (about 166
steps: 20 per decade on a log grid and every 60 steps): loss and accuracy, weight norms,
O-information of the hidden layer (Clauw et al.), the RPD gradient (Zhao-B) and neural collapse
of the last hidden layer (NC1..NC4). 18 runs, 30-60 s each on a free core; 22 minutes in all
(1327 s) on one core of a 2-core machine shared with three other jobs. Every run groks (17
grokking, 1 comprehension at weight decay 2).

    OMP_NUM_THREADS=1 python benchmarks/leadtime_sweep.py [--out runs/leadtime] [--steps 6000]
    grokscope leadtime runs/leadtime                  # whole series
    grokscope leadtime runs/leadtime --window fit     # from each run's fit step on
    grokscope report runs/leadtime                    # runs table, both lead tables, a report per run

Finished runs are kept (the script can be killed and started again); ``--force`` retrains.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import grokscope
from grokscope.config import parse_config
from grokscope.store import RunStore, is_run_folder

WEIGHT_DECAYS = (0.5, 1.0, 2.0)
INIT_SCALES = (1.0, 2.0)
SEEDS = (0, 1, 2)


def cell_config(weight_decay: float, init_scale: float, seed: int, steps: int, p: int) -> dict:
    return {
        "name": f"wd{weight_decay:g}_init{init_scale:g}_seed{seed}",
        "device": "cpu",
        "seed": seed,
        "task": {"name": "modular_arithmetic", "p": p, "train_fraction": 0.5},
        "model": {"name": "mlp", "width": 128, "init_scale": init_scale, "output_bias": False},
        "optimizer": {"name": "adamw", "lr": 0.03, "weight_decay": weight_decay},
        "training": {"steps": steps},
        "probes": [
            {"name": "loss_accuracy"},
            {"name": "weight_norm"},
            {"name": "oinfo", "layer": 0, "bins": 10, "cadence": "every"},
            {"name": "rpd", "cadence": "every"},
            {"name": "collapse", "cadence": "every"},
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/leadtime"))
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--p", type=int, default=47)
    parser.add_argument("--force", action="store_true", help="retrain finished runs")
    args = parser.parse_args()
    started = time.monotonic()
    for weight_decay, init_scale, seed in itertools.product(WEIGHT_DECAYS, INIT_SCALES, SEEDS):
        config = parse_config(cell_config(weight_decay, init_scale, seed, args.steps, args.p))
        folder = args.out / config.name
        if not args.force and is_run_folder(folder) and RunStore(folder).summary().get("status") == "finished":
            print(f"{config.name}: finished before, kept")
            continue
        run = grokscope.run(config, out=folder, force=True, progress=False)
        summary = run.summary
        print(
            f"{config.name}: phase {summary.get('phase')}, fit {summary.get('fit_step')}, "
            f"generalization {summary.get('generalization_step')}, {summary.get('wall_seconds')} s",
            flush=True,
        )
    print(f"wall time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
