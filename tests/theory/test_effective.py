"""Liu's effective theory: conservation laws, ground states, critical fraction (sec. 3.2)."""

import numpy as np
import pytest
from scipy.integrate import cumulative_trapezoid

from grokscope.measures.rqi import addition_dataset, constraint_matrix, parallelograms, rqi
from grokscope.theory.effective import (
    class_effective_gradient,
    class_effective_loss,
    critical_fraction_scan,
    effective_gradient,
    effective_hessian,
    effective_loss,
    grokking_rate,
    integrate_class_effective,
    integrate_effective,
    normalize_embeddings,
    predicted_steps,
    within_class_fraction,
)


@pytest.fixture
def training_constraints():
    operands, results = addition_dataset(10)
    rng = np.random.default_rng(1)
    train = np.zeros(len(operands), bool)
    train[rng.choice(len(operands), 40, replace=False)] = True
    return operands, results, constraint_matrix(operands, parallelograms(results, train), 10)


def test_flow_conserves_z0_keeps_centred_embeddings_centred_and_reaches_linear_structure(training_constraints):
    operands, results, A = training_constraints
    E0 = normalize_embeddings(np.random.default_rng(2).standard_normal((10, 2)))
    assert effective_loss(E0, A)[2] == pytest.approx(10.0)
    E = integrate_effective(E0, A, np.linspace(0, 300, 31))
    Z0 = np.array([effective_loss(e, A)[2] for e in E])
    assert np.max(np.abs(Z0 - Z0[0])) < 1e-6
    assert np.max(np.abs(E.sum(axis=1))) < 1e-6
    assert rqi(E[-1], operands, results) == 1.0


def test_centre_of_uncentred_embeddings_grows_as_2_l0_over_z0_squared(training_constraints):
    # SPEC.md sec. 3: dC/dt = (2 l0 / Z0^2) C, so C is not conserved (Liu eq. 27 drops the term)
    _, _, A = training_constraints
    E0 = np.random.default_rng(3).standard_normal((10, 1)) + 2.0
    times = np.linspace(0, 20, 2001)
    E = integrate_effective(E0, A, times)
    C = E.sum(axis=1)[:, 0]
    l0 = np.array([effective_loss(e, A)[1] for e in E])
    Z0 = effective_loss(E0, A)[2]
    predicted = cumulative_trapezoid(2 * l0 / Z0**2, times, initial=0.0)
    assert np.log(C[-1] / C[0]) > 1e-3  # visibly not conserved
    np.testing.assert_allclose(np.log(C / C[0]), predicted, atol=1e-6)


def test_gradient_matches_finite_differences(training_constraints):
    _, _, A = training_constraints
    E = np.random.default_rng(4).standard_normal((10, 2))
    gradient = effective_gradient(E, A)
    step = 1e-6
    for index in [(0, 0), (3, 1), (9, 0)]:
        shifted = E.copy()
        shifted[index] += step
        numeric = (effective_loss(shifted, A)[0] - effective_loss(E, A)[0]) / step
        assert numeric == pytest.approx(gradient[index], rel=1e-4, abs=1e-8)


def test_full_dataset_has_two_zero_modes_and_positive_grokking_rate():
    operands, results = addition_dataset(10)
    A = constraint_matrix(operands, parallelograms(results), 10)
    eigenvalues = np.linalg.eigvalsh(effective_hessian(A, 10.0))
    assert np.all(np.abs(eigenvalues[:2]) < 1e-12) and eigenvalues[2] > 1e-3
    rate = grokking_rate(A, 10.0)
    assert grokking_rate(A, 10.0, reduction="sum") == pytest.approx(rate * len(A))
    assert predicted_steps(rate, 1e-3) == pytest.approx(1 / (rate * 1e-3))
    assert predicted_steps(0.0, 1e-3) == np.inf


def test_probability_of_unique_linear_structure_crosses_half_between_030_and_050():
    scan = critical_fraction_scan(10, np.arange(0.2, 0.65, 0.05), n_sets=150, seed=0)
    assert 0.3 < scan.crossing(0.5) < 0.5
    assert scan.unique_probability[0] == 0.0 and scan.unique_probability[-1] > 0.9
    assert np.all(scan.rates[scan.nullities > 2] == 0)


def test_class_effective_loss_pairs_formula_and_scale_invariance():
    rng = np.random.default_rng(5)
    F, labels = rng.standard_normal((12, 2)), rng.integers(0, 3, 12)
    pairs = sum(np.sum((F[i] - F[j]) ** 2) for i in range(12) for j in range(i + 1, 12) if labels[i] == labels[j])
    l_eff, pair_loss, Z = class_effective_loss(F, labels)
    assert pair_loss == pytest.approx(pairs)
    assert pytest.approx(np.sum(F**2)) == Z
    assert class_effective_loss(7 * F, labels)[0] == pytest.approx(l_eff)
    # the flow keeps Z: the gradient is orthogonal to F
    assert np.sum(class_effective_gradient(F, labels) * F) == pytest.approx(0.0, abs=1e-12)
    collapsed = np.repeat(rng.standard_normal((3, 2)), 4, axis=0)
    assert within_class_fraction(collapsed, np.repeat(np.arange(3), 4)) == pytest.approx(0.0, abs=1e-12)


def test_class_flow_conserves_z_lowers_the_loss_and_collapses_classes():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(3), 8)
    F0 = rng.standard_normal((24, 2)) + np.repeat(rng.standard_normal((3, 2)), 8, axis=0)
    path = integrate_class_effective(F0, labels, [0.0, 1.0, 200.0])
    Z = np.sum(path**2, axis=(1, 2))
    np.testing.assert_allclose(Z, Z[0], rtol=1e-7)
    losses = [class_effective_loss(F, labels)[0] for F in path]
    assert losses[0] > losses[1] > losses[2]
    assert within_class_fraction(path[0], labels) > 0.2 and within_class_fraction(path[-1], labels) < 1e-4
