"""A sweep killed mid-way (SIGKILL) and run again: finished cells are not redone, the
interrupted cell resumes from its checkpoint, and the table ends complete."""

import os
import signal
import subprocess
import sys
import time

import pytest

from grokscope.store import RunStore
from grokscope.sweep import cell_state, run_sweep
from tests.sweep.helpers import write_spec


@pytest.mark.slow
def test_killed_sweep_resumes_without_redoing_finished_cells(tmp_path):
    spec = write_spec(tmp_path / "sweep.yaml", steps=1500, checkpoint_every=100)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "grokscope.cli", "sweep", str(spec), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cells = out / "cells"
    deadline = time.monotonic() + 120
    try:
        # wait for one finished cell and the next one part way (it has a checkpoint)
        while time.monotonic() < deadline:
            folders = sorted(cells.iterdir()) if cells.is_dir() else []
            states = [cell_state(f) for f in folders]
            if "finished" in states and any(
                RunStore(f).checkpoint_steps() for f in folders if cell_state(f) != "finished"
            ):
                break
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.05)
        else:
            pytest.fail("the sweep did not get far enough in 120 s")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finished = [f.name for f in sorted(cells.iterdir()) if cell_state(f) == "finished"]
    interrupted = [f.name for f in sorted(cells.iterdir()) if cell_state(f) == "interrupted"]
    assert finished and interrupted
    events = {name: (cells / name / "events.jsonl").read_text() for name in finished}

    reported = {}
    table = run_sweep(spec, out, report=reported.__setitem__).table
    assert len(table) == 4
    assert set(table["status"]) == {"finished"}
    assert table["phase"].notna().all() and table["step"].eq(1500).all()
    for name in finished:
        assert reported[name] == "finished (kept)"
        assert (cells / name / "events.jsonl").read_text() == events[name]  # not redone
    for name in interrupted:
        kinds = [e["event"] for e in RunStore(cells / name).events()]
        assert kinds[0] == "started" and "resumed" in kinds and kinds[-1] == "finished"
        assert kinds.count("started") == 1
