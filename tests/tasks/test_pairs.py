"""Addition without modulo and permutation groups: tables, labels, splits, targets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from grokscope.errors import ConfigError
from grokscope.tasks import build_task
from grokscope.tasks.addition import AdditionSpec
from grokscope.tasks.groups import PermutationGroupSpec, group_table


def test_addition_has_every_unordered_pair_once_with_its_sum():
    task = build_task(AdditionSpec(p=10, train_size=45))
    operands = np.concatenate([task.metadata["train_operands"], task.metadata["test_operands"]])
    assert len(operands) == 55 and len(task.metadata["train_operands"]) == 45
    assert sorted(map(tuple, operands.tolist())) == [(i, j) for i in range(10) for j in range(i, 10)]
    labels = torch.cat([task.y_train, task.y_test]).numpy()
    assert np.array_equal(labels, operands.sum(axis=1))
    assert task.n_classes == 19 and task.vocab_size == 10
    # token inputs are the operand pairs themselves
    assert np.array_equal(task.x_train.numpy(), task.metadata["train_operands"])


def test_addition_targets_vectors_or_classes_and_onehot():
    vectors = build_task(AdditionSpec(p=6, target_dim=7, target_std=2.0))
    assert vectors.target_vectors.shape == (11, 7) and vectors.output_dim == 7
    assert build_task(AdditionSpec(p=6, target_dim=7, target_std=2.0)).target_vectors.equal(vectors.target_vectors)
    assert not build_task(AdditionSpec(p=6, target_dim=7, target_seed=1)).target_vectors.equal(vectors.target_vectors)
    classes = build_task(AdditionSpec(p=6, targets="classes", encoding="onehot"))
    assert classes.target_vectors is None and classes.output_dim == 11
    x, (i, j) = classes.x_train[0], classes.metadata["train_operands"][0]
    assert x.shape == (12,) and x[i] == 1 and x[6 + j] == 1 and x.sum() == 2


def test_splits_are_disjoint_deterministic_and_seeded():
    a, b = build_task(AdditionSpec(split_seed=3)), build_task(AdditionSpec(split_seed=3))
    c = build_task(AdditionSpec(split_seed=4))
    assert not set(a.metadata["train_index"]) & set(a.metadata["test_index"])
    assert np.array_equal(a.metadata["train_index"], b.metadata["train_index"])
    assert not np.array_equal(a.metadata["train_index"], c.metadata["train_index"])
    with pytest.raises(ConfigError, match="train_size = 55"):
        build_task(AdditionSpec(p=10, train_size=55))


def compose(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(a[b[k]] for k in range(len(a)))


@pytest.mark.parametrize("n", [3, 4])
def test_each_group_table_entry_is_the_composition_of_its_permutations(n):
    elements, operands, labels = group_table(n)
    perms = list(itertools.permutations(range(n)))
    assert [tuple(e) for e in elements.tolist()] == perms and perms[0] == tuple(range(n))
    for (a, b), c in zip(operands.tolist(), labels.tolist()):
        assert perms[c] == compose(perms[a], perms[b])
    # a group table is a Latin square, and S_n (n >= 3) is not abelian
    table = labels.reshape(len(perms), len(perms))
    assert all(len(set(row)) == len(perms) for row in np.concatenate([table, table.T]))
    assert not np.array_equal(table, table.T)


def test_s3_task_split_and_metadata():
    task = build_task(PermutationGroupSpec(n=3, train_size=24))
    assert task.x_train.shape == (24, 2) and task.x_test.shape == (12, 2)
    assert task.n_classes == 6 and task.vocab_size == 6 and task.metadata["group_elements"].shape == (6, 3)
    train, test = task.metadata["train_index"], task.metadata["test_index"]
    assert sorted([*train, *test]) == list(range(36))
