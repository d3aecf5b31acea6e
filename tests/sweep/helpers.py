"""A small sweep for backend tests: 4 cells of a 16-unit MLP, a fraction of a second each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from grokscope.runner import open_run
from grokscope.sweep import open_sweep
from tests.conftest import tiny_config_data


def small_spec(steps: int = 60, checkpoint_every: int | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "name": "small",
        "base": tiny_config_data(
            training={"steps": steps}, schedule={"linear_points": 10}, output={"checkpoint_every": checkpoint_every}
        ),
        "axes": {"optimizer.lr": [0.01, 0.03], "optimizer.weight_decay": [0.0, 1.0]},
        **fields,
    }


def write_spec(path: Path, **kwargs: Any) -> Path:
    path.write_text(yaml.safe_dump(small_spec(**kwargs)))
    return path


def comparable_table(folder: Path) -> pd.DataFrame:
    """The sweep table without what differs between two trainings of the same cells (time)."""
    return open_sweep(folder).table.drop(columns=["wall_seconds"]).sort_values("cell").reset_index(drop=True)


def assert_same_sweep(a: Path, b: Path) -> None:
    """Equal tables and, cell by cell, equal metrics, summaries (time aside) and final weights."""
    pd.testing.assert_frame_equal(comparable_table(a), comparable_table(b))
    for cell in open_sweep(a).table["cell"]:
        run_a, run_b = open_run(a / "cells" / cell), open_run(b / "cells" / cell)
        pd.testing.assert_frame_equal(run_a.metrics, run_b.metrics)
        summary_a = {k: v for k, v in run_a.summary.items() if k != "wall_seconds"}
        summary_b = {k: v for k, v in run_b.summary.items() if k != "wall_seconds"}
        assert summary_a == summary_b
        assert run_a.checkpoint_steps() == run_b.checkpoint_steps()
        for p, q in zip(run_a.load_model().parameters(), run_b.load_model().parameters(), strict=True):
            assert (p == q).all()
