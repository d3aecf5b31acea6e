import numpy as np
import pandas as pd
import pytest

from grokscope.analysis import classify_phase, first_step_reaching, summarize

STEPS = np.array([0, 10, 100, 1000, 3000, 10_000])


def curves(train, test) -> pd.DataFrame:
    return pd.DataFrame({"step": STEPS, "train/acc": train, "test/acc": test})


@pytest.mark.parametrize(
    ("train", "test", "phase", "fit", "gen"),
    [
        ([0, 0.5, 0.95, 1, 1, 1], [0, 0.4, 0.92, 0.97, 0.99, 1], "comprehension", 100, 100),
        ([0, 0.5, 0.95, 1, 1, 1], [0, 0.1, 0.1, 0.2, 0.3, 0.95], "grokking", 100, 10_000),
        ([0, 0.5, 0.95, 1, 1, 1], [0, 0.1, 0.1, 0.2, 0.3, 0.4], "memorization", 100, None),
        ([0, 0.1, 0.2, 0.3, 0.4, 0.5], [0, 0.1, 0.1, 0.2, 0.3, 0.4], "confusion", None, None),
    ],
)
def test_each_phase_on_constructed_accuracy_curves(train, test, phase, fit, gen):
    summary = summarize(curves(train, test), thresholds=[0.9], phase_threshold=0.9, gap=1000, delay_ratio=2)
    assert summary["phase"] == phase
    assert summary["fit_step"] == fit and summary["generalization_step"] == gen


def test_delayed_generalization_below_the_gap_is_flagged_by_the_ratio():
    summary = summarize(
        curves([0, 0.95, 1, 1, 1, 1], [0, 0.1, 0.95, 1, 1, 1]),
        thresholds=[0.9],
        phase_threshold=0.9,
        gap=1000,
        delay_ratio=2,
    )
    assert summary["phase"] == "comprehension"
    assert summary["delay_ratio"] == 10 and summary["delayed"] is True


def test_thresholds_and_first_step():
    assert first_step_reaching(STEPS, np.array([0, 0.5, 0.99, 0.2, 1, 1]), 0.99) == 100
    assert first_step_reaching(STEPS, np.zeros(6), 0.5) is None
    summary = summarize(curves([0, 0.5, 0.95, 0.995, 1, 1], [0, 0, 0.91, 0.95, 0.991, 1]), [0.9, 0.99], 0.9, 1000, 2)
    assert summary["fit_step@0.99"] == 1000 and summary["generalization_step@0.99"] == 3000
    assert classify_phase(None, 5, 10) == "confusion"


def test_steps_where_a_split_was_not_evaluated_never_reach_a_threshold():
    # a probe on its own schedule leaves NaN in the accuracy columns at the other steps
    nan = float("nan")
    frame = curves([0, nan, 0.95, nan, 1, 1], [0, nan, nan, 0.2, 0.95, nan])
    summary = summarize(frame, thresholds=[0.9], phase_threshold=0.9, gap=1000, delay_ratio=2)
    assert summary["fit_step"] == 100 and summary["generalization_step"] == 3000
    assert summary["phase"] == "grokking"
