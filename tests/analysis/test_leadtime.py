"""Lead time of progress measures on constructed series whose change points are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grokscope.analysis.leadtime import change_point, lead_table, leadtime, log_grid, run_leads, summarize_leads
from grokscope.errors import ConfigError, GrokscopeError
from grokscope.store import RunStore

EVERY = 10  # evaluation step of the constructed schedules near the jump


def schedule(budget: int = 5000) -> np.ndarray:
    """A run's evaluation steps: 20 per decade on a log grid, and every 10 steps."""
    log = np.round(np.logspace(0, np.log10(budget), 75))
    return np.unique(np.concatenate([[0], log, np.arange(0, budget + 1, EVERY)])).astype(float)


def sigmoid(steps: np.ndarray, centre: float, width: float = 40.0) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(steps - centre) / width))


def constructed_metrics(jump: float, seed: int = 0) -> pd.DataFrame:
    """Test accuracy jumping at ``jump``; a weight norm falling 100 steps earlier; a control that
    rises 300 steps later; a constant column; small noise on all but the constant."""
    steps = schedule()
    noise = np.random.default_rng(seed).normal(0, 0.01, (3, len(steps)))
    return pd.DataFrame(
        {
            "step": steps,
            "test/acc": 0.03 + 0.95 * sigmoid(steps, jump) + noise[0],
            "norm/total": 40.0 - 25.0 * sigmoid(steps, jump - 100) + noise[1],
            "control/late": sigmoid(steps, jump + 300) + noise[2],
            "constant": np.full(len(steps), 2.0),
        }
    )


@pytest.mark.parametrize("jump", [600, 2000, 3700])
def test_a_measure_100_steps_ahead_is_100_steps_ahead_within_one_evaluation(jump):
    leads = run_leads(constructed_metrics(jump)).set_index("measure")
    assert abs(leads.loc["norm/total", "onset_step"] - jump) <= EVERY
    assert abs(leads.loc["norm/total", "lead_steps"] - 100) <= EVERY
    assert leads.loc["norm/total", "lead_log10"] == pytest.approx(np.log10(jump / (jump - 100)), abs=0.01)


def test_a_control_moving_after_the_jump_gets_a_negative_lead():
    leads = run_leads(constructed_metrics(2000)).set_index("measure")
    assert abs(leads.loc["control/late", "lead_steps"] + 300) <= EVERY
    assert leads.loc["control/late", "lead_log10"] < 0
    assert "constant" not in leads.index  # no change point in a constant series
    assert "test/acc" not in leads.index


def test_change_point_of_a_step_function_and_of_too_short_or_flat_series():
    steps = np.arange(0, 3001, 5, dtype=float)
    assert change_point(steps, (steps >= 1200).astype(float)) == pytest.approx(1200, abs=5)
    # the change point does not depend on the scale or offset of the series
    assert change_point(steps, 7 - 3 * (steps >= 1200)) == pytest.approx(1200, abs=5)
    assert change_point(steps, np.ones_like(steps)) is None
    assert change_point([1, 2, 3], [0, 1, 1]) is None
    assert change_point(steps, np.full_like(steps, np.nan)) is None


def test_change_point_is_the_exact_l2_split_that_binary_segmentation_finds():
    """The documented equivalence: KernelCPD with the linear kernel places the one breakpoint
    where ruptures' Binseg with the L2 cost does, on the standardized log-step grid."""
    import ruptures

    steps = schedule()[1:]
    values = np.random.default_rng(3).normal(0, 1, len(steps)).cumsum()  # a random walk
    grid = log_grid(steps)
    signal = np.interp(grid, np.log10(steps), values)
    signal = (signal - signal.mean()) / signal.std()
    split = ruptures.Binseg(model="l2", min_size=2, jump=1).fit(signal[:, None]).predict(n_bkps=1)[0]
    assert change_point(steps, values) == pytest.approx(10 ** ((grid[split - 1] + grid[split]) / 2))


def test_change_point_is_on_the_log_step_axis():
    """A plateau then a linear rise over [100, 10000]: on a linear axis the mean-shift split of a
    ramp is at its middle (about 5050); on the log axis most of the points sit early, so the
    split moves to where the series changes in log10 step (beyond 10^3)."""
    steps = np.arange(1, 10001, dtype=float)
    values = np.clip(steps - 100, 0, None)
    found = change_point(steps, values)
    assert 1000 < found < 5050


