"""Multitask sparse parity (Michaud et al. 2023; Layerwise sec. 3, emergence): n_tasks control
bits select a task, each task is the parity of its own k of the n data bits, and tasks occur
with power-law frequencies, so skills are learned one by one, most frequent first."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from grokscope.tasks.base import TASKS, Task, TaskSpec


class SparseParitySpec(TaskSpec):
    """Input: one-hot control bits (n_tasks) then data bits (n_bits), as 0/1 floats. Label: the
    parity (sum mod 2) of the task's k data bits. P(task t) is proportional to (t + 1)^-exponent.

    ``encoding: skills`` replaces the inputs by the prebuilt skill functions of Nam et al. 2024
    (Layerwise eq. 11): g_t(x) = [task = t] (-1)^parity_t(x), one feature per task.
    """

    name: Literal["sparse_parity"] = "sparse_parity"
    n_tasks: int = Field(10, ge=1)
    """Number of tasks (control bits)."""
    n_bits: int = Field(20, ge=1)
    """Number of data bits."""
    k: int = Field(3, ge=1)
    """Bits per parity (each task draws its own k-subset)."""
    exponent: float = Field(1.4, ge=0)
    """Task frequencies ~ (t + 1)^-exponent (Michaud et al.: alpha + 1 = 1.4)."""
    n_train: int = Field(10000, ge=1)
    """Training samples, drawn from the power law."""
    n_test: int = Field(2000, ge=1)
    """Test samples."""
    test_tasks: Literal["uniform", "power_law"] = "uniform"
    """``uniform``: the test set has equal counts per task, so every skill is measured."""
    encoding: Literal["bits", "skills"] = "bits"
    """``bits``: control and data bits; ``skills``: the n_tasks skill functions."""
    targets: Literal["classes", "signed"] = "classes"
    """``classes``: parity as class 0/1; ``signed``: regression on (-1)^parity (N, 1)."""
    data_seed: int = 0
    """Seed of the task subsets and of the samples."""

    @model_validator(mode="after")
    def _check(self) -> SparseParitySpec:
        if self.k > self.n_bits:
            raise ValueError(f"k = {self.k} exceeds n_bits = {self.n_bits}")
        return self


def task_frequencies(n_tasks: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, n_tasks + 1, dtype=np.float64) ** -exponent
    return weights / weights.sum()


def sample(spec: SparseParitySpec, n: int, tasks_law: np.ndarray, subsets: np.ndarray, rng: np.random.Generator):
    """Task ids (n,), data bits (n, n_bits) and parities (n,) of n samples."""
    tasks = rng.choice(spec.n_tasks, size=n, p=tasks_law)
    bits = rng.integers(0, 2, size=(n, spec.n_bits))
    parity = bits[np.arange(n)[:, None], subsets[tasks]].sum(axis=1) % 2
    return tasks, bits, parity


def encode(spec: SparseParitySpec, tasks: np.ndarray, bits: np.ndarray, parity: np.ndarray) -> torch.Tensor:
    n = len(tasks)
    if spec.encoding == "skills":
        x = np.zeros((n, spec.n_tasks))
        x[np.arange(n), tasks] = 1.0 - 2.0 * parity
    else:
        control = np.zeros((n, spec.n_tasks))
        control[np.arange(n), tasks] = 1.0
        x = np.concatenate([control, bits], axis=1)
    return torch.from_numpy(x.astype(np.float32))


@TASKS.register(SparseParitySpec)
def build_sparse_parity(spec: SparseParitySpec) -> Task:
    rng = np.random.default_rng(spec.data_seed)
    subsets = np.stack([np.sort(rng.choice(spec.n_bits, spec.k, replace=False)) for _ in range(spec.n_tasks)])
    law = task_frequencies(spec.n_tasks, spec.exponent)
    test_law = law if spec.test_tasks == "power_law" else np.full(spec.n_tasks, 1.0 / spec.n_tasks)
    train = sample(spec, spec.n_train, law, subsets, rng)
    test = sample(spec, spec.n_test, test_law, subsets, rng)

    def labels(parity: np.ndarray) -> torch.Tensor:
        if spec.targets == "signed":
            return torch.from_numpy((1.0 - 2.0 * parity).astype(np.float32)[:, None])
        return torch.from_numpy(parity.astype(np.int64))

    return Task(
        x_train=encode(spec, *train),
        y_train=labels(train[2]),
        x_test=encode(spec, *test),
        y_test=labels(test[2]),
        kind="classification" if spec.targets == "classes" else "regression",
        n_classes=2 if spec.targets == "classes" else None,
        metadata={
            "train_task": train[0],
            "test_task": test[0],
            "train_bits": train[1],
            "test_bits": test[1],
            "subsets": subsets,
            "task_frequencies": law,
        },
    )
