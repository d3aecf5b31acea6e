"""The Layerwise (and Liu appendix I) catalogue entries: analysis helpers, and smoke sizes end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grokscope.experiments.layerwise import crossing_step, kernel_delay, overlaps, rise_ratio, saturation_windows
from grokscope.theory.layerwise import diagonal_solution, linear_model_solution
from grokscope.theory.lazy_rich import NTKPath


def test_crossing_step_interpolates_between_evaluated_steps():
    steps, values = np.array([0, 10, 20]), np.array([0.0, 0.4, 0.8])
    assert crossing_step(steps, values, 0.6) == pytest.approx(15.0)
    assert crossing_step(steps, values, 0.9) == math.inf


def test_rise_ratio_separates_exponential_from_delayed_sigmoid():
    # t10 / t90 of 1 - e^-t is ln(0.9) / ln(0.1) = 0.0458; a sigmoid from u0 = 1e-4 is delayed: > 0.5
    steps = np.linspace(0, 20, 20001)
    theta = linear_model_solution([1.0], steps)
    u = diagonal_solution([1.0], 1e-4, steps)
    assert rise_ratio(saturation_windows(steps, theta, np.array([1.0]))) == pytest.approx(0.0458, abs=1e-3)
    assert rise_ratio(saturation_windows(steps, u, np.array([1.0]))) > 0.5


def test_overlaps_counts_pairs_of_overlapping_windows():
    assert overlaps(np.array([[0, 1], [2, 3], [4, 5]])) == 0
    assert overlaps(np.array([[0, 3], [2, 5], [4, 6]])) == 2


def test_kernel_delay_compares_kernel_half_time_with_loss_half_time():
    times = np.array([0.0, 1.0, 2.0, 10.0, 20.0])
    late = NTKPath(times, np.array([0.0, 0.0, 0.01, 0.1, 0.2]), np.array([1.0, 0.4, 0.1, 0.01, 0.0]))
    assert kernel_delay(late) == pytest.approx(10.0)  # kernel reaches 0.1 at t = 10, loss halves at t = 1
    early = NTKPath(times, np.array([0.0, 0.3, 0.3, 0.3, 0.3]), np.array([1.0, 0.9, 0.4, 0.1, 0.0]))
    assert kernel_delay(early) == pytest.approx(0.5)
