"""Sharpness of the loss: top Hessian eigenvalue and Hessian trace from Hessian-vector products.

For a loss L(theta), the Hessian H = d^2 L / d theta^2 is never formed: ``H v`` comes from
differentiating ``grad L . v`` (Pearlmutter 1994).

- *top eigenvalue*: power iteration ``v <- H v / |H v|``; the Rayleigh quotient ``v . H v``
  converges to the eigenvalue of largest magnitude (the usual "sharpness"; at a minimum it is
  the largest curvature, lambda_max);
- *trace*: Hutchinson's estimator ``tr H = E[z . H z]`` over Rademacher vectors z (exact for a
  diagonal H, variance ``2 sum_{i != j} H_ij^2`` per sample otherwise).

The papers hold sharp vs flat minima against generalization (O-info sec. 9, "Loss Geometry";
Zhao-B compares it with the weight-space basin size, SPEC.md sec. 1).

References: Pearlmutter, Neural Computation 6 (1994); Hutchinson, Comm. Stat. 18 (1989);
Yao et al., PyHessian (2020).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

LossFunction = Callable[[], torch.Tensor]


class HessianVectorProduct:
    """``H v`` of ``loss()`` with respect to ``params`` (vectors as lists shaped like them).

    The gradient's graph is built once and reused for every product."""

    def __init__(self, loss: LossFunction, params: Sequence[torch.Tensor]) -> None:
        self.params = list(params)
        with torch.enable_grad():
            value = loss()
            self.grads = torch.autograd.grad(value, self.params, create_graph=True)

    def __call__(self, vectors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        with torch.enable_grad():
            dot = sum((g * v).sum() for g, v in zip(self.grads, vectors))
            products = torch.autograd.grad(dot, self.params, retain_graph=True, allow_unused=True)
        return [torch.zeros_like(p) if hv is None else hv.detach() for hv, p in zip(products, self.params)]


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))


def _random_like(params: Sequence[torch.Tensor], generator: torch.Generator | None, rademacher: bool):
    vectors = []
    for p in params:
        if rademacher:
            v = torch.randint(0, 2, p.shape, generator=generator, device=p.device).to(p.dtype) * 2 - 1
        else:
            v = torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype)
        vectors.append(v)
    return vectors


def top_hessian_eigenvalue(
    loss: LossFunction,
    params: Sequence[torch.Tensor],
    iterations: int = 50,
    tolerance: float = 1e-4,
    generator: torch.Generator | None = None,
) -> float:
    """Eigenvalue of largest magnitude of the Hessian of ``loss()`` w.r.t. ``params``, by power
    iteration from a Gaussian start (drawn from ``generator``, which must live on the params'
    device); stops when the Rayleigh quotient changes by less than ``tolerance`` (relative)."""
    hvp = HessianVectorProduct(loss, params)
    v = _random_like(hvp.params, generator, rademacher=False)
    norm = torch.sqrt(_dot(v, v))
    v = [x / norm for x in v]
    estimate = 0.0
    for _ in range(iterations):
        hv = hvp(v)
        new = float(_dot(v, hv))
        norm = torch.sqrt(_dot(hv, hv))
        if float(norm) == 0.0:
            return 0.0
        v = [x / norm for x in hv]
        if abs(new - estimate) <= tolerance * max(abs(new), 1e-12):
            return new
        estimate = new
    return estimate


def hutchinson_trace(
    loss: LossFunction,
    params: Sequence[torch.Tensor],
    samples: int = 20,
    generator: torch.Generator | None = None,
) -> float:
    """Hutchinson estimate ``mean_k z_k . H z_k`` of the Hessian trace of ``loss()`` w.r.t.
    ``params``, with ``samples`` Rademacher vectors drawn from ``generator``."""
    hvp = HessianVectorProduct(loss, params)
    total = 0.0
    for _ in range(samples):
        z = _random_like(hvp.params, generator, rademacher=True)
        total += float(_dot(z, hvp(z)))
    return total / samples
