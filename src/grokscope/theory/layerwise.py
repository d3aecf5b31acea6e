"""Layerwise linear models under gradient flow: closed forms, integrators, conserved quantities.

Setting (Layerwise sec. 2, SPEC.md sec. 4): inputs ``x ~ N(0, I_d)`` (or any input covariance
``Sigma_xx``), target ``y = sum_i S_i x_i`` (or ``y = W* x`` with ``Sigma_yx = E[y x^T]``), loss
``L = 1/2 E[(y - f(x))^2]``, gradient flow ``dtheta/dt = -dL/dtheta``.

- linear model ``f = sum_i theta_i x_i``: ``theta_i(t) = S_i + (theta_i(0) - S_i) e^{-t}``
  (exponential saturation, Layerwise eqs. 7, 10);
- diagonal linear network ``f = sum_i a_i b_i x_i``: ``da_i/dt = b_i (S_i - a_i b_i)``,
  ``db_i/dt = a_i (S_i - a_i b_i)``; ``a_i^2 - b_i^2`` is conserved (eq. 8); from ``a = b``,
  ``u = a b`` follows ``u(t) = S / (1 + (S/u0 - 1) e^{-2 S t})`` (sigmoidal, eq. 9);
- two-layer linear network ``f = W2 W1 x``: ``dW1/dt = W2^T (Sigma_yx - W2 W1 Sigma_xx)``,
  ``dW2/dt = (Sigma_yx - W2 W1 Sigma_xx) W1^T``; ``W1 W1^T - W2^T W2`` is conserved (app. D.3);
  from a small balanced task-aligned initialization on whitened inputs, each singular mode of
  ``Sigma_yx = U diag(s) V^T`` follows the diagonal network's sigmoid with ``S -> s_alpha``
  (eq. 12, Saxe et al. 2014).

The integrators solve the raw parameter equations (a and b, or W1 and W2) with an adaptive
Runge-Kutta method (scipy's DOP853) at tight tolerances; the closed forms are what they are
tested against.

References: Layerwise sec. 3-5 and appendix D (seed 002); Saxe, McClelland, Ganguli (2014).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

RTOL = 1e-11
ATOL = 1e-13


def _times(t) -> np.ndarray:
    t = np.atleast_1d(np.asarray(t, dtype=float))
    if t.ndim != 1 or np.any(np.diff(t) < 0) or t[0] < 0:
        raise ValueError("times must be a non-decreasing 1-D array starting at t >= 0")
    return t


def _solve(rhs, y0: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Integrate ``dy/dt = rhs(y)`` from 0 and return y at ``t`` (T, n)."""
    if t[-1] == 0:
        return np.repeat(y0[None], len(t), axis=0)
    solution = solve_ivp(lambda _, y: rhs(y), (0.0, t[-1]), y0, method="DOP853", t_eval=t, rtol=RTOL, atol=ATOL)
    if not solution.success:
        raise RuntimeError(f"gradient-flow integration failed: {solution.message}")
    return solution.y.T


# -- linear model ---------------------------------------------------------------------------
def linear_model_solution(S, t, theta0=0.0) -> np.ndarray:
    """Closed form ``theta_i(t) = S_i + (theta0_i - S_i) e^{-t}`` (T, d) of the linear model on
    whitened inputs (Layerwise eq. 10 from theta0 = 0: exponential saturation)."""
    S = np.atleast_1d(np.asarray(S, dtype=float))
    theta0 = np.broadcast_to(np.asarray(theta0, dtype=float), S.shape)
    t = _times(t)
    return S + (theta0 - S) * np.exp(-t)[:, None]


def integrate_linear_model(S, theta0, t, sigma_xx=None) -> np.ndarray:
    """Gradient flow of ``f = theta . x``: ``dtheta/dt = Sigma_xx (theta* - theta)`` where
    ``Sigma_xx theta* = Sigma_xy``; with whitened inputs ``dtheta/dt = S - theta``. (T, d)."""
    S = np.atleast_1d(np.asarray(S, dtype=float))
    sigma = np.eye(len(S)) if sigma_xx is None else np.asarray(sigma_xx, dtype=float)
    sigma_xy = sigma @ S  # the target y = S . x has E[x y] = Sigma_xx S
    theta0 = np.broadcast_to(np.asarray(theta0, dtype=float), S.shape).copy()
    return _solve(lambda theta: sigma_xy - sigma @ theta, theta0, _times(t))


