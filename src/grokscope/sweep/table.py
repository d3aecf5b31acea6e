"""The sweep table: ``sweep.parquet``, one row per cell, read from the cells' run folders.

Columns: ``cell`` (id), ``path`` (run folder relative to the sweep folder), one column per axis
(named by its dotted config key), ``status``, ``phase``, ``fit_step``, ``generalization_step``,
the same at every analysis threshold (``fit_step@0.99``...), ``gap_steps``, ``delay_ratio``,
``delayed``, ``step`` (last step trained), ``wall_seconds``, ``error`` (failed cells), and
``final/<metric>`` for the last value of every metric (``final/test/acc``).

The run folders are the source of truth: the table is a view of them, rewritten as cells
finish, so a killed sweep loses nothing but the view, and the next run rebuilds it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from grokscope.errors import RunFolderError
from grokscope.store import RunStore, atomic_write
from grokscope.sweep.cells import cell_state

TABLE_NAME = "sweep.parquet"
SPEC_NAME = "sweep.yaml"
CELLS_DIR = "cells"

SUMMARY_KEYS = (
    "phase",
    "fit_step",
    "generalization_step",
    "gap_steps",
    "delay_ratio",
    "delayed",
    "step",
    "wall_seconds",
    "error",
)


def cell_row(sweep_dir: Path, cell_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """The table row of one cell, from its run folder (a pending cell has only its axis values)."""
    folder = sweep_dir / CELLS_DIR / cell_id
    row: dict[str, Any] = {"cell": cell_id, "path": f"{CELLS_DIR}/{cell_id}"}
    row.update({key: _plain(value) for key, value in values.items()})
    row["status"] = cell_state(folder)
    summary = RunStore(folder).summary()
    for key in SUMMARY_KEYS:
        row[key] = summary.get(key)
    for key, value in summary.items():
        if key.startswith(("fit_step@", "generalization_step@")):
            row[key] = value
    for key, value in summary.get("final", {}).items():
        row[f"final/{key}"] = value
    return row


def _plain(value: Any) -> Any:
    """Axis values that a parquet column holds (lists and mappings as JSON text)."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    table = pd.DataFrame(list(rows))
    for column in table.columns:
        # step columns hold None where a threshold was never reached: keep them numeric
        if column.startswith(("fit_step", "generalization_step", "gap_steps", "delay_ratio", "step")):
            table[column] = pd.to_numeric(table[column], errors="coerce").astype("Float64")
    return table


def write_table(sweep_dir: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path = sweep_dir / TABLE_NAME
    table = frame(rows)
    atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
    return path


def is_sweep_folder(path: Path) -> bool:
    return (Path(path) / SPEC_NAME).is_file()


class SweepResult:
    """A sweep folder, read back: its axes, table and cells' runs.

    >>> sweep = grokscope.sweep.open_sweep("runs/liu_phase")          # doctest: +SKIP
    >>> sweep.table[["cell", "phase", "generalization_step"]]          # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not is_sweep_folder(self.path):
            raise RunFolderError(f"{self.path}: not a sweep folder (no {SPEC_NAME})")
        self.record = yaml.safe_load((self.path / SPEC_NAME).read_text())

    def __repr__(self) -> str:
        return f"SweepResult({str(self.path)!r}, cells={len(self.record['cells'])})"

    @property
    def name(self) -> str:
        return self.record["spec"].get("name", self.path.name)

    @property
    def axes(self) -> list[str]:
        """Axis keys in spec order (the seed axis, if any, last)."""
        return list(self.record["axes"])

    @property
    def table(self) -> pd.DataFrame:
        """The sweep table; rebuilt from the run folders when sweep.parquet is missing."""
        path = self.path / TABLE_NAME
        if path.is_file():
            return pd.read_parquet(path)
        return frame(self.rows())

    def rows(self) -> list[dict[str, Any]]:
        return [cell_row(self.path, c["id"], c["values"]) for c in self.record["cells"]]

    def run(self, cell_id: str):
        from grokscope.runner import open_run

        return open_run(self.path / CELLS_DIR / cell_id)


def open_sweep(path: str | Path) -> SweepResult:
    return SweepResult(path)
