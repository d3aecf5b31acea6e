"""What every task hands the trainer: tensors, their meaning, and the metadata probes read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from grokscope.errors import ConfigError
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


class PairTaskOptions(TaskSpec):
    """Options shared by the tasks on pairs of group elements (addition, permutation groups):
    the split, the input encoding and what the outputs regress on."""

    train_fraction: float = Field(0.8, gt=0.0, lt=1.0)
    """Fraction of all samples used for training (ignored when ``train_size`` is set)."""
    train_size: int | None = Field(None, ge=1)
    """Number of training samples (Liu: 45 of the 55 pairs for p = 10, 24 of 36 for S3)."""
    split_seed: int = 0
    """Seed of the train/test split (independent of the training seed)."""
    encoding: Literal["tokens", "onehot"] = "tokens"
    """``tokens``: integer ids ``[a, b]`` for embedding models; ``onehot``: concatenated one-hots."""
    targets: Literal["vectors", "classes"] = "vectors"
    """``vectors``: regression on a fixed random vector per class with nearest-vector
    prediction (Liu sec. 3, needs ``training.loss: mse``); ``classes``: class ids."""
    target_dim: int = Field(30, ge=1)
    """Dimension of the target vectors (Liu's code: 30)."""
    target_std: float = Field(1.0, gt=0)
    """Standard deviation of the target vectors' entries (Liu's ``label_scale``)."""
    target_seed: int = 0
    """Seed of the target vectors."""

    def split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Train and test indices of ``n`` samples, by ``train_size`` or ``train_fraction``."""
        if self.train_size is not None and not 1 <= self.train_size < n:
            raise ConfigError(f"task.train_size = {self.train_size}: must be between 1 and {n - 1} ({n} samples)")
        fraction = self.train_fraction if self.train_size is None else self.train_size / n
        return split_indices(n, fraction, self.split_seed)

    def target_vectors(self, n_classes: int) -> torch.Tensor | None:
        """(n_classes, target_dim) Gaussian vectors of std ``target_std``; None for ``classes``."""
        if self.targets == "classes":
            return None
        rng = np.random.default_rng(self.target_seed)
        return torch.from_numpy(
            (rng.standard_normal((n_classes, self.target_dim)) * self.target_std).astype(np.float32)
        )


def encode_pairs(operands: np.ndarray, n_tokens: int, encoding: str) -> torch.Tensor:
    """Token ids (N, 2) as they are, or concatenated one-hots (N, 2 * n_tokens)."""
    if encoding == "tokens":
        return torch.from_numpy(operands.astype(np.int64))
    x = np.zeros((len(operands), 2 * n_tokens), dtype=np.float32)
    rows = np.arange(len(operands))
    x[rows, operands[:, 0]] = 1.0
    x[rows, n_tokens + operands[:, 1]] = 1.0
    return torch.from_numpy(x)


def pair_task(operands: np.ndarray, labels: np.ndarray, n_tokens: int, n_classes: int, spec: PairTaskOptions) -> Task:
    """A Task over operand pairs (N, 2) with class labels (N,), split and encoded per ``spec``.
    ``metadata`` keeps each sample's operand pair (``train_operands``, ``test_operands``) and its
    index in the full table (``train_index``, ``test_index``)."""
    train, test = spec.split(len(operands))
    return Task(
        x_train=encode_pairs(operands[train], n_tokens, spec.encoding),
        y_train=torch.from_numpy(labels[train].astype(np.int64)),
        x_test=encode_pairs(operands[test], n_tokens, spec.encoding),
        y_test=torch.from_numpy(labels[test].astype(np.int64)),
        kind="classification",
        n_classes=n_classes,
        vocab_size=n_tokens,
        target_vectors=spec.target_vectors(n_classes),
        metadata={
            "train_operands": operands[train],
            "test_operands": operands[test],
            "train_index": train,
            "test_index": test,
        },
    )
