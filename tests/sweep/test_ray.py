"""The Ray backend on a local cluster of 2 CPUs gives the sequential backend's run folders and table."""

import socket
import time

import pytest

pytest.importorskip("ray", reason="ray is not installed (pip install grokscope[ray])")

from grokscope.sweep import run_sweep
from tests.sweep.helpers import assert_same_sweep, small_spec, write_spec


@pytest.mark.slow
def test_ray_local_cluster_matches_sequential(tmp_path):
    run_sweep(small_spec(), tmp_path / "seq")
    started = time.monotonic()
    reported = {}
    run_sweep(small_spec(), tmp_path / "ray", backend="ray", workers=2, report=reported.__setitem__)
    assert sorted(reported.values()) == ["finished"] * 4
    assert_same_sweep(tmp_path / "seq", tmp_path / "ray")
    print(f"ray sweep of 4 cells: {time.monotonic() - started:.1f} s")


def test_an_unreachable_cluster_address_is_one_clear_line(tmp_path, cli):
    with socket.socket() as probe:  # a port nothing listens on: bound, then released
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = write_spec(tmp_path / "spec.yaml")
    started = time.monotonic()
    out_dir = str(tmp_path / "out")
    code, out, err = cli("sweep", str(spec), "--out", out_dir, "--backend", "ray", "--address", f"127.0.0.1:{port}")
    assert code == 2
    assert f"address = '127.0.0.1:{port}': no Ray cluster answers there" in err
    assert "Traceback" not in err + out
    assert time.monotonic() - started < 30  # ray.init alone would retry for minutes
