"""The sharpness probe: top Hessian eigenvalue and Hessian trace of the training loss.

Metrics ``sharpness/top_eigenvalue`` (power iteration on Hessian-vector products; the eigenvalue
of largest magnitude) and ``sharpness/trace`` (Hutchinson, Rademacher vectors), of the mean
training loss without weight decay, in eval mode. To hold against the weight-space basin size
(Zhao-B) and the loss-geometry question of O-info sec. 9.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from grokscope.measures.sharpness import hutchinson_trace, top_hessian_eigenvalue
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec, eval_mode


class SharpnessSpec(ProbeSpec):
    """Curvature of the training loss at the current weights."""

    name: Literal["sharpness"] = "sharpness"
    samples: int | None = Field(None, ge=1)
    """Use only the first ``samples`` training samples; None: the whole training set."""
    iterations: int = Field(30, ge=1)
    """Most power-iteration steps for the top eigenvalue."""
    tolerance: float = Field(1e-3, gt=0)
    """Stop the power iteration when the estimate changes by less than this (relative)."""
    trace_samples: int = Field(10, ge=0)
    """Rademacher vectors of the Hutchinson trace estimate (0: no trace)."""


@PROBES.register(SharpnessSpec)
class Sharpness(Probe):
    """Top Hessian eigenvalue and Hutchinson trace (costly: tens of Hessian-vector products)."""

    default_cadence = "sparse"
    cost = "costly"

    def __init__(self, spec: SharpnessSpec) -> None:
        super().__init__(spec)
        self.spec: SharpnessSpec = spec

    def __call__(self, context: ProbeContext) -> ProbeOutput:
        model = context.model
        x, y = context.data("train")
        if self.spec.samples is not None:
            x, y = x[: self.spec.samples], y[: self.spec.samples]
        params = [p for p in model.parameters() if p.requires_grad]
        device = params[0].device

        def loss() -> torch.Tensor:
            return context.objective.loss(model(x), y)

        with eval_mode(model):
            result = {
                "sharpness/top_eigenvalue": top_hessian_eigenvalue(
                    loss,
                    params,
                    self.spec.iterations,
                    self.spec.tolerance,
                    generator=context.generator("sharpness/power", device),
                )
            }
            if self.spec.trace_samples:
                result["sharpness/trace"] = hutchinson_trace(
                    loss, params, self.spec.trace_samples, generator=context.generator("sharpness/trace", device)
                )
        return result
