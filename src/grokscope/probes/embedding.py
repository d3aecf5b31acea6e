"""The embedding-geometry probe (Liu sec. 4.2, fig. 7 and appendix K) for models with an
embedding table (``model.embeddings()``).

Metrics: ``embedding/entropy`` (nats) and ``embedding/effective_dim`` = exp(entropy) of the PCA
explained-variance ratios, ``embedding/pc1_ratio`` and ``embedding/pc2_ratio``,
``embedding/initial_top2`` (fraction of the initial table's variance that lies in the current
first two principal axes: Liu's "structure already present at initialization"), and with
``components`` set, ``embedding/{train,test}_acc_pc<n>`` (accuracy with the table projected onto
its first n principal axes and back, Liu fig. 22 dotted lines). Arrays: ``table`` (the flattened
embeddings, for projections onto a later PCA) and ``explained_variance_ratio``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from grokscope.errors import ConfigError
from grokscope.measures.embedding import (
    effective_dimension,
    explained_variance_entropy,
    flat,
    pca,
    reconstruct,
)
from grokscope.models.base import TracedModel
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec, eval_mode
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective


class EmbeddingSpec(ProbeSpec):
    """PCA geometry of the embedding table."""

    name: Literal["embedding"] = "embedding"
    components: list[int] = Field(default_factory=list)
    """Numbers n of principal axes to evaluate the network with (accuracy with the table
    projected onto them); empty: none (then the probe never touches the weights)."""
    store_table: bool = True
    """Store the table at each step as an array (for projections onto the final PCA)."""


def embedding_table(model: TracedModel) -> torch.Tensor:
    table = model.embeddings()
    if table is None:
        raise ConfigError(
            f"probes.embedding: model {type(model).__name__} has no embedding table; use an embedding model"
        )
    return table


@PROBES.register(EmbeddingSpec)
class Embedding(Probe):
    """Effective dimension of the embeddings; accuracy with PCA-truncated embeddings."""

    default_cadence = "every"
    touches_weights = True  # the truncated-table accuracies write into the table (restored)

    def __init__(self, spec: EmbeddingSpec) -> None:
        super().__init__(spec)
        self.spec: EmbeddingSpec = spec
        self.initial: torch.Tensor | None = None

    def setup(self, model: TracedModel, task: Task, objective: Objective) -> None:
        self.initial = flat(embedding_table(model)).clone()

    def state_dict(self) -> dict[str, Any]:
        return {"initial": self.initial}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.initial = state.get("initial")

    def __call__(self, context: ProbeContext) -> ProbeOutput:
        table = embedding_table(context.model)
        basis = pca(table)
        ratios = basis.explained_variance_ratio
        entropy = explained_variance_entropy(ratios)
        result: ProbeOutput = {
            "embedding/entropy": entropy,
            "embedding/effective_dim": effective_dimension(table),
            "embedding/pc1_ratio": float(ratios[0]) if len(ratios) > 0 else float("nan"),
            "embedding/pc2_ratio": float(ratios[1]) if len(ratios) > 1 else float("nan"),
            "explained_variance_ratio": ratios.cpu().numpy(),
        }
        if self.initial is not None:
            initial = self.initial.to(basis.mean.device)
            centred = initial - initial.mean(dim=0)
            inside = centred @ basis.axes[:2].T  # (n_tokens, 2)
            result["embedding/initial_top2"] = float(inside.pow(2).sum() / centred.pow(2).sum())
        if self.spec.store_table:
            result["table"] = flat(table).float().cpu().numpy()
        original = table.detach().clone()
        for n in self.spec.components:
            truncated = reconstruct(original, basis, n)
            with torch.no_grad():
                table.copy_(truncated)
            for split in ("train", "test"):
                result[f"embedding/{split}_acc_pc{n}"] = self._accuracy(context, split)
        return result

    @torch.no_grad()
    def _accuracy(self, context: ProbeContext, split: str) -> float:
        x, y = context.data(split)  # type: ignore[arg-type]
        with eval_mode(context.model):
            correct = torch.cat(
                [
                    context.objective.correct(context.model(chunk), target)
                    for chunk, target in zip(x.split(context.eval_batch_size), y.split(context.eval_batch_size))
                ]
            )
        return float(correct.double().mean())
