"""Class geometry of a layer's representations: cosine of each sample to its class centre, mean
cosine between class centres (Zhao-A fig. 3e-f), and the 2D projection of the last hidden layer
on the two leading right singular vectors of the output weight (Zhao-B sec. V.A, figs. 6-7).

References: Zhao-A sec. "Applications to DNNs" (fig. 3e-f); Zhao-B sec. V.A.
"""

from __future__ import annotations

import torch


def class_centres(x: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean representation of each class (K, N) from x (P, N) and labels y (P,); NaN rows for
    classes without samples."""
    one_hot = torch.nn.functional.one_hot(y, n_classes).to(x.dtype)  # (P, K)
    return (one_hot.T @ x) / one_hot.sum(0).unsqueeze(1)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=torch.finfo(v.dtype).tiny)


def centre_cosines(x: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Cosine similarity of each sample's representation to its own class centre (P,):
    ``cos(x_mu, c_{y_mu})`` with ``c_k`` the mean of class k (uncentred, as Zhao-A draws it).
    A zero vector has cosine 0 to everything."""
    centres = class_centres(x, y, n_classes)
    return (_unit(x) * _unit(centres)[y]).sum(-1)


def between_centre_cosine(centres: torch.Tensor) -> float:
    """Mean cosine between the centres of distinct classes (over the K(K-1) ordered pairs of
    classes that have samples): 0 when the centres are mutually orthogonal."""
    present = centres[~centres.isnan().any(1)]
    k = len(present)
    if k < 2:
        return float("nan")
    unit = _unit(present)
    gram = unit @ unit.T
    return float((gram.sum() - gram.diagonal().sum()) / (k * (k - 1)))


def svd_projection(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """2D coordinates (P, 2) of last-hidden-layer outputs x (P, N): ``(v1 . x, v2 . x)`` with
    v1, v2 the two leading right singular vectors of the output weight ``W^(L) = U S V^T``
    (K, N) — the local fields of a two-neuron bottleneck built from W^(L) (Zhao-B sec. V.A).
    Each singular vector's sign is fixed so that its largest-magnitude entry is positive, so
    projections at different steps are drawn the same way round."""
    _, _, vh = torch.linalg.svd(weight.to(torch.float64), full_matrices=False)
    v = vh[:2]  # (2, N)
    largest = v.abs().argmax(dim=1)
    v = v * torch.sign(v[torch.arange(len(v)), largest]).unsqueeze(1)
    return (x.to(torch.float64) @ v.T).to(x.dtype)
