"""What every task hands the trainer: tensors, their meaning, and the metadata probes read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from grokscope.registry import Registry
from grokscope.spec import Spec


class TaskSpec(Spec):
    """Base of every task spec; ``name`` selects the registered task."""

    name: str


TASKS: Registry = Registry("task")


@dataclass
class Task:
    """A dataset split into train and test, ready for the trainer.

    ``x_*`` are model inputs (float features or integer token ids). For classification
    ``y_*`` are class ids (long); for regression they are float targets (N, out_dim).
    ``target_vectors`` (n_classes, dim), when set, turns a classification task into regression
    on fixed vectors with nearest-target prediction (Liu sec. 3). ``metadata`` holds arrays
    aligned with the samples (e.g. ``train_operands`` of shape (N, 2)).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    kind: Literal["classification", "regression"]
    n_classes: int | None = None
    vocab_size: int | None = None
    target_vectors: torch.Tensor | None = None
    metadata: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def input_dim(self) -> int:
        """Width of one flattened input (sequence length for token inputs)."""
        return int(np.prod(self.x_train.shape[1:]))

    @property
    def output_dim(self) -> int:
        """Number of outputs a model needs for this task."""
        if self.target_vectors is not None:
            return int(self.target_vectors.shape[1])
        if self.kind == "classification":
            assert self.n_classes is not None
            return self.n_classes
        return int(self.y_train.shape[1])

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Task:
        """The same task with its tensors on ``device``; float tensors cast to ``dtype``."""

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None:
                return None
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            return t.to(device)

        return Task(
            x_train=move(self.x_train),
            y_train=move(self.y_train),
            x_test=move(self.x_test),
            y_test=move(self.y_test),
            kind=self.kind,
            n_classes=self.n_classes,
            vocab_size=self.vocab_size,
            target_vectors=move(self.target_vectors),
            metadata=self.metadata,
        )


def build_task(spec: TaskSpec) -> Task:
    """Generate the task a spec describes (deterministic in the spec)."""
    return TASKS.builder(spec.name)(spec)


def split_indices(n: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint train/test index arrays: a seeded permutation cut at round(n * fraction).

    Both parts get at least one sample so that train and test metrics always exist.
    """
    n_train = round(n * train_fraction)
    n_train = min(max(n_train, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:n_train]), np.sort(order[n_train:])
