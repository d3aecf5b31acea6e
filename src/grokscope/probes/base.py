"""The probe contract: thin adapters from (model, task, step) to measures, that never disturb
training (DESIGN.md, "probes never change training")."""

from __future__ import annotations

import contextlib
import hashlib
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from grokscope.models.base import Trace, TracedModel
from grokscope.registry import Registry
from grokscope.spec import Spec
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective
from grokscope.train.schedule import Cadence

Split = Literal["train", "test"]
ProbeOutput = dict[str, float | np.ndarray]


class ProbeSpec(Spec):
    """Base of every probe spec: ``name`` selects the probe, ``cadence`` when it runs."""

    name: str
    cadence: Cadence | None = None
    """``every`` evaluation step, ``sparse``, ``final``, or a list of steps; None: the probe's
    default."""


PROBES: Registry = Registry("probe")


def split_data(task: Task, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels) of a task's train or test split."""
    if split == "train":
        return task.x_train, task.y_train
    return task.x_test, task.y_test


@dataclass
class ProbeContext:
    """What a probe sees at one evaluation step. Outputs and traces are computed once, in eval
    mode without gradients, and shared by every probe of the step."""

    model: TracedModel
    task: Task
    objective: Objective
    step: int
    seed: int
    eval_batch_size: int = 8192
    _outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    _traces: dict[tuple[str, int | None], Trace] = field(default_factory=dict)

    def data(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        return split_data(self.task, split)

    @torch.no_grad()
    def outputs(self, split: Split) -> torch.Tensor:
        """Model outputs on a whole split, in eval mode, batched to bound memory."""
        if split not in self._outputs:
            x, _ = self.data(split)
            with eval_mode(self.model):
                self._outputs[split] = torch.cat([self.model(chunk) for chunk in x.split(self.eval_batch_size)])
        return self._outputs[split]

    @torch.no_grad()
    def trace(self, split: Split, limit: int | None = None) -> Trace:
        """The trace of the first ``limit`` samples of a split (all when None), in eval mode."""
        key = (split, limit)
        if key not in self._traces:
            x, _ = self.data(split)
            with eval_mode(self.model):
                self._traces[key] = self.model.trace(x if limit is None else x[:limit])
        return self._traces[key]

    def generator(self, salt: str, device: torch.device | str = "cpu") -> torch.Generator:
        """A torch generator seeded by (run seed, step, salt): probe randomness that is
        reproducible and never touches the global RNG that training uses."""
        digest = hashlib.sha256(f"{self.seed}:{self.step}:{salt}".encode()).digest()
        return torch.Generator(device=device).manual_seed(int.from_bytes(digest[:8], "little") >> 1)


@dataclass
class StackedContext:
    """What a probe sees of several models of one architecture at the same step (the cells of a
    batched ensemble): parameters and outputs with a leading axis of models."""

    parameters: dict[str, torch.Tensor]
    """Every parameter, named and ordered as ``model.named_parameters()``, shaped (models, ...)."""
    outputs: dict[Split, torch.Tensor]
    """Outputs on each whole split in eval mode, (models, samples, ...)."""
    task: Task
    objective: Objective
    step: int

    def data(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        return split_data(self.task, split)


class Probe(ABC):
    """A measurement at scheduled steps. Subclasses set the class attributes and implement
    ``__call__``; they read the model through the trace protocol only.

    Returned keys map to metrics columns when the value is a scalar (name them by group,
    e.g. ``train/loss``) and to ``arrays/<probe>/<step>.npz`` when it is an array.
    """

    default_cadence: ClassVar[Cadence] = "every"
    cost: ClassVar[Literal["cheap", "costly"]] = "cheap"
    touches_weights: ClassVar[bool] = False
    """True when the probe perturbs weights or buffers (they are then snapshotted and restored)."""

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def cadence(self) -> Cadence:
        return self.spec.cadence if self.spec.cadence is not None else self.default_cadence

    def setup(self, model: TracedModel, task: Task, objective: Objective) -> None:  # noqa: B027
        """Called once before training starts (e.g. to keep a reference at initialization)."""

    @abstractmethod
    def __call__(self, context: ProbeContext) -> ProbeOutput:
        """Measure at ``context.step``."""

    @property
    def measures_stacks(self) -> bool:
        """Whether the batched ensemble can measure all its cells with this probe at once."""
        return isinstance(self, StackMeasure)

    def state_dict(self) -> dict[str, Any]:
        """State a probe keeps across steps; saved in checkpoints so resumes are exact."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027
        """Restore what ``state_dict`` returned."""


class StackMeasure(ABC):
    """Mixed into a probe whose measure can also be taken for a whole stack of models in one
    batched computation (what the batched ensemble uses for its cells): ``class
    LossAccuracy(Probe, StackMeasure)``. A probe without it is called cell by cell."""

    @abstractmethod
    def measure_stack(self, context: StackedContext) -> list[ProbeOutput]:
        """The measure of ``__call__`` for each model of the stack, in order. One instance
        measures every model, so the result may depend on the context and the spec only, never
        on state the instance keeps for one model."""


def build_probe(spec: ProbeSpec) -> Probe:
    return PROBES.builder(spec.name)(spec)


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode inside the block; each module's own mode restored afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@contextlib.contextmanager
def untouched(model: torch.nn.Module, snapshot_weights: bool) -> Iterator[None]:
    """Whatever runs inside leaves training exactly as it found it: every RNG (torch CPU and
    CUDA, numpy, python), every module's train/eval mode, gradients, and (when asked) every
    parameter and buffer, batch-norm running statistics included."""
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    modes = [(module, module.training) for module in model.modules()]
    parameters = list(model.parameters())
    grads = [p.grad for p in parameters]
    weights = (
        {k: v.detach().clone() for k, v in model.state_dict(keep_vars=False).items()} if snapshot_weights else None
    )
    for p in parameters:
        p.grad = None
    try:
        yield
    finally:
        if weights is not None:
            with torch.no_grad():
                for key, value in model.state_dict(keep_vars=False).items():
                    value.copy_(weights[key])
        for p, grad in zip(parameters, grads, strict=True):
            p.grad = grad
        for module, training in modes:
            module.training = training
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        torch.set_rng_state(torch_state)
