"""The attraction-basin probe (Zhao-B sec. II.D; SPEC.md sec. 1): accuracy of correctly
classified training samples under Gaussian noise on the inputs (sample space) and on the
weights (weight space), against log-spaced amplitudes.

Columns ``basins/<space>/size50`` and ``basins/<space>/size_half`` (``space`` = ``sample`` or
``weight``) and ``basins/n_correct``; arrays ``amplitudes`` (A,), ``<space>_mean`` (A,),
``<space>_per_class`` (K, A), ``<space>_per_sample`` (A, P) with ``sample_index`` (P,), the
training-set indices of the samples measured.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from grokscope.measures.basins import (
    basin_sizes,
    class_curves,
    log_amplitudes,
    sample_space_curves,
    weight_space_curves,
)
from grokscope.models.base import TracedModel
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec
from grokscope.probes.chain import chain_layers, check_chain, model_inputs, require_class_outputs
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective


class BasinsSpec(ProbeSpec):
    """Sample- and weight-space attraction basins of the training samples."""

    name: Literal["basins"] = "basins"
    spaces: list[Literal["sample", "weight"]] = ["sample", "weight"]
    """Which basins to measure."""
    amplitude_min: float = Field(1e-4, gt=0)
    """Smallest noise amplitude (standard deviation in the [0, 1]-scaled input, or in units of
    each weight tensor's standard deviation)."""
    amplitude_max: float = Field(10.0, gt=0)
    """Largest noise amplitude."""
    amplitudes: int = Field(20, ge=2)
    """Number of log-spaced amplitudes."""
    trials: int = Field(5, ge=1)
    """Noisy copies per sample (sample space) or perturbed networks (weight space) per amplitude."""
    max_samples: int | None = Field(1000, ge=1)
    """Measure the correctly classified samples among the first ``max_samples`` training samples."""
    per_sample: bool = True
    """Store every sample's curve (Zhao-B fig. 5) besides the mean and class curves."""

    @model_validator(mode="after")
    def _ordered(self) -> BasinsSpec:
        if self.amplitude_max <= self.amplitude_min:
            raise ValueError(f"amplitude_max ({self.amplitude_max}) must exceed amplitude_min ({self.amplitude_min})")
        return self


@PROBES.register(BasinsSpec)
class AttractionBasins(Probe):
    """Basin curves and sizes; all noisy copies of an amplitude run in one batched pass."""

    default_cadence = "sparse"
    cost = "costly"
    # it perturbs copies of the weights, never the model's own; the snapshot guards that promise
    touches_weights = True

    def __init__(self, spec: BasinsSpec) -> None:
        super().__init__(spec)
        self.spec: BasinsSpec = spec

    def setup(self, model: TracedModel, task: Task, objective: Objective) -> None:
        require_class_outputs(task, objective, "basins")
        check_chain(model, task, "basins")

    def __call__(self, context: ProbeContext) -> ProbeOutput:
        spec = self.spec
        trace = context.trace("train", spec.max_samples)
        layers = chain_layers(trace, "basins")
        x, y = model_inputs(context, "train", spec.max_samples)
        predict = context.objective.predict
        correct = (predict(trace.output) == y).nonzero().flatten()
        x, y = x[correct], y[correct]
        amplitudes = log_amplitudes(spec.amplitude_min, spec.amplitude_max, spec.amplitudes)
        n_classes = context.task.n_classes
        result: ProbeOutput = {"basins/n_correct": float(len(correct)), "amplitudes": amplitudes.numpy()}
        for space in spec.spaces:
            if len(correct) == 0:
                result.update({f"basins/{space}/size50": np.nan, f"basins/{space}/size_half": np.nan})
                continue
            generator = context.generator(f"basins/{space}", device=x.device)
            if space == "sample":
                all_x = context.task.x_train
                curves = sample_space_curves(
                    layers, x, y, amplitudes, spec.trials, generator, float(all_x.min()), float(all_x.max()), predict
                )
            else:
                curves = weight_space_curves(layers, x, y, amplitudes, spec.trials, generator, predict)
            mean = curves.mean(1).cpu()
            for key, value in basin_sizes(amplitudes, mean, n_classes).items():
                result[f"basins/{space}/{key}"] = value
            result[f"{space}_mean"] = mean.numpy()
            result[f"{space}_per_class"] = class_curves(curves, y, n_classes).cpu().numpy()
            if spec.per_sample:
                result[f"{space}_per_sample"] = curves.cpu().numpy().astype(np.float32)
        if spec.per_sample and len(correct):
            result["sample_index"] = correct.cpu().numpy()
        return result
