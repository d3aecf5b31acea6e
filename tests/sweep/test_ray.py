"""The Ray backend on a local cluster of 2 CPUs gives the sequential backend's run folders and table."""

import time

import pytest

pytest.importorskip("ray", reason="ray is not installed (pip install grokscope[ray])")

from grokscope.sweep import run_sweep
from tests.sweep.helpers import assert_same_sweep, small_spec


@pytest.mark.slow
def test_ray_local_cluster_matches_sequential(tmp_path):
    run_sweep(small_spec(), tmp_path / "seq")
    started = time.monotonic()
    reported = {}
    run_sweep(small_spec(), tmp_path / "ray", backend="ray", workers=2, report=reported.__setitem__)
    assert sorted(reported.values()) == ["finished"] * 4
    assert_same_sweep(tmp_path / "seq", tmp_path / "ray")
    print(f"ray sweep of 4 cells: {time.monotonic() - started:.1f} s")
