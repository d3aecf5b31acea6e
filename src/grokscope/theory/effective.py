"""Liu's effective theory of representation learning: the effective loss, its gradient flow,
ground states, the critical training fraction and the grokking rate.

On embeddings E (p, d) and a set of parallelograms with constraint matrix A (Q, p) (rows
``e_i + e_j - e_m - e_n``, ``measures.rqi.constraint_matrix``):

    l_0 = (1/Q) sum_q |(A E)_q|^2,   Z_0 = sum_k |E_k|^2,   l_eff = l_0 / Z_0      (Liu eq. 5)

Gradient flow ``dE/dt = -dl_eff/dE = -(2 / (Q Z_0)) A^T A E + (2 l_0 / Z_0^2) E``. Z_0 is
conserved (l_eff is scale invariant). The centre ``C = sum_k E_k`` obeys
``dC/dt = (2 l_0 / Z_0^2) C`` (each row of A sums to 0): it stays 0 for centred embeddings, but
is *not* conserved otherwise — Liu eq. 27 drops the second term (SPEC.md sec. 3).

Ground states (l_eff = 0) form the null space of A (each dimension independently); nullity 2
means the training set fixes a unique linear structure ``E_k = a + k b`` (translation and
scale). Near a ground state the flow is linear, ``dR/dt = -H R`` with the effective Hessian
``H = (1/Z_0) d^2 l_0 / dE^2 = 2 A^T A / (Q Z_0)`` (eq. 8-9); its third-smallest eigenvalue
lambda_3 is the *grokking rate* and ``1 / (lambda_3 eta)`` the predicted number of steps at
embedding learning rate eta.

Normalized embeddings (sec. 3.2): ``E~ = (E - mu) / sigma`` with ``sigma^2 = (1/p) sum_k |E_k - mu|^2``,
so ``Z_0 = p`` (the paper's text divides by sigma^2; dividing by sigma is what makes Z_0 a
fixed normalization, and is what grokscope does).

References: Liu et al. (2022) sec. 3.2, appendices F, I (seed 004).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.integrate import solve_ivp

from grokscope.measures.rqi import addition_dataset, constraint_matrix, nullity, parallelograms

Reduction = Literal["mean", "sum"]


def normalize_embeddings(E) -> np.ndarray:
    """Centred embeddings scaled to ``Z_0 = p`` (Liu sec. 3.2)."""
    E = np.asarray(E, dtype=float)
    E = E[:, None] if E.ndim == 1 else E
    centred = E - E.mean(axis=0)
    sigma = np.sqrt(np.sum(centred**2) / len(E))
    if sigma == 0:
        raise ValueError("all embeddings are equal: no scale to normalize")
    return centred / sigma


def effective_loss(E, A) -> tuple[float, float, float]:
    """``(l_eff, l_0, Z_0)`` of Liu eq. 5 for embeddings E (p, d) and constraints A (Q, p)."""
    E = np.asarray(E, dtype=float)
    E = E[:, None] if E.ndim == 1 else E
    Z0 = float(np.sum(E**2))
    l0 = float(np.sum((A @ E) ** 2) / len(A)) if len(A) else 0.0
    return l0 / Z0, l0, Z0


def effective_gradient(E, A) -> np.ndarray:
    """``dl_eff/dE = (2 / (Q Z_0)) A^T A E - (2 l_0 / Z_0^2) E`` (p, d)."""
    E = np.asarray(E, dtype=float)
    E = E[:, None] if E.ndim == 1 else E
    _, l0, Z0 = effective_loss(E, A)
    pull = 2.0 * A.T @ (A @ E) / (len(A) * Z0) if len(A) else np.zeros_like(E)
    return pull - 2.0 * l0 / Z0**2 * E


def integrate_effective(E0, A, t) -> np.ndarray:
    """Gradient flow of the raw embeddings on l_eff (scipy DOP853); E(t) (T, p, d)."""
    E0 = np.asarray(E0, dtype=float)
    E0 = E0[:, None] if E0.ndim == 1 else E0
    return _gradient_flow(lambda E: effective_gradient(E, A), E0, t, rtol=1e-11, atol=1e-13)


def _gradient_flow(gradient, X0: np.ndarray, t, rtol: float, atol: float) -> np.ndarray:
    """``dX/dt = -gradient(X)`` from ``X0`` with scipy's DOP853, evaluated at ``t``; (T, *X0.shape)."""
    shape = X0.shape
    t = np.asarray(t, dtype=float)
    solution = solve_ivp(
        lambda _, y: -gradient(y.reshape(shape)).ravel(),
        (0.0, t[-1]),
        X0.ravel(),
        method="DOP853",
        t_eval=t,
        rtol=rtol,
        atol=atol,
    )
    if not solution.success:
        raise RuntimeError(f"effective-theory integration failed: {solution.message}")
    return solution.y.T.reshape(len(t), *shape)


def effective_hessian(A, Z0: float, reduction: Reduction = "mean") -> np.ndarray:
    """``H = 2 A^T A / (Q Z_0)`` (p, p): Liu eq. 8 with l_0 the mean over the Q parallelograms
    (eq. 5). ``reduction="sum"`` drops the 1/Q, as the effective-theory integrator of the paper's
    code (toy/train_add.py) does; it only rescales time, but the predicted steps scale with it."""
    if len(A) == 0:
        return np.zeros((A.shape[1], A.shape[1]))
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction {reduction!r} unknown; allowed: mean, sum")
    return 2.0 * A.T @ A / ((len(A) if reduction == "mean" else 1) * Z0)


