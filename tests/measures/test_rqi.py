"""RQI family against Liu's worked examples and constructed representations."""

import numpy as np
import pytest

from grokscope.measures.rqi import (
    addition_dataset,
    constraint_matrix,
    ideal_bounds,
    implied_parallelograms,
    nullity,
    parallelograms,
    predicted_accuracy,
    present_parallelograms,
    rqi,
)


def pairs_as_operands(operands, pairs):
    return {(tuple(map(int, operands[a])), tuple(map(int, operands[b]))) for a, b in pairs}


def train_mask(operands, members):
    return np.array([tuple(map(int, o)) in members for o in operands])


def test_p4_full_parallelogram_set_is_liu_eq_19():
    operands, results = addition_dataset(4)
    assert len(operands) == 10
    assert pairs_as_operands(operands, parallelograms(results)) == {
        ((0, 2), (1, 1)),
        ((0, 3), (1, 2)),
        ((1, 3), (2, 2)),
    }


def test_appendix_e_p4_worked_example_gives_rqi_bar_1_and_acc_bar_06():
    operands, results = addition_dataset(4)
    train = train_mask(operands, {(0, 2), (1, 1), (0, 3), (1, 2), (1, 3), (2, 2)})  # Liu eq. 21
    bounds = ideal_bounds(operands, results, train, p=4)
    assert bounds.rqi == 1.0
    assert bounds.accuracy == pytest.approx(0.6)
    assert bounds.nullity == 2


def test_appendix_c_p6_training_samples_imply_parallelogram_0523():
    operands, results = addition_dataset(6)
    train = train_mask(operands, {(0, 4), (1, 3), (1, 5), (2, 4)})  # D1..D4
    implied = implied_parallelograms(operands, results, train, p=6)
    found = pairs_as_operands(operands, parallelograms(results)[implied])
    assert found == {((0, 4), (1, 3)), ((1, 5), (2, 4)), ((0, 5), (2, 3))}


def test_linear_representation_has_rqi_1_and_random_near_0():
    operands, results = addition_dataset(10)
    k = np.arange(10.0)[:, None]
    linear = np.array([0.3, -2.0]) + k * np.array([1.7, 0.4])  # E_k = a + k b in 2-D
    assert rqi(linear, operands, results) == 1.0
    random = [rqi(np.random.default_rng(s).standard_normal((10, 3)), operands, results) for s in range(20)]
    assert np.mean(random) < 0.02


def test_matrix_embeddings_of_a_group_representation_have_rqi_1():
    # S3 as 3x3 permutation matrices: E_a E_b = E_{a o b} exactly (generalized parallelograms)
    perms = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    matrices = np.array([np.eye(3)[list(perm)] for perm in perms])
    index = {m.tobytes(): i for i, m in enumerate(matrices)}
    operands = np.array([(a, b) for a in range(6) for b in range(6)])
    results = np.array([index[(matrices[a] @ matrices[b]).tobytes()] for a, b in operands])
    assert rqi(matrices * 2.5, operands, results) == 1.0
    noisy = matrices + np.random.default_rng(0).standard_normal(matrices.shape)
    assert rqi(noisy, operands, results) < 0.1


def test_predicted_accuracy_counts_samples_reached_through_present_parallelograms():
    operands, results = addition_dataset(4)
    train = train_mask(operands, {(0, 2), (0, 3)})
    all_pairs = parallelograms(results)
    assert predicted_accuracy(train, all_pairs[:0]) == pytest.approx(0.2)  # no parallelogram: only D
    linear = np.arange(4.0)
    present = all_pairs[present_parallelograms(linear, operands, all_pairs)]
    assert predicted_accuracy(train, present) == pytest.approx(0.4)  # + (1, 1) and (1, 2)


def test_nullity_of_full_addition_table_is_two():
    operands, results = addition_dataset(10)
    assert nullity(constraint_matrix(operands, parallelograms(results), 10), 10) == 2
    assert nullity(np.zeros((0, 10)), 10) == 10
