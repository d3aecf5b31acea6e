"""The scalar toy of Layerwise eq. 15: weight-to-target ratio and lazy vs rich dynamics.

Model ``f(x) = (1/Z) sum_k a_k b_k x`` (a two-layer linear network of width K with scalar input
and output), target ``S x`` with ``E[x^2] = 1``; loss ``L = 1/2 (S - u)^2`` with the network's
slope ``u = (1/Z) sum_k a_k b_k``. Gradient flow: ``da_k/dt = (S - u) b_k / Z``,
``db_k/dt = (S - u) a_k / Z``.

The paper's equations 16-20 and theorem I.1 lost their symbols in extraction; this is the
derivation they follow (restored here). With ``v_k = a_k + b_k``, ``w_k = a_k - b_k``:
``v_k(t) = v_k(0) e^{tau}``, ``w_k(t) = w_k(0) e^{-tau}``, ``tau = int (S - u)/Z dt`` (so
``a_k^2 - b_k^2 = v_k w_k`` is conserved). With ``V = sum v_k(0)^2``, ``W = sum w_k(0)^2`` and
``q = e^{2 tau}``: ``u = (V q - W / q) / (4Z)`` and
``dq/dt = -(V / 2Z^2) (q - q_+)(q - q_-)``, ``q_+- = (2ZS +- sqrt(4 Z^2 S^2 + V W)) / V``,
solved by partial fractions: ``(q - q_+)/(q - q_-) = c e^{-gamma t}``,
``gamma = sqrt(4 Z^2 S^2 + V W) / Z^2``, ``c = (1 - q_+)/(1 - q_-)``.

The *weight-to-target ratio* ``rho = sqrt(V W) / (2 Z |S|)`` (grokscope's reading of eq. 20:
the squared norm of the initial weights, normalized by Z, over the target scale) decides the
regime: ``q_+ = (2ZS / V)(1 + sqrt(1 + rho^2))`` for V = W, so a large rho keeps q near 1
(features barely move: lazy, exponential approach) and a small rho lets them grow by a factor
~2/rho (rich, sigmoidal with a delay).

References: Layerwise sec. 7.1 and appendix I (seed 002); Kumar et al. (2024).
"""

from __future__ import annotations

import numpy as np

from grokscope.theory.layerwise import _solve, _times


def _invariants(a0, b0) -> tuple[np.ndarray, np.ndarray, float, float]:
    a0 = np.atleast_1d(np.asarray(a0, dtype=float))
    b0 = np.atleast_1d(np.asarray(b0, dtype=float))
    v0, w0 = a0 + b0, a0 - b0
    return v0, w0, float(v0 @ v0), float(w0 @ w0)


def weight_to_target_ratio(a0, b0, S: float, Z: float = 1.0) -> float:
    """``rho = sqrt(V W) / (2 Z |S|)`` with ``V = |a0 + b0|^2``, ``W = |a0 - b0|^2``: large -> lazy,
    small -> rich (Layerwise sec. 7.1, remark I.3)."""
    _, _, V, W = _invariants(a0, b0)
    return float(np.sqrt(V * W) / (2.0 * Z * abs(S)))


def scalar_toy_solution(a0, b0, S: float, t, Z: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed form (theorem I.1, restored): ``a(t), b(t)`` (T, K) and the slope ``u(t)`` (T,)."""
    v0, w0, V, W = _invariants(a0, b0)
    if V == 0:
        raise ValueError("a0 + b0 = 0 for every unit: no aligned component, the flow never reaches S")
    t = _times(t)
    root = np.sqrt(4.0 * Z**2 * S**2 + V * W)
    q_plus, q_minus = (2.0 * Z * S + root) / V, (2.0 * Z * S - root) / V
    gamma = root / Z**2
    if np.isclose(q_plus, 1.0, rtol=0, atol=1e-15):  # started exactly at the fixed point
        q = np.ones_like(t)
    else:
        g = (1.0 - q_plus) / (1.0 - q_minus) * np.exp(-gamma * t)
        q = (q_plus - g * q_minus) / (1.0 - g)
    half = np.sqrt(q)[:, None]
    a = (v0 * half + w0 / half) / 2.0
    b = (v0 * half - w0 / half) / 2.0
    u = (V * q - W / q) / (4.0 * Z)
    return a, b, u


def integrate_scalar_toy(a0, b0, S: float, t, Z: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Gradient flow of the raw parameters ``a_k, b_k`` of eq. 15; returns ``a(t), b(t)`` (T, K)."""
    a0 = np.atleast_1d(np.asarray(a0, dtype=float))
    b0 = np.atleast_1d(np.asarray(b0, dtype=float))
    K = len(a0)

    def rhs(y: np.ndarray) -> np.ndarray:
        a, b = y[:K], y[K:]
        residual = (S - a @ b / Z) / Z
        return np.concatenate([residual * b, residual * a])

    y = _solve(rhs, np.concatenate([a0, b0]), _times(t))
    return y[:, :K], y[:, K:]


def lazy_slope(a0, b0, S: float, t, Z: float = 1.0) -> np.ndarray:
    """The slope of the linearized (lazy, NTK) dynamics from the same start:
    ``u(t) = S + (u0 - S) e^{-k t}`` with the tangent kernel ``k = sum(a0^2 + b0^2) / Z^2``."""
    a0 = np.atleast_1d(np.asarray(a0, dtype=float))
    b0 = np.atleast_1d(np.asarray(b0, dtype=float))
    k = float(a0 @ a0 + b0 @ b0) / Z**2
    u0 = float(a0 @ b0) / Z
    return S + (u0 - S) * np.exp(-k * _times(t))
