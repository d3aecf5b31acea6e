"""Representation quality: parallelograms, RQI, predicted accuracy and the ideal bounds (Liu).

A dataset is a list of samples, each an operand pair ``(a, b)`` with a result ``c = a o b``.
Two distinct samples with the same result form a *permissible parallelogram*: for addition
``(i, j, m, n)`` with ``i + j = m + n`` (Liu eq. 1). ``P0(D)`` holds those whose two samples are
both in D; ``P0 = P0(D0)`` over the whole dataset. Here a parallelogram is stored as the pair
of sample indices ``(s, s')`` (s < s', rows of the full dataset), so operands and results
stay with the dataset.

- *Present in a representation* (Liu eq. 2): for vector embeddings E (p, d) the code of the
  paper (ejmichaud/grokking-squared, toy/train_add.py) standardizes E per dimension and counts
  ``(i, j, m, n)`` when ``mean_d (E_i + E_j - E_m - E_n)^2 < delta`` (delta = 0.01); for
  matrix embeddings (p, n, n) of a non-abelian group, the generalized parallelogram of Liu
  appendix H.1 compares products, ``E_a E_b`` against ``E_c E_d``; grokscope scales the squared
  Frobenius difference by the mean squared product over the dataset (the products carry no
  natural unit), so delta is a relative tolerance there too.
- ``RQI = |P(R)| / |P0|`` (eq. 3): 1 for a linear representation ``E_k = a + k b``, ~0 for random.
- ``Acc_hat = |Dbar(D, P)| / |D0|`` (appendix D, eqs. 12-13), ``Dbar`` = D plus every sample
  that forms a parallelogram of P with a training sample.
- Ideal bounds (appendix E, eqs. 14-17): a parallelogram q of P0 is implied by D when adding
  its equation ``E_i + E_j - E_m - E_n = 0`` to ``A(P0(D))`` leaves the rank unchanged;
  ``RQI_bar = |P(D)| / |P0|``, ``Acc_bar = |Dbar(D, P(D))| / |D0|``.

References: Liu et al. (2022) sec. 3.1, appendices C, D, E, H (seed 004).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_DELTA = 0.01


def addition_dataset(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Liu's addition without modulo: every unordered pair i <= j of 0..p-1 (p(p+1)/2 samples)
    in row-major order, and its sum."""
    operands = np.array([(i, j) for i in range(p) for j in range(i, p)], dtype=np.int64).reshape(-1, 2)
    return operands, operands.sum(axis=1)


def parallelograms(results: np.ndarray, members: np.ndarray | None = None) -> np.ndarray:
    """Permissible parallelograms (Q, 2): every pair of distinct samples ``s < s'`` with equal
    results, both among ``members`` (a boolean mask or index array; all samples when None).
    ``parallelograms(results)`` is P0; with the training mask it is P0(D)."""
    results = np.asarray(results)
    keep = np.ones(len(results), bool) if members is None else _mask(members, len(results))
    first, second = np.triu_indices(len(results), k=1)
    same = (results[first] == results[second]) & keep[first] & keep[second]
    return np.stack([first[same], second[same]], axis=1)


def _mask(members: np.ndarray, n: int) -> np.ndarray:
    members = np.asarray(members)
    if members.dtype == bool:
        if members.shape != (n,):
            raise ValueError(f"mask must have {n} entries, got {members.shape}")
        return members
    mask = np.zeros(n, bool)
    mask[members] = True
    return mask


def constraint_matrix(operands: np.ndarray, pairs: np.ndarray, p: int) -> np.ndarray:
    """``A(P)`` (Q, p) of Liu eq. 7: one row ``e_i + e_j - e_m - e_n`` per parallelogram."""
    operands = np.asarray(operands)
    A = np.zeros((len(pairs), p))
    rows = np.arange(len(pairs))
    for column in (0, 1):  # an operand pair (i, i) adds 2 e_i: np.add.at accumulates repeats
        np.add.at(A, (rows, operands[pairs[:, 0], column]), 1.0)
        np.add.at(A, (rows, operands[pairs[:, 1], column]), -1.0)
    return A


def nullity(A: np.ndarray, p: int, tol: float = 1e-8) -> int:
    """Dimension of the null space of A (p columns): the degrees of freedom of the ground states
    of the effective loss (Liu sec. 3.2); 2 means a unique linear structure ``E_k = a + k b``."""
    if len(A) == 0:
        return p
    singular = np.linalg.svd(A, compute_uv=False)
    return p - int(np.sum(singular > tol * max(1.0, singular[0])))


