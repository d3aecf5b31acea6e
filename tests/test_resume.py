"""A killed run resumes from its last checkpoint to the same final numbers (a real SIGKILL)."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
import yaml

import grokscope
from grokscope.store import RunStore
from tests.conftest import tiny_config_data


def test_sigkilled_minibatch_run_resumes_to_the_uninterrupted_result(tmp_path):
    data = tiny_config_data(
        task={"p": 23},
        model={"width": 64, "batch_norm": True, "depth": 3},
        training={"steps": 1500, "batch_size": 32},
        output={"checkpoint_every": 25},
        probes=[{"name": "weight_norm"}],
    )
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(data))
    folder = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "grokscope.cli", "run", str(config_path), "--out", str(folder), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = RunStore(folder)
    deadline = time.monotonic() + 120
    while len(store.checkpoint_steps()) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = store.checkpoint_steps()
    assert len(killed_at) >= 2 and killed_at[-1] < 1500, "the run ended before it could be killed"
    assert store.summary() == {}

    resumed = grokscope.run(grokscope.load_config(config_path), out=folder, resume=True, progress=False)
    reference = grokscope.run(grokscope.load_config(config_path), out=tmp_path / "whole", progress=False)

    assert [e["event"] for e in resumed.events] == ["started", "resumed", "finished"]
    pd.testing.assert_frame_equal(resumed.metrics, reference.metrics, check_exact=True)
    a, b = resumed.load_model().state_dict(), reference.load_model().state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for key in ("fit_step", "generalization_step", "phase", "final"):
        assert resumed.summary[key] == reference.summary[key]


def test_resuming_a_finished_run_returns_it_unchanged(tmp_path, tiny_config):
    first = grokscope.run(tiny_config, out=tmp_path / "r", progress=False)
    again = grokscope.run(tiny_config, out=tmp_path / "r", resume=True, progress=False)
    assert again.summary == first.summary and len(again.events) == 2


def test_existing_run_is_not_overwritten_without_force(tmp_path, tiny_config):
    grokscope.run(tiny_config, out=tmp_path / "r", progress=False)
    with pytest.raises(grokscope.RunFolderError, match="already holds a run"):
        grokscope.run(tiny_config, out=tmp_path / "r", progress=False)
    grokscope.run(tiny_config, out=tmp_path / "r", force=True, progress=False)
