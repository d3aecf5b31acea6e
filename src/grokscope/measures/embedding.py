"""Geometry of learned embeddings: PCA, explained-variance entropy, effective dimension and
projections onto principal components (Liu sec. 4.2 and appendix K).

For an embedding table E (n_tokens x d; higher-rank tables are flattened per token, as Liu does
for the 3x3 matrices of S3) centred by its mean, PCA gives principal axes V and the fractions
sigma_i of variance they explain. Then

- entropy ``S = -sum_i sigma_i ln sigma_i`` (nats) and effective dimension ``exp(S)``: k axes of
  equal variance give exactly k (Liu fig. 7 left);
- ``project(E, pca, n)``: coordinates of any table (e.g. the embeddings at initialization) on the
  first n axes of a PCA (e.g. the final one, Liu fig. 21 right);
- ``reconstruct(E, pca, n)``: E projected onto the first n axes and mapped back, the embeddings
  Liu fig. 22 evaluates the network with;
- ``fourier_concentration(coordinates)``: for tokens 0..p-1 in order (modular arithmetic), the
  share of the non-constant Fourier power over the token index at the strongest frequency,
  summed over the coordinate columns: 1 for the ring ``(cos 2 pi k t / p, sin 2 pi k t / p)``
  of Liu fig. 1 (any k, rotation or scale), about 2 / p per frequency for unstructured
  coordinates (the largest of p / 2 such shares: ~0.1 at p = 53).

References: Liu et al. (2022), sec. 4.2, fig. 7, appendix K (figs. 21, 22).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class PCA:
    """Principal axes of a table: ``mean`` (d,), ``axes`` (r, d) orthonormal rows ordered by
    variance, ``explained_variance_ratio`` (r,) summing to 1 (r = min(n_tokens - 1, d))."""

    mean: torch.Tensor
    axes: torch.Tensor
    explained_variance_ratio: torch.Tensor


def flat(table: torch.Tensor) -> torch.Tensor:
    """(n_tokens, ...) -> (n_tokens, d) float64."""
    return table.detach().reshape(table.shape[0], -1).double()


def pca(table: torch.Tensor) -> PCA:
    """PCA of the rows of ``table`` (n_tokens, ...) by SVD of the centred rows."""
    x = flat(table)
    mean = x.mean(dim=0)
    _, singular, vh = torch.linalg.svd(x - mean, full_matrices=False)
    rank = min(x.shape[0] - 1, x.shape[1])
    variance = singular[:rank] ** 2
    total = variance.sum()
    ratio = variance / total if total > 0 else torch.zeros_like(variance)
    return PCA(mean=mean, axes=vh[:rank], explained_variance_ratio=ratio)


def explained_variance_entropy(ratios: torch.Tensor) -> float:
    """``S = -sum_i sigma_i ln sigma_i`` (nats) over the nonzero fractions ``sigma_i``."""
    r = ratios[ratios > 0].double()
    return float(-(r * r.log()).sum())


def effective_dimension(table: torch.Tensor) -> float:
    """``exp(S)`` of the PCA of ``table``: the number of equally used principal axes."""
    return math.exp(explained_variance_entropy(pca(table).explained_variance_ratio))


def project(table: torch.Tensor, basis: PCA, n: int) -> torch.Tensor:
    """(n_tokens, n) coordinates of the rows of ``table`` on the first ``n`` axes of ``basis``
    (centred by the basis' mean)."""
    return (flat(table) - basis.mean) @ basis.axes[:n].T


def reconstruct(table: torch.Tensor, basis: PCA, n: int) -> torch.Tensor:
    """``table`` projected onto the first ``n`` axes of ``basis`` and mapped back:
    ``mean + (E - mean) V_n^T V_n``, in the table's shape and dtype."""
    back = basis.mean + project(table, basis, n) @ basis.axes[:n]
    return back.reshape(table.shape).to(table.dtype)


def fourier_concentration(coordinates: torch.Tensor) -> tuple[float, int]:
    """(share, frequency): the share of the non-constant Fourier power of ``coordinates``
    (n_tokens, k), taken over the token index and summed over the k columns, that lies at its
    strongest frequency f (1 <= f <= n_tokens // 2; f and n_tokens - f are one frequency)."""
    x = coordinates.detach().double().reshape(coordinates.shape[0], -1)
    n = x.shape[0]
    power = torch.fft.fft(x - x.mean(dim=0), dim=0).abs().pow(2).sum(dim=1)  # (n,)
    frequencies = torch.arange(1, n // 2 + 1)
    per_frequency = power[frequencies] + torch.where(frequencies == n - frequencies, 0.0, power[n - frequencies])
    total = per_frequency.sum()
    if total <= 0:
        return float("nan"), 0
    best = int(per_frequency.argmax())
    return float(per_frequency[best] / total), int(frequencies[best])