def parallelogram_distances(embeddings: np.ndarray, operands: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Distance of each parallelogram (Q,) in a representation, as compared with delta.

    Vector embeddings (p, d) or (p,): standardized per dimension (mean 0, std 1, unbiased std as
    in the paper's code), then ``mean_d (E_i + E_j - E_m - E_n)^2``. Matrix embeddings (p, n, n):
    ``mean((E_a E_b - E_c E_d)^2) / mean((E_x E_y)^2 over the samples of the pairs)``.
    """
    E = np.asarray(embeddings, dtype=float)
    operands = np.asarray(operands)
    if E.ndim == 1:
        E = E[:, None]
    if E.ndim == 2:
        std = E.std(axis=0, ddof=1)
        E = (E - E.mean(axis=0)) / np.where(std > 0, std, 1.0)
        combined = E[operands[:, 0]] + E[operands[:, 1]]  # (N, d)
        scale = 1.0
    elif E.ndim == 3 and E.shape[1] == E.shape[2]:
        combined = (E[operands[:, 0]] @ E[operands[:, 1]]).reshape(len(operands), -1)  # (N, n*n)
        scale = float(np.mean(combined**2)) or 1.0
    else:
        raise ValueError(f"embeddings must be (p,), (p, d) or (p, n, n); got shape {E.shape}")
    difference = combined[pairs[:, 0]] - combined[pairs[:, 1]]
    return np.mean(difference**2, axis=1) / scale


def present_parallelograms(embeddings, operands, pairs, delta: float = DEFAULT_DELTA) -> np.ndarray:
    """Boolean (Q,): which parallelograms of ``pairs`` the representation forms (Liu eq. 2)."""
    return parallelogram_distances(embeddings, operands, pairs) < delta


def rqi(embeddings, operands, results, delta: float = DEFAULT_DELTA) -> float:
    """``RQI = |P(R)| / |P0|`` (Liu eq. 3) over the full dataset (operands (N, 2), results (N,))."""
    pairs = parallelograms(results)
    if len(pairs) == 0:
        return float("nan")
    return float(np.mean(present_parallelograms(embeddings, operands, pairs, delta)))


def augmented_dataset(train: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """``Dbar(D, P)`` (Liu eq. 12) as a mask over the samples: D plus every sample that shares a
    parallelogram of ``pairs`` (Q, 2) with a training sample."""
    mask = train.copy()
    first, second = pairs[:, 0], pairs[:, 1]
    mask[first[train[second]]] = True
    mask[second[train[first]]] = True
    return mask


def predicted_accuracy(train, pairs: np.ndarray) -> float:
    """``Acc_hat = |Dbar(D, P)| / |D0|`` (Liu eq. 13) for the training set ``train`` (mask over the
    N samples) and the parallelograms ``pairs`` present in the representation."""
    train = np.asarray(train, bool)
    return float(augmented_dataset(train, pairs).mean())


def implied_parallelograms(operands, results, train, p: int, tol: float = 1e-8) -> np.ndarray:
    """``P(D)`` (Liu eq. 14) as a boolean mask over P0 = ``parallelograms(results)``: members of
    P0(D) and every parallelogram whose equation lies in the row space of ``A(P0(D))`` (its
    addition leaves the rank unchanged: the rank test of appendix E)."""
    train = _mask(train, len(results))
    all_pairs = parallelograms(results)
    in_training = train[all_pairs[:, 0]] & train[all_pairs[:, 1]]
    rows = constraint_matrix(operands, all_pairs, p)
    known = rows[in_training]
    if len(known) == 0:
        return in_training
    _, singular, Vt = np.linalg.svd(known, full_matrices=False)
    basis = Vt[singular > tol * max(1.0, singular[0])]  # orthonormal basis of the row space
    residual = rows - (rows @ basis.T) @ basis
    return in_training | (np.linalg.norm(residual, axis=1) < 1e-6)


@dataclass
class IdealBounds:
    """Upper bounds an ideal model reaches from a training set (Liu appendix E)."""

    rqi: float
    """``RQI_bar = |P(D)| / |P0|``."""
    accuracy: float
    """``Acc_bar = |Dbar(D, P(D))| / |D0|``."""
    nullity: int
    """Nullity of ``A(P0(D))``: 2 means the training set fixes the linear structure."""


def ideal_bounds(operands, results, train, p: int) -> IdealBounds:
    """``RQI_bar``, ``Acc_bar`` and the nullity of ``A(P0(D))`` for additive embeddings."""
    train = _mask(train, len(results))
    all_pairs = parallelograms(results)
    implied = implied_parallelograms(operands, results, train, p)
    known = constraint_matrix(operands, parallelograms(results, train), p)
    return IdealBounds(
        rqi=float(implied.mean()) if len(all_pairs) else float("nan"),
        accuracy=predicted_accuracy(train, all_pairs[implied]),
        nullity=nullity(known, p),
    )
