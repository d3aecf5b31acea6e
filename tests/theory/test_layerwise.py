"""Integrators of the raw parameter equations against the closed forms (Layerwise sec. 4-5)."""

import numpy as np
import pytest

from grokscope.theory.layerwise import (
    diagonal_conserved,
    diagonal_saturation_time,
    diagonal_solution,
    integrate_deep_linear,
    integrate_diagonal,
    integrate_linear_model,
    integrate_two_layer,
    lambda_balanced_init,
    linear_model_solution,
    mode_strengths,
    saxe_aligned_init,
    saxe_solution,
    two_layer_conserved,
)

TIMES = np.linspace(0.0, 15.0, 151)


def relative_error(numeric, exact, scale):
    return float(np.max(np.abs(numeric - exact)) / scale)


def test_linear_model_integrator_matches_exponential_closed_form():
    S = np.array([2.0, 0.5, -1.0])
    theta0 = np.array([0.1, -0.3, 0.0])
    numeric = integrate_linear_model(S, theta0, TIMES)
    assert relative_error(numeric, linear_model_solution(S, TIMES, theta0), np.abs(S).max()) < 1e-4
    # exponential saturation: at t = 1 a mode from 0 has covered 1 - 1/e of its way
    assert linear_model_solution([1.0], [1.0])[0, 0] == pytest.approx(1 - np.exp(-1))


def test_diagonal_integrator_of_a_and_b_matches_sigmoid_pointwise():
    S = np.array([4.0, 1.0, 0.25])
    a0 = b0 = np.full(3, 1e-2)
    a, b = integrate_diagonal(S, a0, b0, TIMES * 4)
    exact = diagonal_solution(S, a0 * b0, TIMES * 4)
    # relative error at every point, the tiny early values included
    assert np.max(np.abs(a * b - exact) / exact) < 1e-4


def test_sigmoid_is_delayed_and_ordered_by_target_scale():
    S = np.array([4.0, 1.0, 0.25])
    half = diagonal_saturation_time(S, 1e-4)
    assert np.all(np.diff(half) > 0)  # larger S saturates first: stage-like training
    u = diagonal_solution(S, 1e-4, half)
    np.testing.assert_allclose(np.diag(u), S / 2, rtol=1e-12)
    # the linear model reaches half its target at ln 2 for every S; the network waits longer
    assert np.all(half > np.log(2))


def test_unbalanced_diagonal_network_conserves_a2_minus_b2():
    S = np.array([1.5, -0.7])
    a, b = integrate_diagonal(S, [0.9, 0.05], [0.02, -0.4], TIMES)
    conserved = diagonal_conserved(a, b)
    assert np.max(np.abs(conserved - conserved[0])) < 1e-6
    np.testing.assert_allclose(a[-1] * b[-1], S, rtol=1e-6)


def test_two_layer_integrator_follows_saxe_modes():
    rng = np.random.default_rng(0)
    sigma_yx = rng.standard_normal((3, 5))
    W1, W2 = saxe_aligned_init(sigma_yx, 1e-3, hidden=4, rng=rng)
    W1t, W2t = integrate_two_layer(sigma_yx, W1, W2, TIMES)
    product = W2t @ W1t
    exact = saxe_solution(sigma_yx, 1e-3, TIMES)
    norms = np.linalg.norm(exact, axis=(1, 2))
    assert np.max(np.linalg.norm(product - exact, axis=(1, 2)) / norms) < 1e-4
    # the modes are read back from the product the same way they are from a trained network
    s = np.linalg.svd(sigma_yx, compute_uv=False)
    np.testing.assert_allclose(mode_strengths(product[-1], sigma_yx), s, rtol=1e-5)


def test_unbalanced_two_layer_network_conserves_its_imbalance():
    rng = np.random.default_rng(1)
    sigma_yx = rng.standard_normal((2, 4))
    W1 = rng.standard_normal((3, 4)) * 0.8
    W2 = rng.standard_normal((2, 3)) * 0.05
    W1t, W2t = integrate_two_layer(sigma_yx, W1, W2, TIMES)
    conserved = two_layer_conserved(W1t, W2t)
    assert np.max(np.abs(conserved - conserved[0])) < 1e-6
    np.testing.assert_allclose(W2t[-1] @ W1t[-1], sigma_yx, atol=1e-5)


@pytest.mark.parametrize("lam", [-3.0, -0.5, 0.0, 0.5, 3.0])
def test_lambda_balanced_init_has_the_asked_imbalance(lam):
    W1, W2 = lambda_balanced_init(d_in=6, hidden=4, d_out=5, lam=lam, scale=0.7, rng=np.random.default_rng(2))
    np.testing.assert_allclose(W2.T @ W2 - W1 @ W1.T, lam * np.eye(4), atol=1e-12)


def test_lambda_balanced_init_refuses_impossible_widths():
    with pytest.raises(ValueError, match="output width"):
        lambda_balanced_init(d_in=8, hidden=4, d_out=2, lam=1.0, scale=1.0)
    with pytest.raises(ValueError, match="input width"):
        lambda_balanced_init(d_in=2, hidden=4, d_out=8, lam=-1.0, scale=1.0)


def test_deep_integrator_agrees_with_two_layer_and_linear_model_special_cases():
    rng = np.random.default_rng(3)
    sigma_yx = rng.standard_normal((2, 4))
    W1, W2 = rng.standard_normal((3, 4)) * 0.3, rng.standard_normal((2, 3)) * 0.3
    deep = integrate_deep_linear(sigma_yx, [W1, W2], TIMES)
    two = integrate_two_layer(sigma_yx, W1, W2, TIMES)
    np.testing.assert_allclose(deep[0], two[0], atol=1e-8)
    np.testing.assert_allclose(deep[1], two[1], atol=1e-8)
    S = np.array([1.0, -2.0, 0.5])
    (theta,) = integrate_deep_linear(S[None, :], [np.zeros((1, 3))], TIMES)
    np.testing.assert_allclose(theta[:, 0], linear_model_solution(S, TIMES), atol=1e-8)
    # three layers: balanced layers stay balanced (W_{l+1}^T W_{l+1} - W_l W_l^T conserved)
    layers = [rng.standard_normal((3, 4)) * 0.2, rng.standard_normal((3, 3)) * 0.2, rng.standard_normal((2, 3)) * 0.2]
    path = integrate_deep_linear(sigma_yx, layers, TIMES)
    gap = path[1] @ np.swapaxes(path[1], 1, 2) - np.swapaxes(path[2], 1, 2) @ path[2]
    assert np.max(np.abs(gap - gap[0])) < 1e-6
    np.testing.assert_allclose(path[2][-1] @ path[1][-1] @ path[0][-1], sigma_yx, atol=1e-4)


def test_output_scale_and_input_covariance_enter_the_diagonal_flow():
    S = np.array([1.0, 0.5])
    sigma = np.array([[1.0, 0.3], [0.3, 2.0]])
    a, b = integrate_diagonal(S, [0.4, 0.3], [0.4, 0.3], TIMES * 3, sigma_xx=sigma, output_scale=2.0)
    np.testing.assert_allclose(2.0 * a[-1] * b[-1], S, rtol=1e-5)  # the flow still ends on the teacher
    conserved = diagonal_conserved(a, b)
    assert np.max(np.abs(conserved - conserved[0])) < 1e-6
