"""Modular arithmetic a o b mod p (Power et al. 2022), the home of grokking (SPEC.md sec. 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from grokscope.tasks.base import TASKS, Task, TaskSpec, split_indices

# Each operation: (function of integer arrays a, b, p) and whether b = 0 is excluded.
OPERATIONS: dict[str, tuple[Callable[[np.ndarray, np.ndarray, int], np.ndarray], bool]] = {
    "add": (lambda a, b, p: (a + b) % p, False),
    "sub": (lambda a, b, p: (a - b) % p, False),
    "mul": (lambda a, b, p: (a * b) % p, False),
    "div": (lambda a, b, p: (a * np.array([pow(int(v), -1, p) for v in b])) % p, True),
    "square_sum": (lambda a, b, p: (a * a + b * b) % p, False),
    "quad": (lambda a, b, p: (a * a + a * b + b * b) % p, False),
    "cubic": (lambda a, b, p: (a * a * a + a * b) % p, False),
}


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % k for k in range(2, int(n**0.5) + 1))


class ModularArithmeticSpec(TaskSpec):
    """``c = a o b mod p`` over every pair (a, b), split at random into train and test."""

    name: Literal["modular_arithmetic"] = "modular_arithmetic"
    p: int = 97
    """The modulus; a prime (division needs inverses), at least 2."""
    operation: Literal["add", "sub", "mul", "div", "square_sum", "quad", "cubic"] = "add"
    """a+b, a-b, a*b, a/b (b != 0), a^2+b^2, a^2+ab+b^2, a^3+ab, all mod p."""
    train_fraction: float = Field(0.4, gt=0.0, lt=1.0)
    """Fraction of all pairs used for training; the rest is the test set."""
    split_seed: int = 0
    """Seed of the train/test split (independent of the training seed)."""
    encoding: Literal["onehot", "tokens"] = "onehot"
    """``onehot``: concatenated one-hots of a and b (2p floats, the O-info setup);
    ``tokens``: integer ids ``[a, b]`` (or ``[a, b, =]``) for embedding models."""
    equals_token: bool = False
    """With ``tokens``: append an ``=`` token (id p) so a transformer reads its answer there."""

    @field_validator("p")
    @classmethod
    def _prime(cls, p: int) -> int:
        if not is_prime(p):
            raise ValueError("must be a prime number >= 2")
        return p


def operand_table(spec: ModularArithmeticSpec) -> tuple[np.ndarray, np.ndarray]:
    """All operand pairs (N, 2) in row-major order and their results (N,)."""
    p = spec.p
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    a, b = a.ravel(), b.ravel()
    function, nonzero_b = OPERATIONS[spec.operation]
    if nonzero_b:
        keep = b != 0
        a, b = a[keep], b[keep]
    return np.stack([a, b], axis=1), function(a, b, p).astype(np.int64)


def encode(operands: np.ndarray, spec: ModularArithmeticSpec) -> torch.Tensor:
    """Model inputs for operand pairs, in the spec's encoding."""
    p = spec.p
    if spec.encoding == "onehot":
        x = np.zeros((len(operands), 2 * p), dtype=np.float32)
        rows = np.arange(len(operands))
        x[rows, operands[:, 0]] = 1.0
        x[rows, p + operands[:, 1]] = 1.0
        return torch.from_numpy(x)
    tokens = operands
    if spec.equals_token:
        tokens = np.concatenate([operands, np.full((len(operands), 1), p)], axis=1)
    return torch.from_numpy(tokens.astype(np.int64))


@TASKS.register(ModularArithmeticSpec)
def build_modular_arithmetic(spec: ModularArithmeticSpec) -> Task:
    operands, results = operand_table(spec)
    train, test = split_indices(len(operands), spec.train_fraction, spec.split_seed)
    return Task(
        x_train=encode(operands[train], spec),
        y_train=torch.from_numpy(results[train]),
        x_test=encode(operands[test], spec),
        y_test=torch.from_numpy(results[test]),
        kind="classification",
        n_classes=spec.p,
        vocab_size=spec.p + 1 if spec.equals_token else spec.p,
        metadata={
            "train_operands": operands[train],
            "test_operands": operands[test],
            "train_index": train,
            "test_index": test,
        },
    )
