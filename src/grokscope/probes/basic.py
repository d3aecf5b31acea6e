"""The basic probes: loss and accuracy on both splits, and weight norms."""

from __future__ import annotations

from typing import Literal

import torch

from grokscope.measures.norms import parameter_norms
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec


class LossAccuracySpec(ProbeSpec):
    """``train/loss``, ``train/acc``, ``test/loss``, ``test/acc`` (always recorded)."""

    name: Literal["loss_accuracy"] = "loss_accuracy"


@PROBES.register(LossAccuracySpec)
class LossAccuracy(Probe):
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


class WeightNormSpec(ProbeSpec):
    """``norm/total`` and ``norm/<module>``: L2 norms of the parameters."""

    name: Literal["weight_norm"] = "weight_norm"


@PROBES.register(WeightNormSpec)
class WeightNorm(Probe):
    """L2 norm of all parameters together and of each module's (Omnigrok's weight norm)."""

    @torch.no_grad()
    def __call__(self, context: ProbeContext) -> ProbeOutput:
        named = {name: p.detach() for name, p in context.model.named_parameters()}
        total, per_module = parameter_norms(named)
        return {"norm/total": total, **{f"norm/{k}": v for k, v in per_module.items()}}
