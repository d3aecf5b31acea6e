"""Embedding geometry: circles, equal-variance axes and exact subspaces have known answers."""

from __future__ import annotations

import math

import pytest
import torch

from grokscope.measures.embedding import (
    effective_dimension,
    explained_variance_entropy,
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
