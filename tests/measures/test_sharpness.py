"""Sharpness on quadratic losses, whose Hessian is known exactly."""

from __future__ import annotations

import pytest
import torch

from grokscope.measures.sharpness import HessianVectorProduct, hutchinson_trace, top_hessian_eigenvalue


def quadratic(eigenvalues: list[float], seed: int = 0):
    """A loss 0.5 theta^T A theta + b^T theta over two parameter tensors (a 2x2 matrix and a
    vector of the rest), with A = Q diag(eigenvalues) Q^T for a random rotation Q."""
    g = torch.Generator().manual_seed(seed)
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    a = q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T
    b = torch.randn(n, generator=g, dtype=torch.float64)
    matrix = torch.randn(2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    vector = torch.randn(n - 4, generator=g, dtype=torch.float64, requires_grad=True)

    def loss():
        theta = torch.cat([matrix.flatten(), vector])
        return 0.5 * theta @ a @ theta + b @ theta

    return loss, [matrix, vector], a


def test_hessian_vector_product_is_a_times_v():
    loss, params, a = quadratic([3.0, 1.0, 0.5, -2.0, 0.1, 4.0])
    v = [torch.ones(2, 2, dtype=torch.float64), torch.arange(2.0, dtype=torch.float64)]
    hv = HessianVectorProduct(loss, params)(v)
    expected = a @ torch.cat([v[0].flatten(), v[1]])
    assert torch.allclose(torch.cat([hv[0].flatten(), hv[1]]), expected)


def test_top_eigenvalue_of_quadratic():
    loss, params, _ = quadratic([5.0, 2.0, 1.0, -0.5, 0.3, 0.1])
    value = top_hessian_eigenvalue(
        loss, params, iterations=500, tolerance=1e-10, generator=torch.Generator().manual_seed(1)
    )
    assert value == pytest.approx(5.0, rel=1e-6)


def test_top_eigenvalue_is_largest_magnitude():
    loss, params, _ = quadratic([1.0, -6.0, 0.5, 0.2, 0.1, 0.05])
    value = top_hessian_eigenvalue(
        loss, params, iterations=500, tolerance=1e-10, generator=torch.Generator().manual_seed(2)
    )
    assert value == pytest.approx(-6.0, rel=1e-6)


def test_hutchinson_trace_is_exact_for_diagonal_hessian():
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    theta = torch.randn(4, dtype=torch.float64, requires_grad=True)
    value = hutchinson_trace(
        lambda: 0.5 * (weights * theta**2).sum(), [theta], samples=3, generator=torch.Generator().manual_seed(3)
    )
    assert value == pytest.approx(10.0, rel=1e-12)


def test_hutchinson_trace_of_rotated_quadratic():
    eigenvalues = [5.0, 2.0, 1.0, -0.5, 0.3, 0.1]
    loss, params, a = quadratic(eigenvalues)
    samples = 500
    value = hutchinson_trace(loss, params, samples=samples, generator=torch.Generator().manual_seed(4))
    off_diagonal = (a**2).sum() - (torch.diagonal(a) ** 2).sum()
    sd = float(torch.sqrt(2 * off_diagonal / samples))
    assert value == pytest.approx(sum(eigenvalues), abs=4 * sd)
