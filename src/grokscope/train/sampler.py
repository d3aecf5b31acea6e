"""Minibatch order: shuffled epochs from a generator of its own, so the order is part of the
run's seed and survives a resume."""

from __future__ import annotations

from typing import Any

import torch


class EpochSampler:
    """Indices of successive minibatches: each epoch a fresh permutation, cut into batches of
    ``batch_size``; a last partial batch is dropped so every step sees the same batch size.
    ``batch_size=None`` (or >= n) means full batch: every step uses all samples."""

    def __init__(self, n: int, batch_size: int | None, seed: int) -> None:
        self.n = n
        self.batch_size = batch_size if batch_size is not None and batch_size < n else None
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.long)
        self.position = 0

    @property
    def full_batch(self) -> bool:
        return self.batch_size is None

    def next(self) -> torch.Tensor | None:
        """Indices of the next batch (None in full-batch mode: use everything)."""
        if self.batch_size is None:
            return None
        if self.position + self.batch_size > len(self.order):
            self.order = torch.randperm(self.n, generator=self.generator)
            self.position = 0
        batch = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": self.order, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.order = state["order"].cpu()
        self.position = int(state["position"])