def grokking_rate(A, Z0: float, reduction: Reduction = "mean") -> float:
    """lambda_3: the third-smallest eigenvalue of the effective Hessian (0 when the nullity of A
    exceeds 2: no unique linear structure, no generalization by the theory)."""
    eigenvalues = np.linalg.eigvalsh(effective_hessian(A, Z0, reduction))
    return float(max(eigenvalues[2], 0.0)) if len(eigenvalues) > 2 else 0.0


def predicted_steps(rate: float, eta: float) -> float:
    """``n_h = 1 / (lambda_3 eta)`` steps (Liu sec. 3.2); inf when lambda_3 = 0."""
    return float("inf") if rate <= 1e-12 else 1.0 / (rate * eta)


@dataclass
class CriticalFractionScan:
    """Random training sets of addition without modulo at each fraction (Liu fig. 4a, 5a)."""

    p: int
    fractions: np.ndarray
    nullities: np.ndarray  # (F, n_sets)
    rates: np.ndarray  # (F, n_sets): lambda_3 with Z_0 = p, l_0 the mean over parallelograms
    sizes: np.ndarray  # (F, n_sets): Q = |P0(D)| (lambda_3 of the summed l_0 is Q times larger)

    @property
    def unique_probability(self) -> np.ndarray:
        """P(nullity = 2): the probability that D fixes the linear structure, per fraction."""
        return np.mean(self.nullities == 2, axis=1)

    def crossing(self, level: float = 0.5) -> float:
        """The fraction where ``unique_probability`` first crosses ``level`` (linear interpolation)."""
        probability = self.unique_probability
        above = np.flatnonzero(probability >= level)
        if not len(above):
            return float("nan")
        k = above[0]
        if k == 0:
            return float(self.fractions[0])
        f0, f1, y0, y1 = self.fractions[k - 1], self.fractions[k], probability[k - 1], probability[k]
        return float(f0 + (level - y0) * (f1 - f0) / (y1 - y0))


def critical_fraction_scan(p: int, fractions, n_sets: int = 200, seed: int = 0) -> CriticalFractionScan:
    """Draw ``n_sets`` random training sets of size round(r N) for each fraction r of the p(p+1)/2
    samples, and record the nullity of A(P0(D)) and the grokking rate lambda_3 (Z_0 = p)."""
    operands, results = addition_dataset(p)
    rng = np.random.default_rng(seed)
    fractions = np.asarray(fractions, dtype=float)
    nullities = np.zeros((len(fractions), n_sets), dtype=int)
    rates = np.zeros((len(fractions), n_sets))
    sizes = np.zeros((len(fractions), n_sets), dtype=int)
    for f, fraction in enumerate(fractions):
        size = round(fraction * len(operands))
        for s in range(n_sets):
            train = np.zeros(len(operands), bool)
            train[rng.choice(len(operands), size, replace=False)] = True
            A = constraint_matrix(operands, parallelograms(results, train), p)
            nullities[f, s] = nullity(A, p)
            sizes[f, s] = len(A)
            rates[f, s] = grokking_rate(A, float(p)) if nullities[f, s] == 2 else 0.0
    return CriticalFractionScan(p, fractions, nullities, rates, sizes)


# -- the effective loss for classification (Liu appendix I) ---------------------------------
def class_effective_loss(features, labels) -> tuple[float, float, float]:
    """``(l_eff, l, Z)`` of Liu eq. 32 for representations f (N, d) with class labels (N,):
    ``l = sum over unordered same-class pairs |f_x - f_y|^2 = sum_c n_c sum_{x in c} |f_x - mu_c|^2``,
    ``Z = sum_x |f_x|^2``, ``l_eff = l / Z`` (scale invariant)."""
    F = np.asarray(features, dtype=float)
    labels = np.asarray(labels)
    pair_loss = 0.0
    for c in np.unique(labels):
        members = F[labels == c]
        pair_loss += len(members) * float(np.sum((members - members.mean(axis=0)) ** 2))
    Z = float(np.sum(F**2))
    return pair_loss / Z, pair_loss, Z


def class_effective_gradient(features, labels) -> np.ndarray:
    """``dl_eff/df_x = (2 n_c / Z)(f_x - mu_c) - (2 l / Z^2) f_x`` (N, d) (Liu eq. 33)."""
    F = np.asarray(features, dtype=float)
    labels = np.asarray(labels)
    _, pair_loss, Z = class_effective_loss(F, labels)
    pull = np.zeros_like(F)
    for c in np.unique(labels):
        members = labels == c
        pull[members] = 2.0 * members.sum() * (F[members] - F[members].mean(axis=0)) / Z
    return pull - 2.0 * pair_loss / Z**2 * F


def within_class_fraction(features, labels) -> float:
    """Within-class share of the total variance, ``sum_x |f_x - mu_c|^2 / sum_x |f_x - mu|^2``:
    1 for structureless representations of balanced classes' scale, 0 at same-class collapse."""
    F = np.asarray(features, dtype=float)
    labels = np.asarray(labels)
    within = sum(float(np.sum((F[labels == c] - F[labels == c].mean(axis=0)) ** 2)) for c in np.unique(labels))
    return within / float(np.sum((F - F.mean(axis=0)) ** 2))


def integrate_class_effective(F0, labels, t) -> np.ndarray:
    """Gradient flow of free representations on the class effective loss (Liu eq. 32, appendix I,
    fig. 19): ``df_x/dt = -dl_eff/df_x`` (eq. 33) from ``F0`` (N, d); F(t) (T, N, d). The flow is
    orthogonal to F (scale invariance), so ``Z = sum |f_x|^2`` is conserved, and same-class
    representations collapse to their class means."""
    labels = np.asarray(labels)
    F0 = np.asarray(F0, dtype=float)
    return _gradient_flow(lambda F: class_effective_gradient(F, labels), F0, t, rtol=1e-10, atol=1e-12)
