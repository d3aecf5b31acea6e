"""RQI probe: representation quality of an embedding model on a pair task (Liu sec. 3.1).

Reads the embedding table through ``model.embeddings()`` ((p, d) vectors, or (p, k, k)
matrices for a non-abelian group) and the operand pairs of every sample from the task
metadata (``train_operands``, ``test_operands``; labels are the results ``a o b``), so it works
on any embedding model trained on a pair task (addition without modulo, S_n, modular arithmetic
with token inputs).

Columns: ``rqi/rqi`` (eq. 3), ``rqi/acc_hat`` (predicted accuracy on the whole dataset, app. D),
``rqi/acc`` (the model's accuracy on the whole dataset, to hold against acc_hat), and for
vector embeddings the ideal bounds of the training set, ``rqi/rqi_bar``, ``rqi/acc_bar`` and
``rqi/nullity`` (app. E; constant over a run). Arrays: the embeddings at each step.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from grokscope.errors import ConfigError
from grokscope.measures.rqi import (
    DEFAULT_DELTA,
    ideal_bounds,
    parallelograms,
    predicted_accuracy,
    present_parallelograms,
)
from grokscope.models.base import TracedModel
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective


class RQISpec(ProbeSpec):
    """``rqi/rqi``, ``rqi/acc_hat``, ``rqi/acc`` and the ideal bounds (Liu sec. 3.1, app. D, E)."""

    name: Literal["rqi"] = "rqi"
    delta: float = Field(DEFAULT_DELTA, gt=0)
    """Tolerance of a parallelogram: mean squared difference of the standardized embeddings
    (vectors; the paper's code uses 0.01) or relative squared difference of products (matrices)."""
    store_embeddings: bool = True
    """Write the embedding table to ``arrays/rqi/<step>.npz`` (trajectories, Liu fig. 4d)."""


def pair_dataset(task: Task) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Operands (N, 2), results (N,) and the training mask (N,) of a pair task, train first."""
    if "train_operands" not in task.metadata or "test_operands" not in task.metadata:
        raise ConfigError("probes: rqi needs a pair task whose metadata has train_operands and test_operands")
    operands = np.concatenate([task.metadata["train_operands"], task.metadata["test_operands"]])
    results = np.concatenate([task.y_train.cpu().numpy(), task.y_test.cpu().numpy()])
    train = np.arange(len(operands)) < len(task.metadata["train_operands"])
    return operands, results, train


@PROBES.register(RQISpec)
class RQIProbe(Probe):
    """Parallelograms of the current embeddings against those the dataset permits."""

    default_cadence = "every"
    cost = "cheap"

    def __init__(self, spec: RQISpec) -> None:
        super().__init__(spec)
        self.spec: RQISpec = spec
        self._bounds: dict[str, float] = {}

    def setup(self, model: TracedModel, task: Task, objective: Objective) -> None:
        if model.embeddings() is None:
            raise ConfigError(f"probes: rqi needs an embedding model; {type(model).__name__} has no embeddings()")
        self._bounds = self._ideal_bounds(model, task)

    def _ideal_bounds(self, model: TracedModel, task: Task) -> dict[str, float]:
        if model.embeddings().ndim != 2:  # matrix embeddings: the rank test is for linear equations
            return {}
        operands, results, train = pair_dataset(task)
        bounds = ideal_bounds(operands, results, train, p=int(model.embeddings().shape[0]))
        return {"rqi/rqi_bar": bounds.rqi, "rqi/acc_bar": bounds.accuracy, "rqi/nullity": float(bounds.nullity)}

    @torch.no_grad()
    def __call__(self, context: ProbeContext) -> ProbeOutput:
        embeddings = context.model.embeddings()
        if embeddings is None:
            raise ConfigError("probes: rqi needs an embedding model (model.embeddings() returned None)")
        E = embeddings.detach().double().cpu().numpy()
        operands, results, train = pair_dataset(context.task)
        all_pairs = parallelograms(results)
        present = present_parallelograms(E, operands, all_pairs, self.spec.delta)
        correct = [
            context.objective.correct(context.outputs(split), context.data(split)[1]) for split in ("train", "test")
        ]
        output: ProbeOutput = {
            "rqi/rqi": float(present.mean()) if len(all_pairs) else float("nan"),
            "rqi/acc_hat": predicted_accuracy(train, all_pairs[present]),
            "rqi/acc": float(torch.cat(correct).double().mean()),
        }
        if not self._bounds:  # resumed runs skip setup
            self._bounds = self._ideal_bounds(context.model, context.task)
        output.update(self._bounds)
        if self.spec.store_embeddings:
            output["embeddings"] = E
        return output
