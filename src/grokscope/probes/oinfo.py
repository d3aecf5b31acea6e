"""The O-information probe: max synergy and max redundancy of a hidden layer (O-info sec. 3).

Metrics (bits): ``oinfo/synergy`` = minus the most negative O-information over every multiplet
of 3..k bins (larger = more synergistic), ``oinfo/redundancy`` = the most positive one,
``oinfo/synergy_neurons`` / ``oinfo/redundancy_neurons`` (neurons in those multiplets, the size of
the synergistic sub-network), ``oinfo/synergy_order`` / ``oinfo/redundancy_order`` (bins in them)
and ``oinfo/active_neurons``. Arrays: ``labels`` (bin of each neuron, -1 constant),
``synergy_bins``, ``redundancy_bins`` and the extremes of each order ``synergy_by_order`` /
``redundancy_by_order`` (order 3..k, O-information values). Timelines are normalized per run when
drawn (``normalize_timeline``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from grokscope.errors import ConfigError
from grokscope.measures.oinfo import layer_oinfo
from grokscope.models.base import Trace, TracedModel
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec, eval_mode
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective


class OInfoSpec(ProbeSpec):
    """O-information of one hidden layer's outputs over a split's samples."""

    name: Literal["oinfo"] = "oinfo"
    layer: int = 0
    """Hidden layer index (0 = first hidden layer, -1 = last), in trace order."""
    signal: Literal["x", "h"] = "x"
    """``x``: the layer's output (post-activation, the paper's Z^1); ``h``: its local field."""
    split: Literal["train", "test"] = "train"
    """Samples the neurons' activation vectors run over (the paper uses the training set)."""
    samples: int | None = Field(None, ge=10)
    """Use only the first ``samples`` samples of the split; None: all."""
    bins: int = Field(10, ge=3, le=16)
    """k: neurons are clustered into k bins; every multiplet of 3..k bins is searched (2^k)."""
    max_order: int | None = Field(None, ge=3)
    """Largest multiplet searched; None: k."""
    bias_correct: bool = False
    """Apply the Ince et al. bias correction to every Gaussian entropy."""


def hidden_layer(trace: Trace, index: int, key: str = "probes.oinfo.layer"):
    """The hidden layer record ``index`` of a trace, or a ConfigError naming the allowed range."""
    hidden = trace.hidden
    if not -len(hidden) <= index < len(hidden):
        raise ConfigError(
            f"{key} = {index}: the model has {len(hidden)} hidden layer(s); allowed {-len(hidden)}..{len(hidden) - 1}"
        )
    return hidden[index]


@PROBES.register(OInfoSpec)
class OInfo(Probe):
    """Max synergy / redundancy of a hidden layer (costly: clustering + 2^k log-determinants)."""

    default_cadence = "sparse"
    cost = "costly"

    def __init__(self, spec: OInfoSpec) -> None:
        super().__init__(spec)
        self.spec: OInfoSpec = spec

    def setup(self, model: TracedModel, task: Task, objective: Objective) -> None:
        with torch.no_grad(), eval_mode(model):
            hidden_layer(model.trace(task.x_train[:2]), self.spec.layer)

    def __call__(self, context: ProbeContext) -> ProbeOutput:
        record = hidden_layer(context.trace(self.spec.split, self.spec.samples), self.spec.layer)
        signal = record.x if self.spec.signal == "x" else record.h
        activations = signal.detach().flatten(1).double().cpu().numpy()  # (P, n)
        result = layer_oinfo(activations, self.spec.bins, 3, self.spec.max_order, self.spec.bias_correct)
        return {
            "oinfo/synergy": -result.synergy,
            "oinfo/redundancy": result.redundancy,
            "oinfo/synergy_neurons": float(result.synergy_neurons),
            "oinfo/redundancy_neurons": float(result.redundancy_neurons),
            "oinfo/synergy_order": float(len(result.synergy_bins)),
            "oinfo/redundancy_order": float(len(result.redundancy_bins)),
            "oinfo/active_neurons": float(result.n_active),
            "labels": result.labels,
            "synergy_bins": np.asarray(result.synergy_bins, dtype=np.int64),
            "redundancy_bins": np.asarray(result.redundancy_bins, dtype=np.int64),
            "synergy_by_order": result.synergy_by_order,
            "redundancy_by_order": result.redundancy_by_order,
        }
