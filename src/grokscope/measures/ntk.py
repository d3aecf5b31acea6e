"""The empirical neural tangent kernel and the kernel distance (lazy vs rich).

``K[(x, o), (x', o')] = <d f_o(x) / d theta, d f_o'(x') / d theta>`` summed over every trainable
parameter. The *kernel distance* between the kernel at initialization and now,
``1 - <K0, Kt>_F / (|K0|_F |Kt|_F)``, is near 0 while a network trains lazily (its tangent
kernel stays put, up to scale) and grows when it learns features (rich regime).

References: Fort et al. (2020), "Deep learning versus kernel learning", eq. for the kernel
distance; Layerwise sec. 6 and appendix G (seed 002), SPEC.md sec. 4.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch.func import functional_call, jacrev, vmap

NTKMode = Literal["trace", "full"]


def kernel_distance(K0, K) -> float:
    """``1 - <K0, K>_F / (|K0|_F |K|_F)`` (Fort et al. 2020), in [0, 2]; 0 when K is a positive
    multiple of K0, 1 when the two are orthogonal in the Frobenius inner product.

    >>> kernel_distance(np.eye(2), 3 * np.eye(2))
    0.0
    """
    K0 = np.asarray(K0, dtype=float).ravel()
    K = np.asarray(K, dtype=float).ravel()
    if K0.shape != K.shape:
        raise ValueError(f"kernels must have the same shape, got {K0.size} and {K.size} entries")
    norms = np.linalg.norm(K0) * np.linalg.norm(K)
    if norms == 0:
        raise ValueError("kernel distance of a zero kernel is undefined")
    return float(max(0.0, 1.0 - float(K0 @ K) / norms))


def empirical_ntk(
    model: torch.nn.Module, x: torch.Tensor, mode: NTKMode = "trace", max_elements: int = 2**26
) -> torch.Tensor:
    """The empirical NTK of ``model`` on the samples ``x`` (n, ...), over its trainable parameters.

    ``mode="trace"`` sums over outputs: ``K[i, j] = sum_o <grad f_o(x_i), grad f_o(x_j)>`` (n, n);
    ``mode="full"`` keeps them: (n * k, n * k) with rows ordered (sample, output). Per-sample
    Jacobians come from ``torch.func`` (vmap of jacrev over samples), a block of outputs at a time
    so that a block holds at most ``max_elements`` numbers (``full`` keeps all of them: n k P).
    The model is called on one sample at a time: call it in eval mode when it has batch norm.
    Computed in the model's precision, returned in float64 on the device of ``x``.
    """
    if mode not in ("trace", "full"):
        raise ValueError(f"mode {mode!r} unknown; allowed: trace, full")
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    buffers = {name: b.detach() for name, b in model.named_buffers()}
    n_params = sum(p.numel() for p in params.values())
    with torch.no_grad():
        n_outputs = functional_call(model, (params, buffers), (x[:1],)).reshape(-1).numel()
    block = max(1, max_elements // max(1, len(x) * n_params))

    def jacobian(start: int, stop: int) -> torch.Tensor:
        def outputs(p: dict[str, torch.Tensor], sample: torch.Tensor) -> torch.Tensor:
            return functional_call(model, (p, buffers), (sample.unsqueeze(0),)).reshape(-1)[start:stop]

        per_sample = vmap(jacrev(outputs), in_dims=(None, 0))(params, x)  # name -> (n, block, *shape)
        return torch.cat([g.reshape(len(x), stop - start, -1) for g in per_sample.values()], dim=2)

    blocks = [(start, min(start + block, n_outputs)) for start in range(0, n_outputs, block)]
    if mode == "trace":
        kernel = torch.zeros(len(x), len(x), dtype=torch.float64, device=x.device)
        for start, stop in blocks:
            J = jacobian(start, stop).reshape(len(x), -1)  # (n, block * P): the sum over o and p
            kernel += (J @ J.T).double()
        return kernel
    J = torch.cat([jacobian(start, stop) for start, stop in blocks], dim=1)  # (n, k, P)
    J = J.reshape(len(x) * n_outputs, -1)
    return (J @ J.T).double()
