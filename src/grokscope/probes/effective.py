"""Liu's class effective loss on a network's own representations (Liu appendix I, eq. 32).

``class_effective`` reads the output of a hidden layer (the last one by default: the
penultimate representation of neural collapse) on a split and reports
``effective/within_class`` (within-class share of the variance: ~0.9 for structureless
representations of 10 balanced classes, 0 at same-class collapse) and ``effective/loss`` =
``l_eff / N`` with ``l_eff = sum over same-class pairs |f_x - f_y|^2 / sum_x |f_x|^2``
(scale invariant; divided by the sample count N so that splits of different sizes compare).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from grokscope.errors import ConfigError
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec
from grokscope.theory.effective import class_effective_loss, within_class_fraction


class ClassEffectiveSpec(ProbeSpec):
    """``effective/within_class`` and ``effective/loss`` of a hidden representation."""

    name: Literal["class_effective"] = "class_effective"
    split: Literal["train", "test"] = "test"
    """Split whose representations are measured."""
    layer: int = Field(-2, lt=0)
    """Trace layer whose output is the representation (-2: the last hidden layer)."""


@PROBES.register(ClassEffectiveSpec)
class ClassEffective(Probe):
    """Class structure of a hidden representation under Liu's effective loss (appendix I)."""

    @torch.no_grad()
    def __call__(self, context: ProbeContext) -> ProbeOutput:
        if not context.objective.has_accuracy:
            raise ConfigError("probes: class_effective needs a classification task (class labels)")
        trace = context.trace(self.spec.split)
        if len(trace.layers) < -self.spec.layer:
            raise ConfigError(
                f"probes.class_effective.layer = {self.spec.layer}: the model has {len(trace.layers)} layers"
            )
        features = trace.layers[self.spec.layer].x.flatten(1).double().cpu().numpy()
        _, y = context.data(self.spec.split)
        labels = (y.argmax(dim=1) if y.ndim > 1 else y).cpu().numpy()
        loss, _, _ = class_effective_loss(features, labels)
        return {
            "effective/within_class": within_class_fraction(features, labels),
            "effective/loss": loss / len(features),
        }