# -- diagonal linear network ----------------------------------------------------------------
def diagonal_solution(S, u0, t) -> np.ndarray:
    """Closed form of ``u_i = a_i b_i`` from a balanced start ``a_i(0) = b_i(0)``, ``u0 = a b > 0``:
    ``u(t) = S / (1 + (S/u0 - 1) e^{-2 S t})`` (T, d) (Layerwise eq. 9 / eq. 39).

    >>> float(diagonal_solution([2.0], 2.0, [5.0])[0, 0])   # already at the target
    2.0
    """
    S = np.atleast_1d(np.asarray(S, dtype=float))
    u0 = np.broadcast_to(np.asarray(u0, dtype=float), S.shape)
    if np.any(u0 <= 0):
        raise ValueError("the balanced closed form needs u0 = a(0) b(0) > 0")
    t = _times(t)[:, None]
    return S / (1.0 + (S / u0 - 1.0) * np.exp(-2.0 * S * t))


def diagonal_saturation_time(S, u0, fraction: float = 0.5) -> np.ndarray:
    """Time at which the balanced diagonal mode reaches ``fraction`` of S:
    ``t = ln[(S/u0 - 1) f / (1 - f)] / (2 S)``; larger S saturates first (stage-like training)."""
    S = np.atleast_1d(np.asarray(S, dtype=float))
    return np.log((S / u0 - 1.0) * fraction / (1.0 - fraction)) / (2.0 * S)


