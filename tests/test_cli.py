"""The command line: every verb runs, and bad input ends in one line and exit status 2."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_config_data


def write_config(tmp_path: Path, **overrides) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_config_data(**overrides)))
    return path


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"model": {"widht": 16}}, "model: unknown key 'widht'"),
        ({"optimizer": {"lr": -0.1}}, "optimizer.lr = -0.1"),
        ({"task": {"p": 1}}, "task.p = 1: must be a prime"),
        ({"model": {"activation": "swish"}}, "model.activation = 'swish'"),
    ],
)
def test_invalid_configs_exit_2_with_one_line_and_write_nothing(tmp_path, cli, overrides, expected):
    config = write_config(tmp_path, **overrides)
    out = tmp_path / "run"
    code, _, err = cli("run", str(config), "--out", str(out))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and expected in err and "Traceback" not in err
    assert not out.exists()


def test_config_error_from_a_real_process_has_no_traceback(tmp_path):
    config = write_config(tmp_path, model={"widht": 16})
    result = subprocess.run(
        [sys.executable, "-m", "grokscope.cli", "run", str(config), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "unknown key 'widht'" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


def test_run_show_ls_report_and_refusal_to_overwrite(tmp_path, cli):
    config = write_config(tmp_path, training={"steps": 30})
    out = tmp_path / "runs" / "tiny"
    code, stdout, _ = cli("run", str(config), "--out", str(out), "-q")
    assert code == 0 and "finished" in stdout
    code, _, err = cli("run", str(config), "--out", str(out), "-q")
    assert code == 2 and "already holds a run" in err
    code, stdout, _ = cli("show", str(out))
    assert code == 0 and "test/acc" in stdout
    code, stdout, _ = cli("ls", str(tmp_path / "runs"))
    assert code == 0 and "tiny" in stdout
    code, stdout, _ = cli("report", str(out))
    assert code == 0 and (out / "report" / "curves.png").is_file() and (out / "report" / "curves.svg").is_file()
    code, _, err = cli("show", str(tmp_path / "nothing"))
    assert code == 2 and "not a run folder" in err


def test_init_prints_a_config_that_runs(tmp_path, cli):
    code, stdout, _ = cli("init")
    assert code == 0 and "name: modular_arithmetic" in stdout and "#" in stdout
    assert yaml.safe_load(stdout)["optimizer"]["lr"] == 0.03
    code, stdout, _ = cli("init", "--list")
    assert code == 0 and "modadd" in stdout
    code, _, err = cli("init", "nonexistent")
    assert code == 2 and "preset 'nonexistent' unknown" in err


def test_reproduce_lists_the_catalogue_and_rejects_unknown_names(cli):
    code, stdout, _ = cli("reproduce", "--list")
    assert code == 0 and "demo_weight_d" in stdout
    code, _, err = cli("reproduce", "no_such_claim")
    assert code == 2 and "reproduction 'no_such_claim' unknown" in err
