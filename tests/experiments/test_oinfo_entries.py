"""Smoke sizes of the O-info catalogue entries: they run, and their verdicts carry the numbers."""

from __future__ import annotations

import json
import math

import pytest

from grokscope.experiments.catalog import reproduce


@pytest.mark.slow
def test_oinfo_weight_decay_smoke(tmp_path):
    verdict = reproduce("oinfo_weight_decay", out=tmp_path, smoke=True, progress=False)
    record = json.loads((tmp_path / "verdict.json").read_text())
    numbers = record["analysis_numbers"]
    for condition in ("wd01", "wd2", "wd10", "wd50", "alpha8"):
        assert f"gen_{condition}" in numbers and f"early_peak_{condition}" in numbers
        assert math.isfinite(numbers[f"peak_syn_{condition}"])
    assert (tmp_path / "figure.png").is_file() and verdict.smoke


@pytest.mark.slow
def test_oinfo_subnetwork_smoke(tmp_path):
    reproduce("oinfo_subnetwork", out=tmp_path, smoke=True, progress=False)
    numbers = json.loads((tmp_path / "verdict.json").read_text())["analysis_numbers"]
    assert numbers["synergy_replayed"] == pytest.approx(numbers["synergy_stored"], abs=1e-9)
    assert numbers["neurons_sub"] + numbers["neurons_inverse"] == 64
    for arm in ("sub", "inverse", "full"):
        assert (tmp_path / arm / "summary.json").is_file()
