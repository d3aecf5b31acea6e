"""Neural collapse NC1..NC4 of last-layer features (Papyan, Han, Donoho 2020; SPEC.md sec. 4).

With features h (N x d) of the last hidden layer, class means mu_c, the global mean mu_G and
``M = [mu_c - mu_G]`` (d x C):

- NC1 ``tr(S_W S_B^+) / C``: within-class variability relative to the between-class spread,
  ``S_W = 1/N sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T``, ``S_B = 1/C sum_c (mu_c - mu_G)(...)^T``,
  ``S_B^+`` the pseudo-inverse on its top C - 1 eigen-directions (as in Papyan et al.'s code);
- NC2 ``|| M^T M / ||M^T M||_F - (I - 11^T/C) / sqrt(C - 1) ||_F``: distance of the class means'
  Gram matrix to a simplex equiangular tight frame; ``equinorm`` = std / mean of ``||mu_c - mu_G||``;
- NC3 ``|| W^T / ||W||_F - M / ||M||_F ||_F^2``: self-duality of the last-layer weights W (C x d);
- NC4: fraction of samples whose network prediction differs from the nearest class mean.

Ideal collapse gives 0 for all of them. mu_G is taken as the mean of the class means, which is
Papyan et al.'s mean of all samples on their balanced sets and keeps ``sum_c (mu_c - mu_G) = 0``
(the simplex condition) on the slightly unbalanced training splits of algorithmic tasks.

References: Papyan, Han, Donoho, PNAS 117 (2020); Layerwise sec. 3 (neural collapse in the
layerwise linear model).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch


@dataclass
class Collapse:
    nc1: float
    nc2: float
    equinorm: float
    nc3: float
    nc4: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def class_means(features: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(C, d) mean feature of each class; a class without samples gets NaN."""
    sums = torch.zeros(n_classes, features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, labels, features)
    counts = torch.bincount(labels, minlength=n_classes).to(features.dtype)
    return sums / counts[:, None]


def neural_collapse(
    features: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor | None = None,
    predictions: torch.Tensor | None = None,
    n_classes: int | None = None,
) -> Collapse:
    """NC1, NC2 (+ equinorm), NC3 and NC4 of ``features`` (N, d) with class ids ``labels`` (N,).

    ``weight`` is the last layer's weight (C, d) (NC3 is NaN without it or when its shape is not
    C x d); ``predictions`` the network's predicted classes (N,) (NC4 is NaN without them).
    Classes without samples are left out. Computed in float64 on the tensors' device.
    """
    h = features.detach().flatten(1).double()
    labels = labels.detach().long()
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    means = class_means(h, labels, n_classes)  # (C, d)
    present = torch.bincount(labels, minlength=n_classes) > 0
    global_mean = means[present].mean(dim=0)
    m = (means[present] - global_mean).T  # (d, C')
    c = m.shape[1]

    within = h - means[labels]
    s_w = within.T @ within / h.shape[0]
    s_b = m @ m.T / c
    eigenvalues, eigenvectors = torch.linalg.eigh(s_b)
    keep = max(min(c - 1, h.shape[1]), 1)
    top_values, top_vectors = eigenvalues[-keep:], eigenvectors[:, -keep:]
    usable = top_values > top_values.max() * 1e-12
    s_b_pinv = (top_vectors[:, usable] / top_values[usable]) @ top_vectors[:, usable].T
    nc1 = float(torch.trace(s_w @ s_b_pinv)) / c

    gram = m.T @ m
    etf = (torch.eye(c, dtype=h.dtype, device=h.device) - 1.0 / c) / math.sqrt(max(c - 1, 1))
    nc2 = float(torch.linalg.norm(gram / torch.linalg.norm(gram) - etf))
    norms = torch.linalg.norm(m, dim=0)
    equinorm = float(norms.std(unbiased=False) / norms.mean())

    nc3 = math.nan
    if weight is not None and weight.shape == (n_classes, h.shape[1]):
        w = weight.detach().double()[present].T  # (d, C')
        nc3 = float((w / torch.linalg.norm(w) - m / torch.linalg.norm(m)).pow(2).sum())

    nc4 = math.nan
    if predictions is not None:
        classes = torch.nonzero(present).flatten()
        nearest = classes[torch.cdist(h, means[present]).argmin(dim=1)]
        nc4 = float((nearest != predictions.detach().to(nearest.device)).double().mean())
    return Collapse(nc1=nc1, nc2=nc2, equinorm=equinorm, nc3=nc3, nc4=nc4)
