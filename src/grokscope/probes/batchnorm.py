"""Batch-norm evaluation in running-statistics mode and in batch-statistics mode (Zhao-B sec.
V.A, eq. 3 with alpha = 1; SPEC.md sec. 1), so one run shows test accuracy under both.

Columns ``bn/runstat/<split>/acc|loss`` (eval mode: the running estimates, what ``test/acc``
also reports) and ``bn/batchstat/<split>/acc|loss`` (train mode for the batch-norm modules only:
each evaluated batch is normalized with its own mean and variance). With ``projections`` the
2D SVD projection of the last hidden layer in batch-statistics mode is stored too (arrays
``proj_<split>``, ``y_<split>``; Zhao-B fig. 6e-f).

Switching batch norm to train mode updates its running statistics; the probe restores them
itself and declares ``touches_weights`` so the trainer's snapshot restores them as well.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from grokscope.errors import ConfigError
from grokscope.measures.geometry import svd_projection
from grokscope.models.base import TracedModel
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec, eval_mode
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective


class BatchNormSpec(ProbeSpec):
    """Loss and accuracy with batch norm in running-statistics and in batch-statistics mode."""

    name: Literal["batchnorm"] = "batchnorm"
    splits: list[Literal["train", "test"]] = ["train", "test"]
    """Splits to evaluate."""
    batch_size: int | None = Field(None, ge=2)
    """Samples per batch in batch-statistics mode (None: the whole split is one batch); the split
    is cut into equal parts of at least this size."""
    projections: bool = False
    """Also store the 2D projection of the last hidden layer in batch-statistics mode."""
    max_samples: int | None = Field(1000, ge=1)
    """Samples per split stored in the projections."""


def batch_norm_modules(model: TracedModel, task: Task) -> list[nn.Module]:
    """The batch-norm modules of a model, found through a two-sample trace."""
    with torch.no_grad(), eval_mode(model):
        trace = model.trace(task.x_train[:2])
    return [record.batch_norm for record in trace.layers if record.batch_norm is not None]


@contextlib.contextmanager
def batch_statistics(norms: list[nn.Module]) -> Iterator[None]:
    """Batch norm normalizes with each batch's own statistics inside the block (alpha = 1 in
    Zhao-B eq. 3); running statistics and modes are restored afterwards."""
    saved = [({k: v.clone() for k, v in norm.named_buffers()}, norm.training) for norm in norms]
    try:
        for norm in norms:
            norm.train()
        yield
    finally:
        with torch.no_grad():
            for norm, (buffers, training) in zip(norms, saved):
                for key, value in norm.named_buffers():
                    value.copy_(buffers[key])
                norm.train(training)


@PROBES.register(BatchNormSpec)
class BatchNormModes(Probe):
    """Evaluation with running statistics and with the evaluated batch's statistics."""

    default_cadence = "every"
    cost = "cheap"
    touches_weights = True  # train-mode batch norm writes its running statistics

    def __init__(self, spec: BatchNormSpec) -> None:
        super().__init__(spec)
        self.spec: BatchNormSpec = spec

    def setup(self, model: TracedModel, task: Task, objective: Objective) -> None:
        if not batch_norm_modules(model, task):
            raise ConfigError("probes.batchnorm: the model has no batch norm; set model.batch_norm: true")

    @torch.no_grad()
    def __call__(self, context: ProbeContext) -> ProbeOutput:
        model, objective = context.model, context.objective
        norms = batch_norm_modules(model, context.task)
        result: ProbeOutput = {}
        for split in self.spec.splits:
            x, y = context.data(split)
            result.update(self._scores(f"bn/runstat/{split}", context.outputs(split), y, objective))
            with eval_mode(model), batch_statistics(norms):
                # batches of at least batch_size samples: a one-sample batch has no variance
                parts = max(1, len(x) // self.spec.batch_size) if self.spec.batch_size else 1
                output = torch.cat([model(chunk) for chunk in x.tensor_split(parts)])
                result.update(self._scores(f"bn/batchstat/{split}", output, y, objective))
                if self.spec.projections:
                    last = model.trace(x).layers[-1]  # statistics of the whole split
                    limit = self.spec.max_samples or len(x)
                    result[f"proj_{split}"] = svd_projection(last.weight, last.input[:limit]).cpu().numpy()
                    result[f"y_{split}"] = y[:limit].cpu().numpy()
        return result

    @staticmethod
    def _scores(prefix: str, output: torch.Tensor, y: torch.Tensor, objective: Objective) -> dict[str, float]:
        scores = {f"{prefix}/loss": float(objective.loss(output, y))}
        if objective.has_accuracy:
            scores[f"{prefix}/acc"] = float(objective.correct(output, y).double().mean())
        return scores
