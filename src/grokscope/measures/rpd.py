"""Rank position distribution (RPD) and its gradient: the share of order-preserving (OPT) and
non-order-preserving (NPT) neurons in a hidden layer (Zhao-B sec. II.C, Zhao-A sec.
"Quantities", SPEC.md sec. 1).

For hidden layer l with local fields ``H`` (P x N) and L-map ``M`` (K x N): for neuron i and class
k form ``s_mu = H[mu, i] * sign(M[k, i])``, rank the P values in descending order (rank 1 = the
largest, ties share their average rank), and take the ranks of the class-k samples as
normalized positions ``rho = (rank - 1) / (P - 1)`` in [0, 1]. The histogram of rho pooled over
all (i, k), normalized to mean density 1, is the layer's RPD; pooling over i alone gives the
per-class RPDs. The RPD gradient is minus the least-squares slope of density against bin centre:
about 0 for isotropic weights, large and positive when class-k samples sit at the top of the
rankings (OPT-aligned weight vectors).

References: Zhao-B sec. II.C and figs. 2-3; Zhao-A fig. 2.
"""

from __future__ import annotations

import torch


def descending_ranks(values: torch.Tensor) -> torch.Tensor:
    """Rank of each entry within its column, in descending order: 1 for the largest, P for the
    smallest, tied entries get the average of their ranks. (P, N) -> (P, N) float."""
    n = values.shape[0]
    order = torch.argsort(values, dim=0, descending=True, stable=True)
    ordered = torch.gather(values, 0, order)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    group = torch.cumsum(starts.long(), dim=0) - 1  # tie group of each sorted entry, per column
    position = torch.arange(1, n + 1, dtype=torch.float64, device=values.device)
    position = position.unsqueeze(1).expand_as(ordered)
    total = torch.zeros_like(position).scatter_add_(0, group, position)
    count = torch.zeros_like(position).scatter_add_(0, group, torch.ones_like(position))
    average = torch.gather(total / count.clamp(min=1), 0, group)
    return torch.empty_like(average).scatter_(0, order, average)


def rank_positions(h: torch.Tensor, lmap: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Normalized rank position ``rho[mu, i]`` of sample mu in the sequence
    ``H[:, i] * sign(M[y_mu, i])`` (descending, ties averaged), in [0, 1].

    ``h``: local fields (P, N); ``lmap``: (K, N); ``y``: class of each sample (P,) in 0..K-1.
    Uses rank(-s) = P + 1 - rank(s), so one ranking per neuron serves every class; a zero L-map
    entry ties all samples (rho = 1/2).
    """
    n = h.shape[0]
    if n < 2:
        raise ValueError("the RPD needs at least two samples")
    ranks = descending_ranks(h)  # (P, N)
    sign = torch.sign(lmap).to(ranks.dtype)[y]  # (P, N): sign(M[y_mu, i])
    signed = torch.where(sign > 0, ranks, torch.where(sign < 0, n + 1 - ranks, torch.full_like(ranks, (n + 1) / 2)))
    return (signed - 1) / (n - 1)


def rpd_histograms(
    rho: torch.Tensor, y: torch.Tensor, n_classes: int, bins: int = 20
) -> tuple[torch.Tensor, torch.Tensor]:
    """(pooled (bins,), per class (K, bins)) densities of rank positions ``rho`` (P, N), each
    normalized to mean density 1 over the bins (a class without samples gets NaN)."""
    index = torch.clamp((rho * bins).long(), max=bins - 1)  # rho = 1 belongs to the last bin
    classes = y.unsqueeze(1).expand_as(index)
    counts = torch.bincount((classes * bins + index).reshape(-1), minlength=n_classes * bins)
    per_class = counts.reshape(n_classes, bins).to(torch.float64)
    pooled = per_class.sum(0)
    pooled = pooled / pooled.sum() * bins
    per_class = per_class / per_class.sum(1, keepdim=True) * bins
    return pooled, per_class


def rpd_gradient(density: torch.Tensor) -> torch.Tensor:
    """Minus the least-squares slope of ``density`` (..., bins) against the bin centres
    ``(b + 1/2) / bins``; a flat RPD gives 0, mass at the top ranks a positive value."""
    bins = density.shape[-1]
    centres = (torch.arange(bins, dtype=density.dtype, device=density.device) + 0.5) / bins
    centred = centres - centres.mean()
    slope = ((density - density.mean(-1, keepdim=True)) * centred).sum(-1) / (centred * centred).sum()
    return -slope


def rpd(
    h: torch.Tensor, lmap: torch.Tensor, y: torch.Tensor, n_classes: int, bins: int = 20
) -> tuple[torch.Tensor, torch.Tensor]:
    """The RPD of one hidden layer: (pooled (bins,), per class (K, bins)); see the module doc."""
    return rpd_histograms(rank_positions(h, lmap, y), y, n_classes, bins)
