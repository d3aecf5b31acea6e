"""The neural-collapse probe: NC1..NC4 of the last hidden layer (Papyan et al. 2020; Layerwise
sec. 3). Metrics ``collapse/nc1``, ``collapse/nc2``, ``collapse/equinorm``, ``collapse/nc3``,
``collapse/nc4`` (all 0 at ideal collapse)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from grokscope.errors import ConfigError
from grokscope.measures.collapse import neural_collapse
from grokscope.models.base import TracedModel
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective


class CollapseSpec(ProbeSpec):
    """NC1..NC4 of the features the output layer reads, over a split."""

    name: Literal["collapse"] = "collapse"
    split: Literal["train", "test"] = "train"
    """Samples to measure on (Papyan et al. measure the training set)."""
    samples: int | None = Field(None, ge=2)
    """Use only the first ``samples`` samples of the split; None: all."""


@PROBES.register(CollapseSpec)
class Collapse(Probe):
    """Neural collapse of the last hidden representation; NC3 uses the output layer's weight
    when it maps that representation to one logit per class."""

    default_cadence = "sparse"
    cost = "costly"

    def __init__(self, spec: CollapseSpec) -> None:
        super().__init__(spec)
        self.spec: CollapseSpec = spec

    def setup(self, model: TracedModel, task: Task, objective: Objective) -> None:
        if task.kind != "classification" or task.n_classes is None:
            raise ConfigError("probes.collapse: needs a classification task (class labels); this task is regression")

    def __call__(self, context: ProbeContext) -> ProbeOutput:
        trace = context.trace(self.spec.split, self.spec.samples)
        _, labels = context.data(self.spec.split)
        labels = labels[: len(trace.output)]
        output_layer = trace.layers[-1]
        result = neural_collapse(
            output_layer.input.flatten(1),
            labels,
            weight=output_layer.weight,
            predictions=context.objective.predict(trace.output),
            n_classes=context.task.n_classes,
        )
        return {f"collapse/{key}": value for key, value in result.as_dict().items()}
