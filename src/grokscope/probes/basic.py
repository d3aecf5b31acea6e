"""The basic probes: loss and accuracy on both splits, and weight norms."""

from __future__ import annotations

from typing import Literal

import torch
from torch.func import vmap

from grokscope.measures.norms import parameter_norms, stacked_parameter_norms
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec, StackedContext, StackMeasure


class LossAccuracySpec(ProbeSpec):
    """``train/loss``, ``train/acc``, ``test/loss``, ``test/acc`` (always recorded)."""

    name: Literal["loss_accuracy"] = "loss_accuracy"


@PROBES.register(LossAccuracySpec)
class LossAccuracy(Probe, StackMeasure):
    """Loss and accuracy of the model in eval mode on the whole train and test splits."""

    @torch.no_grad()
    def __call__(self, context: ProbeContext) -> ProbeOutput:
        result: ProbeOutput = {}
        for split in ("train", "test"):
            _, y = context.data(split)
            output = context.outputs(split)
            result[f"{split}/loss"] = float(context.objective.loss(output, y))
            if context.objective.has_accuracy:
                result[f"{split}/acc"] = float(context.objective.correct(output, y).double().mean())
        return result

    @torch.no_grad()
    def measure_stack(self, context: StackedContext) -> list[ProbeOutput]:
        columns: dict[str, list[float]] = {}
        for split in ("train", "test"):
            _, y = context.data(split)
            output = context.outputs[split]
            columns[f"{split}/loss"] = context.objective.losses(output, y, shared=True).tolist()
            if context.objective.has_accuracy:
                correct = vmap(context.objective.correct, in_dims=(0, None))(output, y)
                columns[f"{split}/acc"] = correct.double().mean(dim=1).tolist()
        return _rows(columns, len(next(iter(context.outputs.values()))))


class WeightNormSpec(ProbeSpec):
    """``norm/total`` and ``norm/<module>``: L2 norms of the parameters."""

    name: Literal["weight_norm"] = "weight_norm"


@PROBES.register(WeightNormSpec)
class WeightNorm(Probe, StackMeasure):
    """L2 norm of all parameters together and of each module's (Omnigrok's weight norm)."""

    @torch.no_grad()
    def __call__(self, context: ProbeContext) -> ProbeOutput:
        named = {name: p.detach() for name, p in context.model.named_parameters()}
        total, per_module = parameter_norms(named)
        return {"norm/total": total, **{f"norm/{k}": v for k, v in per_module.items()}}

    def measure_stack(self, context: StackedContext) -> list[ProbeOutput]:
        total, per_module = stacked_parameter_norms(context.parameters)
        columns = {"norm/total": total.tolist(), **{f"norm/{k}": v.tolist() for k, v in per_module.items()}}
        return _rows(columns, len(total))


def _rows(columns: dict[str, list[float]], models: int) -> list[ProbeOutput]:
    """Columns of per-model values -> one output per model."""
    return [{key: values[i] for key, values in columns.items()} for i in range(models)]
