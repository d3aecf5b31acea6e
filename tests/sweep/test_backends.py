"""Backends: the same cells give the same run folders and table; re-running resumes."""

import json

import pytest

from grokscope.errors import ConfigError, RunFolderError
from grokscope.runner import open_run
from grokscope.store import RunStore
from grokscope.sweep import open_sweep, run_sweep
from grokscope.sweep.cells import record_failure
from tests.sweep.helpers import assert_same_sweep, small_spec


def test_sequential_sweep_writes_run_folders_and_a_complete_table(tmp_path):
    reported = []
    sweep = run_sweep(small_spec(), tmp_path / "s", report=lambda cell, state: reported.append((cell, state)))
    table = sweep.table
    assert len(table) == 4
    assert set(table["status"]) == {"finished"}
    assert table["phase"].notna().all()
    assert {"optimizer.lr", "optimizer.weight_decay", "fit_step", "generalization_step", "final/test/acc"} <= set(
        table.columns
    )
    assert sorted(c for c, _ in reported) == sorted(table["cell"])
    for _, row in table.iterrows():
        run = open_run(tmp_path / "s" / row["path"])
        assert run.config.optimizer.lr == row["optimizer.lr"]
        assert run.summary["phase"] == row["phase"]
        assert run.summary["final"]["test/acc"] == row["final/test/acc"]


def test_rerun_skips_finished_cells_and_retries_failed_ones_only_when_asked(tmp_path):
    out = tmp_path / "s"
    run_sweep(small_spec(), out)
    cells = sorted(open_sweep(out).table["cell"])
    events = {c: (out / "cells" / c / "events.jsonl").read_text() for c in cells}
    failed = cells[1]
    config = json.loads(json.dumps(open_run(out / "cells" / failed).store.config()))
    record_failure(out / "cells" / failed, config, RuntimeError("out of memory"))

    reported = {}
    table = run_sweep(small_spec(), out, report=reported.__setitem__).table.set_index("cell")
    assert reported == {c: ("failed (kept)" if c == failed else "finished (kept)") for c in cells}
    assert table.loc[failed, "status"] == "failed"
    assert table.loc[failed, "error"] == "RuntimeError: out of memory"
    for c in cells:
        if c != failed:
            assert (out / "cells" / c / "events.jsonl").read_text() == events[c]

    reported.clear()
    table = run_sweep(small_spec(), out, retry_failed=True, report=reported.__setitem__).table.set_index("cell")
    assert reported[failed] == "finished"
    assert set(table["status"]) == {"finished"}
    assert table.loc[failed, "error"] is None or table.loc[failed, "error"] != table.loc[failed, "error"]


def test_a_changed_spec_is_refused_in_the_same_folder(tmp_path):
    run_sweep(small_spec(), tmp_path / "s")
    with pytest.raises(RunFolderError, match="holds a run of another config"):
        run_sweep(small_spec(steps=80), tmp_path / "s")


def test_an_error_in_training_is_recorded_and_the_other_cells_go_on(tmp_path, monkeypatch):
    import grokscope.runner

    real = grokscope.runner.finish_run

    def flaky(experiment, *args, **kwargs):
        if experiment.config.optimizer.lr == 0.03 and experiment.config.optimizer.weight_decay == 0.0:
            raise RuntimeError("boom")
        return real(experiment, *args, **kwargs)

    monkeypatch.setattr(grokscope.runner, "finish_run", flaky)
    table = run_sweep(small_spec(), tmp_path / "s").table.set_index("cell")
    assert table.loc["lr=0.03_weight_decay=0", "status"] == "failed"
    assert table.loc["lr=0.03_weight_decay=0", "error"] == "RuntimeError: boom"
    assert (table.drop(index="lr=0.03_weight_decay=0")["status"] == "finished").all()
    assert RunStore(tmp_path / "s" / "cells" / "lr=0.03_weight_decay=0").events()[-1]["event"] == "failed"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"backend": "gpu"}, "backend = 'gpu': unknown; allowed: sequential, process, ensemble, ray"),
        ({"workers": 0}, "workers = 0: must be >= 1"),
        ({"address": "ray://x:1"}, "only the ray backend"),
        ({"backend": "process", "compile": True}, "compile = True: only the ensemble backend compiles its step"),
    ],
)
def test_bad_backend_options_are_config_errors(tmp_path, kwargs, expected):
    with pytest.raises(ConfigError, match=expected.split(":")[0]):
        run_sweep(small_spec(), tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()


def test_compiling_without_a_cxx_compiler_is_a_config_error(tmp_path):
    from torch._inductor import config as inductor_config

    # torch's own patch: monkeypatch would delete the setting afterwards (it is not in the
    # config class's __dict__), breaking every later compilation in this process
    with (
        inductor_config.patch({"cpp.cxx": (None, "no-such-compiler++")}),
        pytest.raises(ConfigError, match=r"compile = True: torch.compile needs a C\+\+ compiler"),
    ):
        run_sweep(small_spec(), tmp_path / "s", backend="ensemble", compile=True)
    assert not (tmp_path / "s").exists()


def test_ensemble_backend_gives_the_sequential_table(tmp_path):
    run_sweep(small_spec(), tmp_path / "seq")
    run_sweep(small_spec(), tmp_path / "ens", backend="ensemble")
    a, b = open_sweep(tmp_path / "seq").table, open_sweep(tmp_path / "ens").table
    assert a["phase"].tolist() == b["phase"].tolist()
    assert a["status"].tolist() == b["status"].tolist() == ["finished"] * 4
    assert (a["final/train/loss"] - b["final/train/loss"]).abs().max() < 1e-4


@pytest.mark.slow
def test_ensemble_backend_in_worker_processes_gives_the_sequential_table(tmp_path):
    reported: dict[str, str] = {}
    run_sweep(small_spec(), tmp_path / "seq")
    run_sweep(small_spec(), tmp_path / "ens", backend="ensemble", workers=2, report=reported.__setitem__)
    a, b = open_sweep(tmp_path / "seq").table, open_sweep(tmp_path / "ens").table
    assert reported == dict.fromkeys(b["cell"], "finished")  # every cell reported back from its worker
    assert a["phase"].tolist() == b["phase"].tolist()
    assert b["status"].tolist() == ["finished"] * 4
    assert (a["final/train/loss"] - b["final/train/loss"]).abs().max() < 1e-4


@pytest.mark.slow
def test_process_backend_gives_the_sequential_run_folders(tmp_path):
    run_sweep(small_spec(), tmp_path / "seq")
    run_sweep(small_spec(), tmp_path / "proc", backend="process", workers=2)
    assert_same_sweep(tmp_path / "seq", tmp_path / "proc")
