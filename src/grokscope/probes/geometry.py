"""The class-geometry probe (Zhao-A fig. 3e-f, Zhao-B sec. V.A; SPEC.md sec. 1).

Columns ``geometry/cos_centre/layer<l>`` (mean cosine of the training samples' layer-l outputs
to their class centre) and ``geometry/cos_between/layer<l>`` (mean cosine between class
centres). Arrays ``layer<l>_cos_per_class`` (K,), and the 2D projection of the last hidden layer
on the leading right singular vectors of the output weight: ``proj_train`` / ``proj_test``
(P, 2) with labels ``y_train`` / ``y_test`` (eval mode: running statistics for batch norm).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from grokscope.measures.geometry import between_centre_cosine, centre_cosines, class_centres, svd_projection
from grokscope.models.base import TracedModel
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec
from grokscope.probes.chain import require_class_outputs
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective


class GeometrySpec(ProbeSpec):
    """Cosines to class centres per hidden layer and the 2D projections of train and test."""

    name: Literal["geometry"] = "geometry"
    max_samples: int | None = Field(1000, ge=2)
    """Samples per split (the first ones) used for cosines and projections."""
    projections: bool = True
    """Store the 2D projections of train and test at each step."""


@PROBES.register(GeometrySpec)
class ClassGeometry(Probe):
    default_cadence = "sparse"
    cost = "cheap"

    def __init__(self, spec: GeometrySpec) -> None:
        super().__init__(spec)
        self.spec: GeometrySpec = spec

    def setup(self, model: TracedModel, task: Task, objective: Objective) -> None:
        require_class_outputs(task, objective, "geometry")

    @torch.no_grad()
    def __call__(self, context: ProbeContext) -> ProbeOutput:
        n_classes = context.task.n_classes
        result: ProbeOutput = {}
        trace = context.trace("train", self.spec.max_samples)
        y = context.data("train")[1][: len(trace.output)]
        for index, record in enumerate(trace.hidden, start=1):
            x = record.x.flatten(1)
            cosines = centre_cosines(x, y, n_classes)
            per_class = torch.zeros(n_classes, dtype=cosines.dtype, device=cosines.device)
            per_class.index_add_(0, y, cosines)
            per_class /= torch.bincount(y, minlength=n_classes)
            result[f"geometry/cos_centre/layer{index}"] = float(cosines.mean())
            result[f"geometry/cos_between/layer{index}"] = between_centre_cosine(class_centres(x, y, n_classes))
            result[f"layer{index}_cos_per_class"] = per_class.cpu().numpy()
        if self.spec.projections:
            for split in ("train", "test"):
                split_trace = context.trace(split, self.spec.max_samples)
                last = split_trace.layers[-1]
                result[f"proj_{split}"] = svd_projection(last.weight, last.input.flatten(1)).cpu().numpy()
                result[f"y_{split}"] = context.data(split)[1][: len(split_trace.output)].cpu().numpy()
        return result
