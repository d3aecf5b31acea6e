"""The Zhao-framework figures: drawn from a run with the probes, skipped for a run without."""

from __future__ import annotations

import pytest

import grokscope
from grokscope.report import RUN_FIGURES
from grokscope.report.zhao import before_after, pick_steps
from tests.probes.test_zhao_probes import ZHAO_PROBES, digits_config

FIGURES = ["rpd_gradient", "rpd_curves", "basins", "lmap_pruning", "projection", "geometry"]


@pytest.mark.slow
def test_every_zhao_figure_is_drawn_from_a_probed_run(tmp_path):
    run = grokscope.run(digits_config(probes=ZHAO_PROBES), out=tmp_path / "run", progress=False)
    for name in FIGURES:
        written = RUN_FIGURES[name](run, tmp_path / "figures")
        assert (tmp_path / "figures" / f"{name}.png") in written, name


def test_zhao_figures_draw_nothing_without_their_probes(tmp_path):
    run = grokscope.run(digits_config(), out=tmp_path / "run", progress=False)
    for name in FIGURES:
        assert RUN_FIGURES[name](run, tmp_path / "figures") == [], name


def test_pick_steps_spreads_in_log_step_and_keeps_the_ends():
    assert pick_steps([0, 1, 2, 5, 10, 20, 50, 100, 1000], 3) == [0, 20, 1000]
    assert pick_steps([3, 4], 5) == [3, 4]


def test_before_after_brackets_the_event():
    assert before_after([0, 10, 20, 40], 15) == (10, 20)
    assert before_after([0, 10, 20, 40], 20) == (10, 20)
    assert before_after([0, 10, 20, 40], None) == (20, 40)
