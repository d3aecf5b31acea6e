"""Lazy vs rich learning of two-layer linear networks: the tangent kernel and the scale map.

For ``f(x) = W2 W1 x`` the neural tangent kernel has a closed form: with rows ordered (sample,
output), ``K = G1 (x) I_out + Gx (x) W2 W2^T`` where ``Gx = X X^T`` and ``G1 = X W1^T W1 X^T``
(gradients with respect to W2 and W1 respectively). The map of Layerwise appendix G.2
(fig. 6a) trains networks from lambda-balanced starts of given relative scale lambda and
absolute scale, and reads lazy vs rich from the kernel distance between the kernels at the
start and the end of training (Fort et al. 2020) beside the final loss.

References: Layerwise sec. 6, appendix G (seed 002); Domine et al. (2024); Fort et al. (2020).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grokscope.measures.ntk import kernel_distance
from grokscope.theory.layerwise import integrate_two_layer, lambda_balanced_init


def linear_network_ntk(W1, W2, X) -> np.ndarray:
    """Tangent kernel of ``f = W2 W1 x`` on samples X (n, d_in): (n * d_out, n * d_out), rows
    ordered (sample, output)."""
    W1, W2, X = (np.asarray(m, dtype=float) for m in (W1, W2, X))
    features = X @ W1.T  # (n, h)
    return np.kron(features @ features.T, np.eye(W2.shape[0])) + np.kron(X @ X.T, W2 @ W2.T)


@dataclass
class LazyRichMap:
    """Grid of trained two-layer linear networks: ``kernel_distance[i, j]`` and ``final_loss[i, j]``
    for relative scale ``lambdas[i]`` and absolute scale ``scales[j]``."""

    lambdas: np.ndarray
    scales: np.ndarray
    kernel_distance: np.ndarray
    final_loss: np.ndarray


def lazy_rich_map(
    lambdas,
    scales,
    d_in: int = 8,
    hidden: int = 8,
    d_out: int = 8,
    n_samples: int = 64,
    time: float = 100.0,
    seed: int = 0,
) -> LazyRichMap:
    """Train (gradient flow, raw W1 and W2) one network per (lambda, scale) on a random linear
    regression task ``y = W* x`` with ``x ~ N(0, I)`` sampled ``n_samples`` times and ``W*`` of unit
    spectral norm; record the kernel distance between the NTKs on those samples at the start and
    after ``time``, and the final loss ``1/2 mean |y - W2 W1 x|^2`` relative to the loss of f = 0."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, d_in))
    target = rng.standard_normal((d_out, d_in))
    target /= np.linalg.norm(target, 2)
    sigma_xx = X.T @ X / n_samples
    sigma_yx = target @ sigma_xx
    zero_loss = 0.5 * np.mean(np.sum((X @ target.T) ** 2, axis=1))
    distances = np.zeros((len(lambdas), len(scales)))
    losses = np.zeros_like(distances)
    for i, lam in enumerate(lambdas):
        for j, scale in enumerate(scales):
            W1, W2 = lambda_balanced_init(d_in, hidden, d_out, float(lam), float(scale), rng)
            W1t, W2t = integrate_two_layer(sigma_yx, W1, W2, [0.0, time], sigma_xx)
            K0 = linear_network_ntk(W1, W2, X)
            K1 = linear_network_ntk(W1t[-1], W2t[-1], X)
            distances[i, j] = kernel_distance(K0, K1)
            residual = X @ (target - W2t[-1] @ W1t[-1]).T
            losses[i, j] = 0.5 * np.mean(np.sum(residual**2, axis=1)) / zero_loss
    return LazyRichMap(np.asarray(lambdas, float), np.asarray(scales, float), distances, losses)


@dataclass
class NTKPath:
    """Gradient flow of one two-layer linear network: ``kernel_distance[k]`` of the NTK at
    ``times[k]`` from the NTK at t = 0, and ``relative_loss[k]`` = loss / loss of f = 0."""

    times: np.ndarray
    kernel_distance: np.ndarray
    relative_loss: np.ndarray


def ntk_path(
    d_in: int,
    hidden: int,
    d_out: int,
    scale_in: float,
    scale_out: float,
    times,
    n_samples: int = 16,
    seed: int = 0,
) -> NTKPath:
    """Train ``f = W2 W1 x`` (gradient flow of the raw W1, W2) from Gaussian layers of standard
    deviations ``scale_in / sqrt(d_in)`` (W1) and ``scale_out / sqrt(hidden)`` (W2) on whitened
    inputs toward a random teacher of unit spectral norm, recording the NTK's distance from its
    start on ``n_samples`` random inputs and the population loss.

    Funnel (``d_in > hidden > d_out``) and anti-funnel (reversed) networks with one layer much
    heavier than the other start lazy; the lighter layer can still rotate the heavier one
    (delayed entry into the rich regime) when the heavier layer sits on the wide side
    (Layerwise appendix G.3, fig. 10)."""
    rng = np.random.default_rng(seed)
    target = rng.standard_normal((d_out, d_in))
    target /= np.linalg.norm(target, 2)
    W1 = rng.standard_normal((hidden, d_in)) * scale_in / np.sqrt(d_in)
    W2 = rng.standard_normal((d_out, hidden)) * scale_out / np.sqrt(hidden)
    X = rng.standard_normal((n_samples, d_in))
    times = np.asarray(times, dtype=float)
    W1t, W2t = integrate_two_layer(target, W1, W2, times)
    K0 = linear_network_ntk(W1, W2, X)
    distances = np.array([kernel_distance(K0, linear_network_ntk(a, b, X)) for a, b in zip(W1t, W2t)])
    residual = target[None] - W2t @ W1t  # whitened inputs: L = 1/2 |W* - W2 W1|_F^2
    losses = np.sum(residual**2, axis=(1, 2)) / np.sum(target**2)
    return NTKPath(times, distances, losses)
