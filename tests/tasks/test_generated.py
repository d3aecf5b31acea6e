"""Teacher-student regression and multitask sparse parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grokscope.tasks import build_task
from grokscope.tasks.parity import SparseParitySpec, task_frequencies
from grokscope.tasks.regression import TeacherStudentSpec


def test_teacher_student_targets_are_the_teacher_of_the_inputs():
    task = build_task(TeacherStudentSpec(input_dim=4, scales=[2.0, -1.0, 0.5], n_train=50, n_test=30))
    assert task.kind == "regression" and task.x_train.shape == (50, 4) and task.y_test.shape == (30, 1)
    x = task.x_test.double()
    assert torch.allclose(task.y_test.double()[:, 0], 2 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2], atol=1e-5)
    again = build_task(TeacherStudentSpec(input_dim=4, scales=[2.0, -1.0, 0.5], n_train=50, n_test=30))
    assert torch.equal(task.x_train, again.x_train)
    assert not torch.equal(
        task.x_train, build_task(TeacherStudentSpec(input_dim=4, scales=[1.0], data_seed=1)).x_train[:50]
    )


def test_teacher_matrix_has_the_given_singular_values_and_whitening_is_exact():
    task = build_task(
        TeacherStudentSpec(input_dim=6, output_dim=4, scales=[3.0, 1.0], rotate=True, whiten=True, n_train=40)
    )
    teacher = task.metadata["teacher"]
    assert np.allclose(np.linalg.svd(teacher, compute_uv=False), [3.0, 1.0, 0.0, 0.0], atol=1e-9)
    x = task.x_train.double()
    assert torch.allclose(x.T @ x / 40, torch.eye(6, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(task.y_train.double(), x @ torch.from_numpy(teacher).T, atol=1e-4)
    with pytest.raises(ValueError, match="modes"):
        TeacherStudentSpec(input_dim=3, scales=[1.0, 1.0, 1.0, 1.0])


def test_parity_labels_recomputed_independently():
    spec = SparseParitySpec(n_tasks=5, n_bits=12, k=3, n_train=400, n_test=100)
    task = build_task(spec)
    subsets = task.metadata["subsets"]
    assert subsets.shape == (5, 3) and all(len(set(s)) == 3 for s in subsets.tolist())
    for x, y in zip(task.x_train.numpy(), task.y_train.numpy()):
        control, bits = x[:5], x[5:]
        assert control.sum() == 1
        t = int(control.argmax())
        assert y == int(sum(bits[i] for i in subsets[t])) % 2
    assert task.x_train.shape == (400, 17) and task.n_classes == 2


def test_parity_task_frequencies_follow_the_power_law():
    spec = SparseParitySpec(n_tasks=4, exponent=1.0, n_train=40000, n_test=400)
    task = build_task(spec)
    law = task_frequencies(4, 1.0)
    assert np.allclose(law, np.array([1, 1 / 2, 1 / 3, 1 / 4]) / (1 + 1 / 2 + 1 / 3 + 1 / 4))
    counts = np.bincount(task.metadata["train_task"], minlength=4) / 40000
    assert np.abs(counts - law).max() < 0.01
    assert np.bincount(task.metadata["test_task"], minlength=4).min() > 70  # uniform test tasks


def test_parity_skill_features_and_signed_targets():
    task = build_task(SparseParitySpec(n_tasks=3, n_bits=6, k=2, n_train=50, encoding="skills", targets="signed"))
    x, y = task.x_train, task.y_train
    assert task.kind == "regression" and x.shape == (50, 3) and y.shape == (50, 1)
    # one nonzero skill per sample, equal to the signed parity
    assert torch.equal((x != 0).sum(1), torch.ones(50, dtype=torch.long))
    assert torch.equal(x.sum(1), y[:, 0])
    assert torch.equal(x[torch.arange(50), torch.from_numpy(task.metadata["train_task"])], y[:, 0])
