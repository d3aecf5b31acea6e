"""NTK probe: how far the empirical tangent kernel has moved from initialization (lazy vs rich).

At setup (the model at initialization) it computes the empirical NTK on a fixed subset of
samples, evenly spaced through a split; at each scheduled step it computes the kernel again
and reports ``ntk/kernel_distance`` = ``1 - <K0, Kt>_F / (|K0|_F |Kt|_F)`` (Fort et al. 2020),
``ntk/relative_change`` = ``|Kt - K0|_F / |K0|_F`` and ``ntk/trace`` (the kernel's scale).
The initial kernel is part of the probe state, so a resumed run compares with the same K0.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from grokscope.measures.ntk import empirical_ntk, kernel_distance
from grokscope.models.base import TracedModel
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec, eval_mode
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective


class NTKSpec(ProbeSpec):
    """``ntk/kernel_distance``, ``ntk/relative_change``, ``ntk/trace`` on a fixed sample subset."""

    name: Literal["ntk"] = "ntk"
    samples: int = Field(32, ge=2)
    """Size of the subset (evenly spaced through the split); the kernel costs samples x outputs
    backward passes."""
    split: Literal["train", "test"] = "train"
    """Split the subset is drawn from."""
    mode: Literal["trace", "full"] = "trace"
    """``trace``: kernel summed over outputs (samples x samples); ``full``: one row per (sample,
    output) pair (memory samples x outputs x parameters)."""
    store_kernel: bool = False
    """Write the kernel itself to ``arrays/ntk/<step>.npz``."""


def subset(x: torch.Tensor, size: int) -> torch.Tensor:
    """``size`` samples evenly spaced through x (all of them when x is smaller)."""
    index = np.unique(np.linspace(0, len(x) - 1, min(size, len(x))).round().astype(int))
    return x[torch.from_numpy(index).to(x.device)]


@PROBES.register(NTKSpec)
class NTKProbe(Probe):
    """Kernel distance between the empirical NTK at initialization and now."""

    default_cadence = "sparse"
    cost = "costly"

    def __init__(self, spec: NTKSpec) -> None:
        super().__init__(spec)
        self.spec: NTKSpec = spec
        self.initial: torch.Tensor | None = None

    def _kernel(self, model: TracedModel, task: Task) -> torch.Tensor:
        x = task.x_train if self.spec.split == "train" else task.x_test
        with eval_mode(model):
            return empirical_ntk(model, subset(x, self.spec.samples), self.spec.mode)

    def setup(self, model: TracedModel, task: Task, objective: Objective) -> None:
        self.initial = self._kernel(model, task)

    def __call__(self, context: ProbeContext) -> ProbeOutput:
        kernel = self._kernel(context.model, context.task)
        if self.initial is None:  # no setup (a probe built by hand): the first call is the start
            self.initial = kernel
        K0, K = self.initial.cpu().numpy(), kernel.cpu().numpy()
        output: ProbeOutput = {
            "ntk/kernel_distance": kernel_distance(K0, K),
            "ntk/relative_change": float(np.linalg.norm(K - K0) / np.linalg.norm(K0)),
            "ntk/trace": float(np.trace(K)),
        }
        if self.spec.store_kernel:
            output["kernel"] = K
        return output

    def state_dict(self) -> dict[str, Any]:
        return {} if self.initial is None else {"initial": self.initial.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.initial = state.get("initial")