def test_summary_counts_runs_that_move_first_and_takes_medians():
    runs = {f"seed{seed}": constructed_metrics(1500 + 300 * seed, seed) for seed in range(3)}
    runs["never"] = constructed_metrics(2000).assign(**{"test/acc": 0.1})  # never reaches 0.9: left out
    table = lead_table(runs, threshold=0.9)
    assert sorted(table["run"].unique()) == ["seed0", "seed1", "seed2"]
    summary = summarize_leads(table).set_index("measure")
    assert summary.loc["norm/total", "runs"] == 3
    assert summary.loc["norm/total", "first"] == 3
    assert summary.loc["control/late", "first"] == 0
    assert abs(summary.loc["norm/total", "median_lead_steps"] - 100) <= EVERY
    assert summary.index[0] == "norm/total"  # sorted by median lead, largest first


def test_fit_window_leaves_out_the_changes_of_memorization():
    """The weight norm jumps when the training set is fit (step 30) and moves again, less, 100
    steps before the test accuracy: over the whole series its change point is the first jump;
    from the fit step on, the second."""
    metrics = constructed_metrics(2000)
    steps = metrics["step"].to_numpy()
    metrics["train/acc"] = 0.05 + 0.95 * sigmoid(steps, 30, 3)
    metrics["norm/total"] = 10 + 50 * sigmoid(steps, 30, 3) - 10 * sigmoid(steps, 1900)
    whole = lead_table({"run": metrics}, 0.9).set_index("measure")
    assert whole.loc["norm/total", "change_step"] < 100
    after_fit = lead_table({"run": metrics}, 0.9, window="fit").set_index("measure")
    assert abs(after_fit.loc["norm/total", "lead_steps"] - 100) <= EVERY
    assert abs(after_fit.loc["control/late", "lead_steps"] + 300) <= EVERY
    with pytest.raises(ConfigError, match="window = 'late': unknown; allowed: all, fit"):
        lead_table({"run": metrics}, 0.9, window="late")


def write_run(folder: Path, metrics: pd.DataFrame) -> None:
    store = RunStore(folder).lock()
    store.write_config({"name": folder.name})
    for row in metrics.to_dict("records"):
        store.add_metrics(int(row.pop("step")), row)
    store.flush()
    store.unlock()


def test_leadtime_writes_csv_markdown_and_figure(tmp_path):
    for seed in range(2):
        write_run(tmp_path / "sweep" / f"seed{seed}", constructed_metrics(2000, seed))
    table, _ = leadtime(tmp_path / "sweep", threshold=0.9, out=tmp_path / "out")
    written = pd.read_csv(tmp_path / "out" / "leadtime.csv")
    assert len(written) == len(table) == 4  # 2 runs x 2 measures with a change point
    markdown = (tmp_path / "out" / "leadtime.md").read_text()
    assert "| `norm/total` | 2 | 2 |" in markdown
    assert (tmp_path / "out" / "leadtime.png").stat().st_size > 1000
    write_run(tmp_path / "flat" / "never", constructed_metrics(2000).assign(**{"test/acc": 0.1}))
    with pytest.raises(GrokscopeError, match=r"none of its 1 runs has test/acc reaching threshold = 0\.9"):
        leadtime(tmp_path / "flat", threshold=0.9)
    with pytest.raises(ConfigError, match=r"threshold = 1.5: must be in \(0, 1\]"):
        leadtime(tmp_path / "sweep", threshold=1.5)


def test_cli_leadtime_prints_the_table_and_bad_input_exits_2(tmp_path, cli):

    metrics = constructed_metrics(2000)
    write_run(tmp_path / "runs" / "a", metrics.assign(**{"train/acc": sigmoid(metrics["step"].to_numpy(), 30, 3)}))

    code, out, _ = cli("leadtime", str(tmp_path / "runs"), "--out", str(tmp_path / "lt"))
    assert code == 0
    assert "norm/total" in out
    assert (tmp_path / "lt" / "leadtime.csv").is_file()
    code, out, _ = cli("leadtime", str(tmp_path / "runs"), "--window", "fit", "--out", str(tmp_path / "lt"))
    assert code == 0 and (tmp_path / "lt" / "leadtime_fit.md").is_file()
    code, _, err = cli("leadtime", str(tmp_path / "nothing"))
    assert code == 2
    assert err.strip().count("\n") == 0 and "no such folder" in err
