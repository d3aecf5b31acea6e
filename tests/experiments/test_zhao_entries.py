"""The Zhao catalogue entries: their analysis helpers, and their smoke sizes end to end."""

from __future__ import annotations

import math

import pandas as pd

from grokscope.experiments.zhao import first_exact_layer, first_step, halfway_step, value_at

METRICS = pd.DataFrame(
    {"step": [0, 1, 2, 5, 10, 20], "acc": [0.1, 0.2, 0.3, 0.6, 0.9, 0.9], "other": [None, 1, None, 3, None, 5]}
)


def test_first_step_and_value_at_read_the_evaluated_steps():
    assert first_step(METRICS, "acc", 0.55) == 5
    assert first_step(METRICS, "acc", 0.95) == math.inf
    assert value_at(METRICS, "acc", 7) == 0.6
    assert value_at(METRICS, "other", 4) == 1  # missing values are skipped
    assert math.isnan(value_at(METRICS, "acc", -1))


def test_halfway_step_goes_half_way_from_chance_to_the_final_value():
    # chance 0.1, final 0.9: half-way is 0.5, first reached at step 5
    assert halfway_step(METRICS, "acc", chance=0.1) == 5


def test_first_exact_layer_allows_the_tolerance():
    last = pd.Series({"x/layer1": 0.5, "x/layer2": 0.985, "x/layer3": 1.0})
    assert first_exact_layer(last, "x/", reference=0.99) == 2
    assert first_exact_layer(last, "x/", reference=1.5) == math.inf
