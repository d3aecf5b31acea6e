"""Shared fixtures: tiny configs that train in a fraction of a second."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

# Test models are tiny: one thread each is faster than two threads contending for 2 cores, and
# subprocesses started by tests inherit the setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

from grokscope.config import RunConfig, merge, parse_config

torch.set_num_threads(1)


def tiny_config_data(**overrides: Any) -> dict[str, Any]:
    """Modular addition mod 11 with a 16-unit MLP: trains 100 steps in well under a second."""
    base = {
        "name": "tiny",
        "device": "cpu",
        "task": {"name": "modular_arithmetic", "p": 11, "train_fraction": 0.5},
        "model": {"name": "mlp", "width": 16},
        "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 1.0},
        "training": {"steps": 100},
    }
    return merge(base, overrides)


@pytest.fixture
def tiny_config() -> RunConfig:
    return parse_config(tiny_config_data())


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.use_deterministic_algorithms(False)
    yield


@pytest.fixture
def cli(monkeypatch, capsys) -> Callable[..., tuple[int, str, str]]:
    """``cli("run", path, ...)`` runs the command line in-process: (exit code, stdout, stderr)."""
    from grokscope.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["grokscope", *args])
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke
