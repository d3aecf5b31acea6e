"""Permutation groups S_n (Liu appendix H): the group table a o b as a dataset, elements as token
ids. Element ids follow the lexicographic order of the permutations (id 0 is the identity);
``(a o b)(k) = a(b(k))``: b is applied first."""

from __future__ import annotations

import itertools
import math
from typing import Literal

import numpy as np
from pydantic import Field

from grokscope.tasks.base import TASKS, PairTaskOptions, Task, pair_task


class PermutationGroupSpec(PairTaskOptions):
    """Every ordered pair (a, b) of S_n with label a o b: (n!)^2 samples over n! classes."""

    name: Literal["permutation_group"] = "permutation_group"
    n: int = Field(3, ge=2, le=5)
    """Degree of the group: S3 has 6 elements (36 samples); S5 has 120 (14,400 samples)."""
    train_fraction: float = Field(2 / 3, gt=0.0, lt=1.0)
    """Fraction of the table used for training (Liu: 24 of 36 for S3)."""


def permutations(n: int) -> np.ndarray:
    """The n! permutations of 0..n-1 in lexicographic order, (n!, n)."""
    return np.array(list(itertools.permutations(range(n))), dtype=np.int64)


def group_table(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Elements (n!, n), ordered pairs (N, 2) of element ids in row-major order, and the id of
    each composition a o b (N,)."""
    elements = permutations(n)
    index = {tuple(p): k for k, p in enumerate(elements.tolist())}
    size = math.factorial(n)
    a, b = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    operands = np.stack([a.ravel(), b.ravel()], axis=1)
    composed = elements[operands[:, 0][:, None], elements[operands[:, 1]]]  # a[b[k]]
    labels = np.array([index[tuple(row)] for row in composed.tolist()], dtype=np.int64)
    return elements, operands, labels


@TASKS.register(PermutationGroupSpec)
def build_permutation_group(spec: PermutationGroupSpec) -> Task:
    elements, operands, labels = group_table(spec.n)
    task = pair_task(operands, labels, n_tokens=len(elements), n_classes=len(elements), spec=spec)
    task.metadata["group_elements"] = elements
    return task
