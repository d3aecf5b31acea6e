import multiprocessing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from grokscope.errors import RunFolderError
from grokscope.store import RunStore, atomic_write, atomic_write_text


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path: Path):
    target = tmp_path / "summary.json"
    atomic_write_text(target, "old")

    def broken_writer(tmp: Path) -> None:
        tmp.write_text("half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, broken_writer)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary left behind


def _try_lock(path: str, queue) -> None:
    try:
        RunStore(path).lock()
        queue.put("locked")
    except RunFolderError as error:
        queue.put(str(error))


def test_a_second_process_cannot_write_a_locked_folder(tmp_path: Path):
    store = RunStore(tmp_path / "run").lock()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    other = context.Process(target=_try_lock, args=(str(tmp_path / "run"), queue))
    other.start()
    other.join(60)
    message = queue.get(timeout=5)
    assert "being written by pid" in message
    store.unlock()
    other = context.Process(target=_try_lock, args=(str(tmp_path / "run"), queue))
    other.start()
    other.join(60)
    assert queue.get(timeout=5) == "locked"


def test_writes_need_the_lock(tmp_path: Path):
    with pytest.raises(RunFolderError, match="without holding the run lock"):
        RunStore(tmp_path).write_summary({})


def test_metrics_arrays_and_checkpoints_round_trip(tmp_path: Path):
    store = RunStore(tmp_path).lock()
    store.add_metrics(0, {"train/loss": 2.0})
    store.add_metrics(0, {"test/loss": 3.0})
    store.add_metrics(5, {"train/loss": 1.0})
    store.flush()
    frame = store.metrics()
    assert frame["step"].tolist() == [0, 5] and frame["test/loss"].isna().tolist() == [False, True]
    store.write_arrays("rpd", 5, {"density": np.arange(4.0)})
    assert store.array_steps("rpd") == [5]
    weights = {"w": torch.randn(3, 2)}
    for step in (10, 20, 30):
        store.save_checkpoint(step, weights, {"step": step, "rng": torch.get_rng_state()}, keep=2)
    assert store.checkpoint_steps() == [20, 30]
    loaded, state = store.load_checkpoint(30)
    assert torch.equal(loaded["w"], weights["w"]) and state["step"] == 30
    store.restore_metrics(up_to_step=0)
    store.flush()
    assert store.metrics()["step"].tolist() == [0] and store.array_steps("rpd") == []


def test_flush_writes_metrics_only_when_rows_changed(tmp_path: Path):
    store = RunStore(tmp_path).lock()
    store.add_metrics(0, {"train/loss": 1.0})
    store.flush()
    path = tmp_path / "metrics.parquet"
    path.write_bytes(b"marker")  # a rewrite would replace it
    store.flush()
    assert path.read_bytes() == b"marker"
    store.add_metrics(1, {"train/loss": 0.5})
    store.flush()
    assert store.metrics()["train/loss"].tolist() == [1.0, 0.5]
    path.unlink()
    store.flush()  # a missing file is written again
    assert store.metrics()["step"].tolist() == [0, 1]


def test_flush_returns_the_table_the_file_holds(tmp_path: Path):
    store = RunStore(tmp_path).lock()
    store.add_metrics(0, {"train/loss": 2.0, "train/acc": 0.5})
    store.add_metrics(10, {"norm/total": 3.0})
    written = store.flush()
    pd.testing.assert_frame_equal(written, store.metrics())
    written.loc[0, "train/loss"] = -1.0  # a copy: changing it changes neither the store nor the file
    pd.testing.assert_frame_equal(store.flush(), store.metrics())
    assert store.metrics()["train/loss"].tolist()[0] == 2.0
