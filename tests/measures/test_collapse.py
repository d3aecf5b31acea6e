"""Neural collapse: a perfect simplex ETF is ideal, and constructed departures give known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grokscope.measures.collapse import neural_collapse


def simplex_etf(n_classes: int, dim: int, radius: float = 2.0, seed: int = 0) -> torch.Tensor:
    """(C, d) class means forming a simplex ETF of the given norm, in a random orthonormal basis."""
    centred = torch.eye(n_classes, dtype=torch.float64) - 1.0 / n_classes  # rows: e_c - 1/C
    centred = centred / torch.linalg.norm(centred, dim=1, keepdim=True) * radius
    basis, _ = torch.linalg.qr(
        torch.randn(dim, n_classes, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    )
    return centred @ basis.T  # (C, d)


def test_perfect_simplex_etf_is_ideal():
    c, d, per_class = 5, 8, 4
    means = simplex_etf(c, d) + 3.0  # a global offset: every measure is relative to mu_G
    labels = torch.arange(c).repeat_interleave(per_class)
    features = means[labels]
    weight = 0.7 * (means - means.mean(dim=0))  # self-dual classifier (any scale)
    result = neural_collapse(features, labels, weight=weight, predictions=labels, n_classes=c)
    for value in (result.nc1, result.nc2, result.equinorm, result.nc3, result.nc4):
        assert value == pytest.approx(0.0, abs=1e-10)


def test_nc1_of_isotropic_within_class_spread():
    # samples mu_c +- s sqrt(C - 1) u_k along each direction u_k of the means' span give
    # S_W = s^2 P (P the projector on the span); S_B has C - 1 eigenvalues r^2 / (C - 1) there,
    # so NC1 = tr(S_W S_B^+) / C = (C - 1)^2 s^2 / (C r^2).
    c, d, r, s = 4, 6, 2.0, 0.3
    means = simplex_etf(c, d, radius=r)
    basis, _ = torch.linalg.qr(means.T)  # (d, C) spans the means; only C - 1 columns matter
    span = basis[:, : c - 1]
    offsets = torch.cat([s * span.T * math.sqrt(c - 1), -s * span.T * math.sqrt(c - 1)])  # (2(C-1), d)
    features = torch.cat([mean + offsets for mean in means])
    labels = torch.arange(c).repeat_interleave(len(offsets))
    result = neural_collapse(features, labels, n_classes=c)
    assert result.nc1 == pytest.approx((c - 1) ** 2 * s**2 / (c * r**2), rel=1e-9)
    assert result.nc2 == pytest.approx(0.0, abs=1e-10)
    assert math.isnan(result.nc3) and math.isnan(result.nc4)


def test_nc2_of_collinear_means_and_nc3_of_anti_dual_weights():
    # three means at (1, 0), (-1, 0), (0, 0): M^T M / ||.||_F = [[.5, -.5, 0], [-.5, .5, 0], [0, 0, 0]]
    means = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    labels = torch.arange(3)
    gram = np.array([[0.5, -0.5, 0], [-0.5, 0.5, 0], [0, 0, 0]])
    etf = np.array([[2, -1, -1], [-1, 2, -1], [-1, -1, 2]]) / 3 / math.sqrt(2)
    result = neural_collapse(means, labels, weight=-means, n_classes=3)
    assert result.nc2 == pytest.approx(np.linalg.norm(gram - etf), abs=1e-12)
    assert result.equinorm == pytest.approx(np.std([1, 1, 0]) / np.mean([1, 1, 0]), abs=1e-12)
    assert result.nc3 == pytest.approx(4.0, abs=1e-12)  # || -a - a ||^2 with ||a|| = 1


def test_nc2_is_zero_for_any_two_classes():
    features = torch.tensor([[3.0, 1.0], [0.0, -2.0], [5.0, 5.0]])
    labels = torch.tensor([0, 1, 1])
    assert neural_collapse(features, labels).nc2 == pytest.approx(0.0, abs=1e-7)


def test_nc4_counts_disagreements_with_nearest_class_mean():
    means = simplex_etf(3, 4)
    labels = torch.arange(3).repeat_interleave(4)
    predictions = labels.clone()
    predictions[[0, 5, 6]] = (predictions[[0, 5, 6]] + 1) % 3  # three of twelve disagree
    result = neural_collapse(means[labels], labels, predictions=predictions, n_classes=3)
    assert result.nc4 == pytest.approx(3 / 12)
