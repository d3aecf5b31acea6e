"""Neuron-mode probes of the Zhao framework (Zhao-A, Zhao-B; SPEC.md sec. 1).

``lmap``: L-map pruning accuracy for every start layer and LP (least-squares) pruning accuracy,
on train and test. Columns ``lmap/prune_acc/<split>/layer<l>`` (activations of layers l..L-1
replaced by the identity) and ``lmap/lp_acc/<split>/layer<l>`` (layers l..L replaced by a
least-squares map from x^(l-1), fitted on the training set); ``prune_acc/train`` over time is
Zhao-A's "entering meditation" (fig. 10).

``rpd``: the rank position distribution of every hidden layer, pooled and per class, with the
L-map supplying the signs (Zhao-B sec. II.C). Columns ``rpd/grad/layer<l>``; arrays
``layer<l>`` (bins,), ``layer<l>_per_class`` (K, bins), ``layer<l>_grad_per_class`` (K,).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from grokscope.measures.lmap import lmap_matrix, lmap_pruned_outputs, lp_pruning_accuracies
from grokscope.measures.rpd import rpd, rpd_gradient
from grokscope.models.base import TracedModel
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec
from grokscope.probes.chain import chain_layers, check_chain, model_inputs, require_class_outputs
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective


class LMapSpec(ProbeSpec):
    """L-map and LP pruning accuracy for every start layer (Zhao-A fig. 3a-b, Zhao-B fig. 3h)."""

    name: Literal["lmap"] = "lmap"
    splits: list[Literal["train", "test"]] = ["train", "test"]
    """Splits on which the pruned networks' accuracies are reported."""
    lp: bool = True
    """Also fit and report the least-squares (LP) pruning accuracies."""
    max_samples: int | None = Field(None, ge=2)
    """Use the first ``max_samples`` samples of each split (None: all); the LP is fitted on the
    training samples used."""


@PROBES.register(LMapSpec)
class LMapPruning(Probe):
    """Accuracy of the network with its tail replaced by its L-map or by a fitted LP."""

    default_cadence = "sparse"
    cost = "costly"

    def __init__(self, spec: LMapSpec) -> None:
        super().__init__(spec)
        self.spec: LMapSpec = spec

    def setup(self, model: TracedModel, task: Task, objective: Objective) -> None:
        require_class_outputs(task, objective, "lmap")
        check_chain(model, task, "lmap")

    def __call__(self, context: ProbeContext) -> ProbeOutput:
        limit = self.spec.max_samples
        layers = chain_layers(context.trace("train", limit), "lmap")
        predict = context.objective.predict
        data = {split: model_inputs(context, split, limit) for split in self.spec.splits}
        result: ProbeOutput = {}
        for split, (x, y) in data.items():
            for start, output in enumerate(lmap_pruned_outputs(layers, x), start=1):
                result[f"lmap/prune_acc/{split}/layer{start}"] = float((predict(output) == y).double().mean())
        if self.spec.lp:
            x_fit, _ = model_inputs(context, "train", limit)
            for split, accuracies in lp_pruning_accuracies(layers, x_fit, data, predict).items():
                for start, value in enumerate(accuracies, start=1):
                    result[f"lmap/lp_acc/{split}/layer{start}"] = value
        return result


class RPDSpec(ProbeSpec):
    """Rank position distribution of every hidden layer and its gradient (Zhao-B sec. II.C)."""

    name: Literal["rpd"] = "rpd"
    bins: int = Field(20, ge=2)
    """Histogram bins over the normalized rank position [0, 1]."""
    split: Literal["train", "test"] = "train"
    """Samples whose local fields are ranked (the papers use the training set)."""
    max_samples: int | None = Field(2000, ge=2)
    """Rank only the first ``max_samples`` samples of the split (None: all)."""


@PROBES.register(RPDSpec)
class RankPositionDistribution(Probe):
    """RPD of each hidden layer from its local fields and the signs of its L-map."""

    default_cadence = "sparse"
    cost = "costly"

    def __init__(self, spec: RPDSpec) -> None:
        super().__init__(spec)
        self.spec: RPDSpec = spec

    def setup(self, model: TracedModel, task: Task, objective: Objective) -> None:
        require_class_outputs(task, objective, "rpd")
        check_chain(model, task, "rpd")

    def __call__(self, context: ProbeContext) -> ProbeOutput:
        trace = context.trace(self.spec.split, self.spec.max_samples)
        layers = chain_layers(trace, "rpd")
        _, y = model_inputs(context, self.spec.split, self.spec.max_samples)
        n_classes = context.task.n_classes
        result: ProbeOutput = {}
        for index, record in enumerate(trace.hidden):
            pooled, per_class = rpd(record.h, lmap_matrix(layers, index), y, n_classes, self.spec.bins)
            name = f"layer{index + 1}"
            result[f"rpd/grad/{name}"] = float(rpd_gradient(pooled))
            result[name] = pooled.cpu().numpy()
            result[f"{name}_per_class"] = per_class.cpu().numpy()
            result[f"{name}_grad_per_class"] = rpd_gradient(per_class).cpu().numpy()
        return result
