"""The run config: composes the specs that tasks, models, optimizers and probes declare, and
loads YAML. Invalid input becomes a ``ConfigError`` whose lines name key, value and what is
allowed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Field, SerializeAsAny, ValidationError, model_validator

import grokscope.models
import grokscope.probes
import grokscope.tasks  # noqa: F401  (registers the tasks)
from grokscope.errors import ConfigError
from grokscope.models.base import MODELS, ModelSpec
from grokscope.probes.base import PROBES, ProbeSpec
from grokscope.registry import Registry
from grokscope.spec import Spec
from grokscope.tasks.base import TASKS, TaskSpec
from grokscope.train.objective import LossName
from grokscope.train.optim import OptimizerSpec
from grokscope.train.schedule import ScheduleSpec


def _dispatch(registry: Registry):
    """Validate a mapping as the spec registered under its ``name``."""

    def validate(value: Any) -> Any:
        if isinstance(value, str):  # shorthand: ``model: mlp`` means ``model: {name: mlp}``
            value = {"name": value}
        if isinstance(value, dict):
            name = value.get("name")
            if name is None:
                raise ValueError(f"missing 'name'; allowed {registry.kind}s: {', '.join(registry.names())}")
            if name not in registry:
                raise ValueError(f"unknown {registry.kind}; allowed: {', '.join(registry.names())}")
            return registry.spec(name).model_validate(value)
        return value

    return BeforeValidator(validate)


AnyTask = Annotated[SerializeAsAny[TaskSpec], _dispatch(TASKS)]
AnyModel = Annotated[SerializeAsAny[ModelSpec], _dispatch(MODELS)]
AnyProbe = Annotated[SerializeAsAny[ProbeSpec], _dispatch(PROBES)]


class TrainingSpec(Spec):
    """The training loop: budget, batches, loss, and what counts as divergence."""

    steps: int = Field(3000, ge=1)
    """Step budget: number of optimizer updates."""
    batch_size: int | None = Field(None, ge=1)
    """Minibatch size; None (or >= the training set) trains full batch."""
    loss: LossName = "cross_entropy"
    """``cross_entropy`` or ``mse`` (on one-hot x target_scale, or the task's target vectors)."""
    target_scale: float = Field(1.0, gt=0)
    """Height of the one-hot targets for mse (Liu's MNIST runs, layerwise appendix H.3)."""
    grad_clip: float | None = Field(None, gt=0)
    """Clip the global gradient norm to this value."""
    warmup_steps: int = Field(0, ge=0)
    """Linear learning-rate warm-up from 0 over this many steps."""
    eval_batch_size: int = Field(8192, ge=1)
    """Samples per forward pass when probes evaluate a whole split."""


class AnalysisSpec(Spec):
    """Thresholds of the fit / generalization steps and of the phase label (Liu appendix A)."""

    thresholds: list[float] = [0.9, 0.99]
    """Accuracies at which fit and generalization steps are reported."""
    phase_threshold: float = Field(0.9, gt=0, le=1)
    """t: the accuracy that counts as fit (train) or generalized (test) for the phase label."""
    gap: int = Field(1000, ge=0)
    """G: a generalization step more than G steps after the fit step is grokking."""
    delay_ratio: float = Field(2.0, ge=1)
    """generalization_step / fit_step at or above which generalization counts as delayed."""


class OutputSpec(Spec):
    """What the run folder keeps."""

    checkpoint_every: int | None = Field(None, ge=1)
    """Steps between checkpoints; None: every budget/10 steps."""
    keep_checkpoints: int = Field(2, ge=1)
    """How many of the latest checkpoints to keep (the final one is always kept)."""
    flush_seconds: float = Field(30.0, gt=0)
    """Longest time between writes of metrics.parquet during training."""


def _default_probes() -> list[ProbeSpec]:
    return [PROBES.spec("loss_accuracy")(), PROBES.spec("weight_norm")()]


class RunConfig(Spec):
    """A complete run: everything needed to train and measure it reproducibly.

    >>> config = RunConfig.model_validate({"task": {"name": "modular_arithmetic", "p": 7},
    ...                                    "model": {"name": "mlp", "width": 8}})
    >>> config.task.p, config.model.width
    (7, 8)
    """

    name: str = "run"
    """Label of the run; the default run folder is ``runs/<name>``."""
    seed: int = 0
    """Seed of initialization, data order and probe randomness."""
    device: str = "auto"
    """``auto`` (cuda when available), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    dtype: Literal["float32", "float64"] = "float32"
    """Floating-point precision of model and data."""
    task: AnyTask
    """The dataset, selected by ``name`` (see ``grokscope init`` for the options)."""
    model: AnyModel
    """The network, selected by ``name``."""
    optimizer: OptimizerSpec = OptimizerSpec()
    training: TrainingSpec = TrainingSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    probes: list[AnyProbe] = Field(default_factory=_default_probes)
    """Probes and their cadences; ``loss_accuracy`` is always added."""
    analysis: AnalysisSpec = AnalysisSpec()
    output: OutputSpec = OutputSpec()
    provenance: dict[str, Any] | None = None
    """Written by grokscope into a run folder's config.yaml (versions, time); ignored on input."""

    @model_validator(mode="after")
    def _always_measure_loss(self) -> RunConfig:
        names = [p.name for p in self.probes]
        if "loss_accuracy" not in names:
            self.probes.insert(0, PROBES.spec("loss_accuracy")())
        duplicated = {n for n in names if names.count(n) > 1}
        if duplicated:
            raise ValueError(f"probes listed twice: {', '.join(sorted(duplicated))}")
        return self

    @model_validator(mode="after")
    def _device_name(self) -> RunConfig:
        base = self.device.split(":")[0]
        if base not in {"auto", "cpu", "cuda", "mps"}:
            raise ValueError(f"device '{self.device}' unknown; allowed: auto, cpu, cuda, cuda:N, mps")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data (every default filled in) that ``RunConfig.model_validate`` reads back."""
        return self.model_dump(mode="json", exclude_none=False)


def format_validation_error(error: ValidationError, prefix: str = "") -> list[str]:
    """One readable line per key: ``key = value: what is wrong / what is allowed``."""
    problems: dict[str, tuple[str, list[str]]] = {}
    for item in error.errors():
        loc = [str(part) for part in item["loc"] if not _is_union_tag(part)]
        key = prefix + ".".join(loc) if loc else (prefix.rstrip(".") or "config")
        message = item["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        value = item.get("input")
        shown = f" = {value!r}"
        if item["type"] == "missing":
            shown, message = "", "required key is missing"
        elif message.startswith("unknown key") or item["type"] in ("model_type", "dict_type"):
            shown = ""
        elif message.startswith("unknown ") and isinstance(value, dict):
            key, shown = f"{key}.name", f" = {value.get('name')!r}"
        # members of a union each complain about the same key: keep one line, all complaints
        problems.setdefault(key, (shown, []))[1].append(message)
    return [f"{key}{shown}: {'; or '.join(messages)}" for key, (shown, messages) in problems.items()]


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the member type ("MLPSpec", "list[int]") into the location of union members
    return isinstance(part, str) and (part.endswith("Spec") or "[" in part)


def parse_config(data: Any, source: str = "config") -> RunConfig:
    """Validate plain data as a RunConfig, raising ConfigError with readable lines."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError("\n".join(f"{source}: {line}" for line in format_validation_error(error))) from None


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read and validate a YAML run config, with ``key.sub=value`` overrides applied first."""
    data = read_yaml(path)
    for assignment in overrides:
        key, value = parse_assignment(assignment)
        data = set_dotted(data if isinstance(data, dict) else {}, key, value)
    return parse_config(data, source=str(path))


def parse_assignment(assignment: str) -> tuple[str, Any]:
    """``"optimizer.lr=0.01"`` -> ``("optimizer.lr", 0.01)``; the value is read as YAML."""
    key, separator, value = assignment.partition("=")
    if not separator or not key.strip():
        raise ConfigError(f"override = {assignment!r}: expected key=value, e.g. optimizer.lr=0.01")
    return key.strip(), yaml.safe_load(value) if value.strip() else None


def set_dotted(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``key`` (``optimizer.groups.decoder.lr``) set; list items by index."""
    parts = key.split(".")
    root = json.loads(json.dumps(data))  # deep copy of plain data
    node: Any = root
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{key}: '{part}' is not an index of the list at {'.'.join(parts[:depth])}")
            index: Any = int(part)
        else:
            index = part
            if not last and not isinstance(node.get(part), (dict, list)):
                node[part] = {}
        if last:
            node[index] = value
        else:
            node = node[index]
    return root


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of plain mappings: ``override`` wins; nested mappings merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
