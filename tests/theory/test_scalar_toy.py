"""The scalar toy of Layerwise eq. 15: restored closed form, conservation, lazy vs rich."""

import numpy as np

from grokscope.theory.scalar_toy import (
    integrate_scalar_toy,
    lazy_slope,
    scalar_toy_solution,
    weight_to_target_ratio,
)

TIMES = np.linspace(0.0, 30.0, 301)


def test_closed_form_matches_integrated_raw_parameters():
    rng = np.random.default_rng(0)
    a0, b0 = rng.standard_normal(6) * 0.2, rng.standard_normal(6) * 0.2
    a, b = integrate_scalar_toy(a0, b0, S=1.5, t=TIMES, Z=2.0)
    a_exact, b_exact, u = scalar_toy_solution(a0, b0, 1.5, TIMES, Z=2.0)
    scale = np.abs(a_exact).max()
    assert np.max(np.abs(a - a_exact)) / scale < 1e-4
    assert np.max(np.abs(b - b_exact)) / scale < 1e-4
    np.testing.assert_allclose((a * b).sum(axis=1) / 2.0, u, atol=1e-8)
    assert abs(u[-1] - 1.5) < 1e-6
    conserved = a**2 - b**2
    assert np.max(np.abs(conserved - conserved[0])) < 1e-6


def test_large_weight_to_target_ratio_is_lazy_and_small_is_rich():
    rng = np.random.default_rng(1)
    base_a, base_b = rng.standard_normal(50), rng.standard_normal(50)
    S = 1.0
    # lazy: large initial weights, target close (rho >> 1): the linearized kernel dynamics hold
    a0, b0 = base_a * 5.0, base_b * 5.0
    assert weight_to_target_ratio(a0, b0, S, Z=50.0) > 10
    _, _, u = scalar_toy_solution(a0, b0, S, TIMES * 0.1, Z=50.0)
    assert np.max(np.abs(u - lazy_slope(a0, b0, S, TIMES * 0.1, Z=50.0))) < 0.01 * S
    # rich: tiny weights (rho << 1): the features grow by orders of magnitude, the slope is
    # sigmoidal (it lags the kernel prediction of its own start by a wide margin)
    a0, b0 = base_a * 1e-3, base_b * 1e-3
    assert weight_to_target_ratio(a0, b0, S, Z=1.0) < 1e-3
    a, _, u = scalar_toy_solution(a0, b0, S, TIMES, Z=1.0)
    growth = np.linalg.norm(a[-1]) / np.linalg.norm(a0)
    assert growth > 10
    lazy = lazy_slope(a0, b0, S, TIMES, Z=1.0)
    assert np.max(np.abs(u - lazy)) > 0.5 * S