def integrate_diagonal(S, a0, b0, t, sigma_xx=None, output_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Gradient flow of the raw parameters of ``f = c sum_i a_i b_i x_i`` for the target
    ``y = S . x``: ``da/dt = c b (Sigma_xx (S - c a b))``, ``db/dt = c a (Sigma_xx (S - c a b))``
    (whitened inputs by default: ``da/dt = b (S - a b)``). Returns ``a(t), b(t)``, each (T, d)."""
    S = np.atleast_1d(np.asarray(S, dtype=float))
    a0 = np.broadcast_to(np.asarray(a0, dtype=float), S.shape)
    b0 = np.broadcast_to(np.asarray(b0, dtype=float), S.shape)
    sigma = np.eye(len(S)) if sigma_xx is None else np.asarray(sigma_xx, dtype=float)
    c = float(output_scale)
    d = len(S)

    def rhs(y: np.ndarray) -> np.ndarray:
        a, b = y[:d], y[d:]
        residual = c * (sigma @ (S - c * a * b))
        return np.concatenate([b * residual, a * residual])

    y = _solve(rhs, np.concatenate([a0, b0]), _times(t))
    return y[:, :d], y[:, d:]


def diagonal_conserved(a, b) -> np.ndarray:
    """``a_i^2 - b_i^2``, conserved by the diagonal network's gradient flow (Layerwise eq. 8)."""
    return np.asarray(a) ** 2 - np.asarray(b) ** 2


# -- two-layer linear network ---------------------------------------------------------------
def integrate_two_layer(sigma_yx, W1_0, W2_0, t, sigma_xx=None) -> tuple[np.ndarray, np.ndarray]:
    """Gradient flow of the raw weights of ``f = W2 W1 x`` (W1: h x d_in, W2: d_out x h) on the
    loss ``1/2 E|y - W2 W1 x|^2``: ``dW1/dt = W2^T E``, ``dW2/dt = E W1^T`` with the error
    correlation ``E = Sigma_yx - W2 W1 Sigma_xx``. Returns ``W1(t)`` (T, h, d_in), ``W2(t)``."""
    sigma_yx = np.atleast_2d(np.asarray(sigma_yx, dtype=float))
    W1_0 = np.asarray(W1_0, dtype=float)
    W2_0 = np.asarray(W2_0, dtype=float)
    d_out, d_in = sigma_yx.shape
    h = W1_0.shape[0]
    if W1_0.shape != (h, d_in) or W2_0.shape != (d_out, h):
        raise ValueError(f"W1 must be (h, {d_in}) and W2 ({d_out}, h); got {W1_0.shape}, {W2_0.shape}")
    sigma_xx = np.eye(d_in) if sigma_xx is None else np.asarray(sigma_xx, dtype=float)
    n1 = h * d_in

    def rhs(y: np.ndarray) -> np.ndarray:
        W1 = y[:n1].reshape(h, d_in)
        W2 = y[n1:].reshape(d_out, h)
        error = sigma_yx - W2 @ W1 @ sigma_xx
        return np.concatenate([(W2.T @ error).ravel(), (error @ W1.T).ravel()])

    y = _solve(rhs, np.concatenate([W1_0.ravel(), W2_0.ravel()]), _times(t))
    return y[:, :n1].reshape(-1, h, d_in), y[:, n1:].reshape(-1, d_out, h)


def integrate_deep_linear(sigma_yx, weights, t, sigma_xx=None, output_scale: float = 1.0) -> list[np.ndarray]:
    """Gradient flow of every weight of ``f = c W_L ... W_1 x`` (any depth; one layer is the
    linear model) on ``1/2 E|y - f|^2``: ``dW_l/dt = c (W_L..W_{l+1})^T E (W_{l-1}..W_1)^T`` with
    ``E = Sigma_yx - c W_L..W_1 Sigma_xx``. Returns one array (T, out_l, in_l) per layer."""
    sigma_yx = np.atleast_2d(np.asarray(sigma_yx, dtype=float))
    weights = [np.asarray(W, dtype=float) for W in weights]
    shapes = [W.shape for W in weights]
    sigma_xx = np.eye(shapes[0][1]) if sigma_xx is None else np.asarray(sigma_xx, dtype=float)
    c = float(output_scale)
    bounds = np.cumsum([0] + [W.size for W in weights])

    def unpack(y: np.ndarray) -> list[np.ndarray]:
        return [y[bounds[i] : bounds[i + 1]].reshape(shape) for i, shape in enumerate(shapes)]

    def rhs(y: np.ndarray) -> np.ndarray:
        layers = unpack(y)
        below = [np.eye(shapes[0][1])]  # below[l] = W_{l-1} ... W_1
        for W in layers[:-1]:
            below.append(W @ below[-1])
        error = sigma_yx - c * (layers[-1] @ below[-1]) @ sigma_xx
        gradients, above = [], np.eye(shapes[-1][0])  # above = W_L ... W_{l+1}
        for k in range(len(layers) - 1, -1, -1):
            gradients.append(c * above.T @ error @ below[k].T)
            above = above @ layers[k]
        return np.concatenate([g.ravel() for g in reversed(gradients)])

    y = _solve(rhs, np.concatenate([W.ravel() for W in weights]), _times(t))
    return [y[:, bounds[i] : bounds[i + 1]].reshape(-1, *shape) for i, shape in enumerate(shapes)]


def two_layer_conserved(W1, W2) -> np.ndarray:
    """``W1 W1^T - W2^T W2`` (h x h, batched over leading axes), conserved by gradient flow
    (Layerwise appendix D.3). Its negative is the ``lambda I`` of a lambda-balanced network."""
    W1 = np.asarray(W1)
    W2 = np.asarray(W2)
    return W1 @ np.swapaxes(W1, -1, -2) - np.swapaxes(W2, -1, -2) @ W2


def saxe_modes(sigma_yx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SVD ``Sigma_yx = U diag(s) V^T`` (the modes of Layerwise eq. 12): U (d_out, r), s (r,), V (d_in, r)."""
    U, s, Vt = np.linalg.svd(np.atleast_2d(np.asarray(sigma_yx, dtype=float)), full_matrices=False)
    return U, s, Vt.T


def saxe_solution(sigma_yx, u0, t) -> np.ndarray:
    """Closed form of the network map ``W2 W1 (t) = U diag(u_alpha(t)) V^T`` (T, d_out, d_in) from
    a balanced task-aligned start with mode strengths ``u0`` on whitened inputs (eq. 12)."""
    U, s, V = saxe_modes(sigma_yx)
    strengths = diagonal_solution(s, u0, t)  # (T, r)
    return np.einsum("or,tr,ir->toi", U, strengths, V)


def saxe_aligned_init(sigma_yx, u0, hidden: int, rng: np.random.Generator | None = None):
    """Balanced task-aligned weights ``W1 = O diag(sqrt(u0)) V^T``, ``W2 = U diag(sqrt(u0)) O^T``
    (O: a random orthogonal h x h matrix; hidden >= rank). ``W2 W1 = U diag(u0) V^T``."""
    U, s, V = saxe_modes(sigma_yx)
    r = len(s)
    if hidden < r:
        raise ValueError(f"hidden width {hidden} is smaller than the number of modes {r}")
    rng = rng or np.random.default_rng(0)
    rotation = np.linalg.qr(rng.standard_normal((hidden, hidden)))[0][:, :r]  # (h, r), orthonormal columns
    root = np.sqrt(np.broadcast_to(np.asarray(u0, dtype=float), s.shape))
    return rotation @ np.diag(root) @ V.T, U @ np.diag(root) @ rotation.T


def mode_strengths(product, sigma_yx) -> np.ndarray:
    """Projections ``u_alpha = U_alpha^T (W2 W1) V_alpha`` of network maps (T, d_out, d_in) on the
    modes of ``Sigma_yx``: the quantity the closed forms predict, read from any trained net."""
    U, _, V = saxe_modes(sigma_yx)
    return np.einsum("or,...oi,ir->...r", U, np.asarray(product), V)


# -- lambda-balanced initialization ----------------------------------------------------------
def lambda_balanced_init(
    d_in: int, hidden: int, d_out: int, lam: float, scale: float, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Random weights with ``W2^T W2 - W1 W1^T = lam I_h`` (Layerwise eq. 14, definition G.1).

    The lighter layer is Gaussian with entries of standard deviation ``scale / sqrt(fan_in)``
    (``scale`` sets the absolute scale); the heavier one is its completion: for lam >= 0,
    ``W2 = Q (W1 W1^T + lam I)^{1/2}``, for lam < 0, ``W1 = (W2^T W2 - lam I)^{1/2} P^T``, with
    Q, P random matrices of orthonormal columns. Possible only when ``hidden <= d_out`` for
    lam > 0 and ``hidden <= d_in`` for lam < 0 (the heavier layer needs rank h); lam = 0 needs
    ``hidden <= min(d_in, d_out)`` unless the light layer's rank allows it.
    """
    if lam > 0 and hidden > d_out:
        raise ValueError(f"lambda = {lam} > 0 needs hidden width <= output width ({hidden} > {d_out})")
    if lam < 0 and hidden > d_in:
        raise ValueError(f"lambda = {lam} < 0 needs hidden width <= input width ({hidden} > {d_in})")
    if lam == 0 and hidden > max(d_in, d_out):
        raise ValueError(f"lambda = 0 needs hidden width <= max(input, output) width ({hidden})")
    rng = rng or np.random.default_rng(0)

    def frame(n: int, k: int) -> np.ndarray:  # n x k with orthonormal columns
        return np.linalg.qr(rng.standard_normal((n, max(n, k))))[0][:, :k]

    def root(matrix: np.ndarray) -> np.ndarray:  # symmetric PSD square root
        values, vectors = np.linalg.eigh(matrix)
        return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T

    if lam >= 0 and hidden <= d_out:
        W1 = rng.standard_normal((hidden, d_in)) * scale / np.sqrt(d_in)
        return W1, frame(d_out, hidden) @ root(W1 @ W1.T + lam * np.eye(hidden))
    W2 = rng.standard_normal((d_out, hidden)) * scale / np.sqrt(hidden)
    return root(W2.T @ W2 - lam * np.eye(hidden)) @ frame(d_in, hidden).T, W2
