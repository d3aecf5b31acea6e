"""The run folder, and the only code that writes it (DESIGN.md, "the store is the only writer").

    config.yaml             resolved config with package versions
    metrics.parquet         one row per evaluation step
    arrays/<probe>/<step>.npz
    checkpoints/step_<N>/   model.safetensors + state.pt (optimizer, RNG, probe state)
    events.jsonl            started, resumed, stacked (batched ensemble: cells, compiled),
                            diverged, interrupted, finished, failed
    summary.json            fit / generalization steps, phase, final metrics

Every file is written to a temporary name and renamed into place, so a killed process leaves
either the old or the new file, never half of one. A lock file keeps a folder to one writer.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import yaml
from safetensors.torch import load_file, save_file

from grokscope.errors import RunFolderError

LOCK_NAME = ".lock"
# libyaml's safe dumper and loader when PyYAML has them: the same documents, 20x faster (a run
# folder's config took 7 ms to write, as much as ten training steps of a small model)
SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def is_run_folder(path: Path) -> bool:
    return (Path(path) / "config.yaml").is_file()


def find_run_folders(folder: Path) -> dict[str, Path]:
    """Every run folder under ``folder`` (itself included), sorted, keyed by its path relative
    to ``folder`` in POSIX form ("." for ``folder`` itself)."""
    folder = Path(folder)
    paths = sorted(p.parent for p in folder.rglob("config.yaml"))
    return {p.relative_to(folder).as_posix(): p for p in paths}


class RunLock:
    """An exclusive, non-blocking lock on a run folder, released when the process dies."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._file: io.TextIOWrapper | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 (held open for the lock's lifetime)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunFolderError(f"{self.path.parent}: being written by {holder}; wait for it to end") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class RunStore:
    """Reads and writes one run folder. Writing needs ``lock()`` first."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = RunLock(self.path)
        self._rows: list[dict[str, Any]] = []
        self._unflushed = False  # rows added since metrics.parquet was last written
        self._written: pd.DataFrame | None = None  # what this store last wrote to metrics.parquet
        self._last_flush = time.monotonic()
        self.locked = False

    # -- writing ---------------------------------------------------------------------------
    def lock(self) -> RunStore:
        self._lock.acquire()
        self.locked = True
        return self

    def unlock(self) -> None:
        self._lock.release()
        self.locked = False

    def _check_writer(self) -> None:
        if not self.locked:
            raise RunFolderError(f"{self.path}: write without holding the run lock")

    def clear(self) -> None:
        """Remove everything a previous run left (the lock stays held)."""
        self._check_writer()
        for child in self.path.iterdir():
            if child.name == LOCK_NAME:
                continue
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        self._rows = []
        self._unflushed = True

    def write_config(self, config: dict[str, Any]) -> None:
        self._check_writer()
        atomic_write_text(self.path / "config.yaml", yaml.dump(config, Dumper=SafeDumper, sort_keys=False))

    def event(self, kind: str, **fields: Any) -> None:
        """Append one line to events.jsonl (appends of one short line are atomic)."""
        self._check_writer()
        record = {"event": kind, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **fields}
        with open(self.path / "events.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def add_metrics(self, step: int, values: dict[str, float]) -> None:
        """Merge ``values`` into the row of ``step`` (held in memory until ``flush``)."""
        if self._rows and self._rows[-1]["step"] == step:
            self._rows[-1].update(values)
        else:
            self._rows.append({"step": step, **values})
        self._unflushed = True

    def flush_due(self, seconds: float) -> bool:
        return time.monotonic() - self._last_flush >= seconds

    def flush(self) -> pd.DataFrame:
        """Write every metrics row so far to metrics.parquet (unless the file already holds them);
        returns the table the file now holds, without reading it back."""
        self._check_writer()
        if self._unflushed or self._written is None or not (self.path / "metrics.parquet").is_file():
            frame = pd.DataFrame(self._rows)
            # pyarrow directly: DataFrame.to_parquet spent half its time choosing an engine
            table = pa.Table.from_pandas(frame, preserve_index=False)
            atomic_write(self.path / "metrics.parquet", lambda tmp: pq.write_table(table, tmp))
            self._written = frame
            self._unflushed = False
        self._last_flush = time.monotonic()
        return self._written.copy()

    def restore_metrics(self, up_to_step: int) -> None:
        """Reload rows of an interrupted run up to a checkpoint; later ones will be recomputed."""
        frame = self.metrics()
        frame = frame[frame["step"] <= up_to_step] if len(frame) else frame
        self._rows = [
            {k: v for k, v in row.items() if not (isinstance(v, float) and np.isnan(v))}
            for row in frame.to_dict("records")
        ]
        self._unflushed = True
        for probe_dir in (self.path / "arrays").glob("*"):
            for file in probe_dir.glob("*.npz"):
                if int(file.stem) > up_to_step:
                    file.unlink()

    def write_arrays(self, probe: str, step: int, arrays: dict[str, np.ndarray]) -> None:
        self._check_writer()
        target = self.path / "arrays" / probe / f"{step:09d}.npz"

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)

        atomic_write(target, write)

    def write_summary(self, summary: dict[str, Any]) -> None:
        self._check_writer()
        atomic_write_text(self.path / "summary.json", json.dumps(summary, indent=2, default=_json_default))

    def save_checkpoint(self, step: int, weights: dict[str, torch.Tensor], state: dict[str, Any], keep: int) -> None:
        """Write ``checkpoints/step_<N>`` as a whole (temp folder + rename), keep the latest ``keep``."""
        self._check_writer()
        root = self.path / "checkpoints"
        root.mkdir(parents=True, exist_ok=True)
        final = root / f"step_{step:09d}"
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp_"))
        try:
            save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, tmp / "model.safetensors")
            buffer = io.BytesIO()
            torch.save(state, buffer)
            (tmp / "state.pt").write_bytes(buffer.getvalue())
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in self.checkpoint_steps()[:-keep]:
            shutil.rmtree(root / f"step_{old:09d}", ignore_errors=True)

    # -- reading ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        path = self.path / "config.yaml"
        if not path.is_file():
            raise RunFolderError(f"{self.path}: not a run folder (no config.yaml)")
        return yaml.load(path.read_text(), Loader=SafeLoader)

    def metrics(self) -> pd.DataFrame:
        path = self.path / "metrics.parquet"
        if not path.is_file():
            return pd.DataFrame({"step": pd.Series([], dtype="int64")})
        return pd.read_parquet(path)

    def summary(self) -> dict[str, Any]:
        path = self.path / "summary.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def events(self) -> list[dict[str, Any]]:
        path = self.path / "events.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def array_steps(self, probe: str) -> list[int]:
        return sorted(int(f.stem) for f in (self.path / "arrays" / probe).glob("*.npz"))

    def arrays(self, probe: str) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """(step, {name: array}) for each step a probe stored arrays at, in step order."""
        for step in self.array_steps(probe):
            with np.load(self.path / "arrays" / probe / f"{step:09d}.npz") as data:
                yield step, {k: data[k] for k in data.files}

    def array_probes(self) -> list[str]:
        root = self.path / "arrays"
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    def checkpoint_steps(self) -> list[int]:
        root = self.path / "checkpoints"
        if not root.is_dir():
            return []
        return sorted(int(p.name.split("_")[1]) for p in root.glob("step_*") if (p / "state.pt").is_file())

    def load_checkpoint(self, step: int, device: str | torch.device = "cpu") -> tuple[dict, dict]:
        """(weights, state) of a checkpoint; state is read with ``weights_only=True``."""
        folder = self.path / "checkpoints" / f"step_{step:09d}"
        weights = load_file(folder / "model.safetensors", device=str(device))
        state = torch.load(folder / "state.pt", map_location=device, weights_only=True)
        return weights, state


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in summary.json")
