"""Embedding geometry: circles, equal-variance axes and exact subspaces have known answers."""

from __future__ import annotations

import math

import pytest
import torch

from grokscope.measures.embedding import (
    effective_dimension,
    explained_variance_entropy,
    fourier_concentration,
    pca,
    project,
    reconstruct,
)


def rotation(d: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def circle(p: int, d: int, radius: float = 3.0) -> torch.Tensor:
    """p points evenly on a circle in a random plane of R^d, shifted off the origin."""
    angles = 2 * math.pi * torch.arange(p, dtype=torch.float64) / p
    plane = torch.stack([radius * angles.cos(), radius * angles.sin()], dim=1)
    return torch.cat([plane, torch.zeros(p, d - 2, dtype=torch.float64)], dim=1) @ rotation(d).T + 1.5


def test_circle_has_effective_dimension_two_and_is_recovered_by_two_components():
    table = circle(53, 16)
    basis = pca(table)
    assert basis.explained_variance_ratio[:2].tolist() == pytest.approx([0.5, 0.5], abs=1e-12)
    assert effective_dimension(table) == pytest.approx(2.0, rel=1e-9)
    assert torch.allclose(reconstruct(table, basis, 2), table, atol=1e-12)
    radii = project(table, basis, 2).norm(dim=1)
    assert torch.allclose(radii, torch.full_like(radii, 3.0))


def test_entropy_of_k_equal_axes_is_log_k():
    assert explained_variance_entropy(torch.full((5,), 0.2)) == pytest.approx(math.log(5))
    assert explained_variance_entropy(torch.tensor([1.0, 0.0, 0.0])) == 0.0
    # k orthogonal axes with equal spread: the +-e_i points in R^k
    k = 4
    table = torch.cat([torch.eye(k), -torch.eye(k)]).double() @ rotation(k, seed=1).T
    assert effective_dimension(table) == pytest.approx(k, rel=1e-9)


def test_projection_onto_another_tables_axes():
    # a table projected onto a basis it shares only one axis with keeps only that coordinate
    d = 6
    final = torch.zeros(10, d, dtype=torch.float64)
    final[:, 0] = torch.arange(10.0)
    final[:, 1] = 0.1 * torch.arange(10.0) ** 2
    basis = pca(final)
    initial = torch.randn(10, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    coordinates = project(initial, basis, 2)
    expected = (initial - basis.mean) @ basis.axes[:2].T
    assert torch.allclose(coordinates, expected)
    # the axes lie in the (e0, e1) plane, so only those columns of the initial table matter
    assert torch.allclose(basis.axes[:2, 2:], torch.zeros(2, d - 2, dtype=torch.float64), atol=1e-12)
    shifted = initial.clone()
    shifted[:, 2:] += 5.0
    assert torch.allclose(project(shifted, basis, 2), coordinates)


def test_reconstruct_with_all_components_is_identity_and_keeps_shape():
    table = torch.randn(7, 3, 3, generator=torch.Generator().manual_seed(3))  # S3-like matrices
    basis = pca(table)
    back = reconstruct(table, basis, basis.axes.shape[0])
    assert back.shape == table.shape and back.dtype == table.dtype
    assert torch.allclose(back, table, atol=1e-6)
    one = reconstruct(table, basis, 1)
    singular = torch.linalg.svdvals((one - one.mean(dim=0)).reshape(7, -1).double())
    assert singular[1] < 1e-5 * singular[0]  # rank one


@pytest.mark.parametrize("p, k", [(53, 1), (53, 17), (12, 6), (10, 3)])
def test_fourier_concentration_of_a_ring_is_one_at_its_frequency(p, k):
    # the ring of Liu fig. 1: token t at angle 2 pi k t / p, rotated, scaled and shifted
    t = torch.arange(p, dtype=torch.float64)
    ring = torch.stack([(2 * math.pi * k * t / p).cos(), (2 * math.pi * k * t / p).sin()], dim=1)
    coordinates = 4.0 * ring @ rotation(2, seed=3).T + 2.0
    share, frequency = fourier_concentration(coordinates)
    assert share == pytest.approx(1.0, abs=1e-12)
    assert frequency == k
    # a frequency above p / 2 is the same frequency as p - k
    assert fourier_concentration(ring.flip(1) * torch.tensor([1.0, -1.0]))[1] == k


def test_fourier_concentration_of_two_frequencies_and_of_noise():
    p = 53
    t = torch.arange(p, dtype=torch.float64)
    # power 1 at frequency 5 and power 4 at frequency 9 (amplitudes 1 and 2): share 4/5 at 9
    two = torch.stack([(2 * math.pi * 5 * t / p).cos(), 2 * (2 * math.pi * 9 * t / p).cos()], dim=1)
    share, frequency = fourier_concentration(two)
    assert share == pytest.approx(0.8, abs=1e-12)
    assert frequency == 9
    noise = torch.randn(p, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert fourier_concentration(noise)[0] < 0.25
    assert math.isnan(fourier_concentration(torch.ones(p, 2))[0])
