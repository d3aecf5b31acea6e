"""Addition without modulo (Liu sec. 3): the toy task of the effective theory of representation
learning. Samples are the unordered pairs i <= j of 0..p-1 (p(p+1)/2 of them); the answer
i + j is one of 2p - 1 classes, predicted directly or as the nearest of fixed random vectors."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from grokscope.tasks.base import TASKS, PairTaskOptions, Task, pair_task


class AdditionSpec(PairTaskOptions):
    """``(i, j) -> i + j`` over unordered pairs i <= j < p, in row-major order of (i, j).

    >>> from grokscope.tasks import build_task
    >>> task = build_task(AdditionSpec(p=10, train_size=45))
    >>> task.x_train.shape, task.n_classes, task.target_vectors.shape
    (torch.Size([45, 2]), 19, torch.Size([19, 30]))
    """

    name: Literal["addition"] = "addition"
    p: int = Field(10, ge=2)
    """Numbers 0..p-1 (Liu: p = 10, 55 pairs)."""


def addition_table(p: int) -> tuple[np.ndarray, np.ndarray]:
    """All unordered pairs (N, 2) with i <= j, row-major, and their sums (N,)."""
    i, j = np.triu_indices(p)
    operands = np.stack([i, j], axis=1)
    return operands, operands.sum(axis=1)


@TASKS.register(AdditionSpec)
def build_addition(spec: AdditionSpec) -> Task:
    operands, sums = addition_table(spec.p)
    return pair_task(operands, sums, n_tokens=spec.p, n_classes=2 * spec.p - 1, spec=spec)
