"""Attraction basins against closed forms for linear classifiers under Gaussian noise."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import norm

from grokscope.measures.basins import (
    basin_size,
    basin_sizes,
    class_curves,
    log_amplitudes,
    sample_space_curves,
    weight_space_curves,
)
from grokscope.measures.lmap import ChainLayer, run_chain


def linear_classifier():
    """Two logits (w.x, -w.x) with w = e_1: class 0 iff x_1 > 0."""
    return [ChainLayer(torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]], dtype=torch.float64))]


def margin_samples(margin: float, count: int = 40) -> torch.Tensor:
    x = torch.zeros(count, 3, dtype=torch.float64)
    x[:, 0] = margin
    x[:, 1] = torch.linspace(-1.0, 1.0, count, dtype=torch.float64)  # along the boundary: no effect
    return x


@pytest.mark.parametrize("project_noise", [True, False])
def test_sample_space_curve_matches_the_gaussian_closed_form(project_noise):
    # x' = x + a (hi - lo) eps, so x'_1 ~ N(m, (a r)^2) and P(class 0) = Phi(m / (a r)).
    margin, low, high = 0.3, -1.0, 1.0
    x = margin_samples(margin)
    y = torch.zeros(len(x), dtype=torch.long)
    amplitudes = log_amplitudes(1e-3, 10.0, 13)
    curve = sample_space_curves(
        linear_classifier(),
        x,
        y,
        amplitudes,
        300,
        torch.Generator().manual_seed(0),
        low,
        high,
        project_noise=project_noise,
    ).mean(1)
    expected = norm.cdf(margin / (amplitudes.numpy() * (high - low)))
    assert curve.numpy() == pytest.approx(expected, abs=0.02)


def test_weight_space_curve_matches_the_gaussian_closed_form():
    # W' = W + a s eps with s = std of W's six entries = sqrt(1/3); the logit difference
    # 2 x_1 + a s (eps_0 - eps_1) . x ~ N(2 m, 2 a^2 s^2 |x|^2): P = Phi(sqrt(2) m / (a s |x|)).
    layers = linear_classifier()
    x = torch.tensor([[0.5, 1.0, 0.0]] * 40, dtype=torch.float64)
    y = torch.zeros(40, dtype=torch.long)
    amplitudes = log_amplitudes(1e-2, 100.0, 13)
    # one perturbed network classifies the 40 identical samples alike: 3000 trials, error ~0.01
    curve = weight_space_curves(layers, x, y, amplitudes, 3000, torch.Generator().manual_seed(1)).mean(1)
    s = math.sqrt(1 / 3)
    expected = norm.cdf(math.sqrt(2) * 0.5 / (amplitudes.numpy() * s * math.sqrt(1.25)))
    assert curve.numpy() == pytest.approx(expected, abs=0.035)
    assert torch.equal(layers[0].weight, linear_classifier()[0].weight)  # the network is untouched


def test_a_larger_input_margin_has_a_larger_sample_basin():
    # size_half solves Phi(m / (a r)) = 3/4: a = m / (r z_{3/4}); on a grid of 2^(k/8) doubling
    # the margin shifts the curve by exactly 8 points, so the sizes are in ratio 2.
    amplitudes = torch.tensor([2.0 ** (k / 8) for k in range(-80, 9)], dtype=torch.float64)
    sizes = []
    for margin in (0.1, 0.2):
        x = margin_samples(margin)
        curve = sample_space_curves(
            linear_classifier(),
            x,
            torch.zeros(len(x), dtype=torch.long),
            amplitudes,
            400,
            torch.Generator().manual_seed(2),
            0.0,
            1.0,
        ).mean(1)
        sizes.append(basin_sizes(amplitudes, curve, n_classes=2)["size_half"])
    assert sizes[0] == pytest.approx(0.1 / norm.ppf(0.75), rel=0.05)
    assert sizes[1] / sizes[0] == pytest.approx(2.0, rel=0.05)


def test_curves_of_a_random_network_are_monotone_in_expectation():
    # an odd network (tanh, no biases, logits (v.g, -v.g)) on a symmetric set {x, -x}: every
    # class is half the samples, and pure noise gives accuracy 1/2 in expectation
    generator = torch.Generator().manual_seed(3)
    v = torch.randn(1, 16, generator=generator)
    layers = [
        ChainLayer(torch.randn(16, 5, generator=generator), activation="tanh"),
        ChainLayer(torch.randn(16, 16, generator=generator) / 4, activation="tanh"),
        ChainLayer(torch.cat([v, -v])),
    ]
    half = torch.randn(30, 5, generator=generator)
    x = torch.cat([half, -half])
    y = run_chain(layers, x).argmax(1)  # every sample correctly classified by construction
    assert int(y.sum()) == 30
    amplitudes = log_amplitudes(1e-6, 30.0, 14)
    for curve in (
        sample_space_curves(layers, x, y, amplitudes, 200, generator, float(x.min()), float(x.max())),
        weight_space_curves(layers, x, y, amplitudes, 200, generator),
    ):
        mean = curve.mean(1)
        assert mean[0] == pytest.approx(1.0, abs=0.01)
        assert mean[-1] == pytest.approx(0.5, abs=0.1)  # noise far beyond the data: chance
        assert torch.all(mean[1:] <= mean[:-1] + 0.02)  # within Monte Carlo error of monotone


def test_basin_size_interpolates_in_log_amplitude():
    amplitudes = torch.tensor([1e-3, 1e-2, 1e-1, 1.0, 10.0], dtype=torch.float64)
    curve = torch.tensor([1.0, 1.0, 0.8, 0.4, 0.1])
    assert basin_size(amplitudes, curve, 0.5) == pytest.approx(10**-0.25)  # 3/4 of the way, in log a
    assert math.isnan(basin_size(amplitudes, curve, 0.05))  # never falls below
    assert math.isnan(basin_size(amplitudes, curve, 1.5))  # starts below


def test_class_curves_average_the_samples_of_each_class():
    per_sample = torch.tensor([[1.0, 0.0, 0.5], [0.5, 0.0, 0.0]])
    torch.testing.assert_close(
        class_curves(per_sample, torch.tensor([0, 1, 0]), 3)[:2], torch.tensor([[0.75, 0.25], [0.0, 0.0]])
    )
    assert torch.isnan(class_curves(per_sample, torch.tensor([0, 1, 0]), 3)[2]).all()
