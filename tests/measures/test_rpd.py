"""RPD on constructions with a closed-form answer, and on isotropic random weights."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from grokscope.measures.rpd import descending_ranks, rank_positions, rpd, rpd_gradient, rpd_histograms


def test_descending_ranks_average_ties_like_scipy():
    values = torch.randint(0, 6, (40, 7)).double()  # many ties
    expected = np.column_stack([scipy.stats.rankdata(-values[:, j].numpy()) for j in range(7)])
    np.testing.assert_allclose(descending_ranks(values).numpy(), expected)
    np.testing.assert_allclose(
        descending_ranks(torch.tensor([[3.0], [1.0], [3.0], [2.0]])).numpy().ravel(), [1.5, 4.0, 1.5, 3.0]
    )


def top_half_construction(per_class: int, neurons: int, seed: int = 0):
    """Two classes; for every neuron i and class k, the class-k samples hold exactly the top half
    of the ranking of H[:, i] * sign(M[k, i]). Half the neurons point the other way round."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(2).repeat_interleave(per_class)[torch.randperm(2 * per_class, generator=generator)]
    jitter = torch.rand(2 * per_class, neurons, generator=generator, dtype=torch.float64)
    h = jitter + 2.0 * (y == 0).double().unsqueeze(1)  # class 0 above class 1 in every neuron
    flip = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(neurons // 2)
    h = h * flip  # odd neurons: class 1 on top ...
    lmap = torch.stack([flip, -flip]) * torch.rand(2, neurons, generator=generator, dtype=torch.float64).add(0.1)
    return h, lmap, y  # ... and their L-map signs flipped with them


def test_top_half_construction_has_the_closed_form_rpd():
    # With n = 10 m samples per class (P = 20 m), class-k ranks are 1..n, so
    # rho_j = j / (P - 1), j = 0..n-1, and bin b of 20 holds exactly j = b m .. (b + 1) m - 1.
    # Density: 2 on bins 0..9, 0 on bins 10..19. Gradient: -slope of the least-squares line,
    # slope = sum (c_b - 1/2)(d_b - 1) / sum (c_b - 1/2)^2 = -5 / (665 / 400): gradient 400 / 133.
    h, lmap, y = top_half_construction(per_class=30, neurons=8)
    pooled, per_class = rpd(h, lmap, y, n_classes=2, bins=20)
    expected = torch.tensor([2.0] * 10 + [0.0] * 10, dtype=torch.float64)
    torch.testing.assert_close(pooled, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(per_class, expected.expand(2, 20), atol=1e-6, rtol=0)
    assert float(rpd_gradient(pooled)) == pytest.approx(400 / 133, abs=1e-6)
    # K bins for K classes: density (K, 0, ..., 0), gradient 6 K / (K + 1) = 4 for K = 2.
    pooled, _ = rpd(h, lmap, y, n_classes=2, bins=2)
    torch.testing.assert_close(pooled, torch.tensor([2.0, 0.0], dtype=torch.float64), atol=1e-6, rtol=0)
    assert float(rpd_gradient(pooled)) == pytest.approx(4.0, abs=1e-6)


def test_reversed_construction_has_the_opposite_gradient():
    h, lmap, y = top_half_construction(per_class=30, neurons=8)
    pooled, _ = rpd(h, -lmap, y, n_classes=2)
    assert float(rpd_gradient(pooled)) == pytest.approx(-400 / 133, abs=1e-6)


def test_isotropic_random_weights_give_a_flat_rpd():
    generator = torch.Generator().manual_seed(0)
    classes, dim, samples = 10, 20, 600
    centres = 2.0 * torch.randn(classes, dim, generator=generator)
    y = torch.randint(0, classes, (samples,), generator=generator)
    x = centres[y] + torch.randn(samples, dim, generator=generator)  # clustered, learnable data
    weights = torch.randn(4000, dim, generator=generator)  # isotropic weight vectors
    lmap = torch.randn(classes, 4000, generator=generator)
    pooled, per_class = rpd(x @ weights.T, lmap, y, classes)
    assert abs(float(rpd_gradient(pooled))) < 0.05
    assert pooled.mean().item() == pytest.approx(1.0)
    assert per_class.mean(1).numpy() == pytest.approx(np.ones(classes))


def test_zero_lmap_entries_rank_in_the_middle():
    h = torch.randn(5, 3)
    rho = rank_positions(h, torch.zeros(2, 3), torch.tensor([0, 1, 0, 1, 0]))
    torch.testing.assert_close(rho, torch.full((5, 3), 0.5, dtype=torch.float64))


def test_histograms_put_rho_one_in_the_last_bin():
    pooled, _ = rpd_histograms(torch.tensor([[0.0], [1.0]], dtype=torch.float64), torch.tensor([0, 0]), 1, bins=4)
    torch.testing.assert_close(pooled, torch.tensor([2.0, 0.0, 0.0, 2.0], dtype=torch.float64))
