"""Teacher-student Gaussian regression (Layerwise sec. 4): x ~ N(0, I_d), y = sum_i S_i x_i.

The layerwise linear models of the position paper are solved on this task: each input
direction i is a "mode" of strength S_i that a linear, diagonal or deep linear network learns
on its own time scale. With ``output_dim > 1`` the teacher is a matrix ``T = U diag(S) V^T``
(identity frames unless ``rotate``), whose singular modes a deep linear network learns one by
one (Saxe et al. 2014).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from grokscope.tasks.base import TASKS, Task, TaskSpec


class TeacherStudentSpec(TaskSpec):
    """Gaussian inputs, targets from a fixed linear teacher of given scales, optional noise.

    For online ("resampled") training, set ``n_train`` to steps x batch size with a minibatch:
    no sample is then seen twice.
    """

    name: Literal["teacher_student"] = "teacher_student"
    input_dim: int = Field(5, ge=1)
    """d, the input dimension."""
    output_dim: int = Field(1, ge=1)
    """1: y = sum_i S_i x_i; more: y = T x with T = U diag(S) V^T."""
    scales: list[float] = [5.0, 4.0, 3.0, 2.0, 1.0]
    """S: the target scale of each mode (input directions beyond the list get 0)."""
    rotate: bool = False
    """With output_dim > 1: random orthonormal frames U, V instead of the identity."""
    n_train: int = Field(1000, ge=1)
    """Training samples (a finite set, reused every epoch)."""
    n_test: int = Field(1000, ge=1)
    """Test samples, fresh from the same distribution."""
    whiten: bool = False
    """Make the training inputs' second moment X^T X / n exactly I (needs n_train >= d), so that
    full-batch gradient descent follows the population gradient flow of SPEC.md sec. 4."""
    noise_std: float = Field(0.0, ge=0)
    """Standard deviation of Gaussian noise added to the training targets."""
    data_seed: int = 0
    """Seed of the inputs, noise and teacher frames."""

    @model_validator(mode="after")
    def _check(self) -> TeacherStudentSpec:
        modes = self.input_dim if self.output_dim == 1 else min(self.input_dim, self.output_dim)
        if len(self.scales) > modes:
            raise ValueError(f"scales has {len(self.scales)} entries; the teacher has {modes} modes")
        if self.whiten and self.n_train < self.input_dim:
            raise ValueError(f"whiten needs n_train >= input_dim ({self.input_dim}), got {self.n_train}")
        return self


def teacher_matrix(spec: TeacherStudentSpec, rng: np.random.Generator) -> np.ndarray:
    """T (output_dim, input_dim) with y = T x."""
    d, k = spec.input_dim, spec.output_dim
    scales = np.zeros(d if k == 1 else min(d, k))
    scales[: len(spec.scales)] = spec.scales
    if k == 1:
        return scales[None, :]
    if not spec.rotate:
        teacher = np.zeros((k, d))
        teacher[np.arange(len(scales)), np.arange(len(scales))] = scales
        return teacher
    u, _ = np.linalg.qr(rng.standard_normal((k, len(scales))))
    v, _ = np.linalg.qr(rng.standard_normal((d, len(scales))))
    return u @ np.diag(scales) @ v.T


def whitened(x: np.ndarray) -> np.ndarray:
    """x (n, d) times (x^T x / n)^(-1/2): its second moment becomes exactly the identity."""
    moment = x.T @ x / len(x)
    values, vectors = np.linalg.eigh(moment)
    return x @ vectors @ np.diag(values**-0.5) @ vectors.T


@TASKS.register(TeacherStudentSpec)
def build_teacher_student(spec: TeacherStudentSpec) -> Task:
    rng = np.random.default_rng(spec.data_seed)
    teacher = teacher_matrix(spec, rng)
    x_train = rng.standard_normal((spec.n_train, spec.input_dim))
    if spec.whiten:
        x_train = whitened(x_train)
    x_test = rng.standard_normal((spec.n_test, spec.input_dim))
    y_train = x_train @ teacher.T + spec.noise_std * rng.standard_normal((spec.n_train, spec.output_dim))
    y_test = x_test @ teacher.T

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.float32))

    return Task(
        x_train=tensor(x_train),
        y_train=tensor(y_train),
        x_test=tensor(x_test),
        y_test=tensor(y_test),
        kind="regression",
        metadata={"teacher": teacher},
    )
