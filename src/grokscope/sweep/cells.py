"""A sweep cell on disk: its state, training it as an ordinary run, and recording a failure.

Every backend ends each cell the same way: a run folder that ``grokscope.open_run`` reads.
The state of a cell is read from its folder alone, which is what makes sweeps resumable:

- ``pending``: no run folder yet;
- ``finished`` / ``diverged``: done (a diverged run is a result, e.g. of too large a learning rate);
- ``interrupted``: started but not done (killed, or stopped with Ctrl-C); resumed from its last
  checkpoint;
- ``failed``: training raised an error, recorded in summary.json; retried only when asked.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from grokscope.config import RunConfig, parse_config
from grokscope.errors import RunFolderError
from grokscope.store import RunStore, is_run_folder

CellState = Literal["pending", "finished", "diverged", "interrupted", "failed"]
DONE: frozenset[str] = frozenset({"finished", "diverged"})


@dataclass(frozen=True)
class CellJob:
    """What a backend needs to train one cell (plain data, so it travels to other processes)."""

    id: str
    config: dict[str, Any]
    folder: str


def cell_state(folder: Path) -> CellState:
    if not is_run_folder(folder):
        return "pending"
    status = RunStore(folder).summary().get("status")
    if status in DONE or status == "failed":
        return status
    return "interrupted"


def same_config(folder: Path, config: RunConfig) -> bool:
    """Whether the run folder was made from ``config`` (provenance aside)."""
    stored = dict(RunStore(folder).config())
    stored.pop("provenance", None)
    wanted = config.to_dict()
    wanted.pop("provenance", None)
    return json.dumps(stored, sort_keys=True) == json.dumps(wanted, sort_keys=True)


def train_cell(job: CellJob, device: str | None = None) -> CellState:
    """Train (or resume) one cell into its folder; an error is recorded, not raised.

    A Ctrl-C during training ends the run as ``interrupted`` (the trainer saves a checkpoint);
    it is raised again here so that the sweep stops too.
    """
    from grokscope.runner import run

    try:
        result = run(parse_config(job.config), out=job.folder, resume=True, device=device, progress=False)
    except (KeyboardInterrupt, RunFolderError):
        raise
    except Exception as error:  # a cell's error must not end the other cells
        record_failure(Path(job.folder), job.config, error)
        return "failed"
    status = result.summary.get("status")
    if status == "interrupted":
        raise KeyboardInterrupt
    return status


def record_failure(folder: Path, config: dict[str, Any], error: BaseException) -> None:
    """Write the error into the cell's run folder (summary.json status ``failed`` and an event)."""
    store = RunStore(folder).lock()
    try:
        if not is_run_folder(folder):
            store.write_config(config)
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        summary = {**store.summary(), "name": config.get("name"), "status": "failed", "error": message}
        store.write_summary(summary)
        store.event("failed", error=message, traceback="".join(traceback.format_exception(error))[-4000:])
    finally:
        store.unlock()
