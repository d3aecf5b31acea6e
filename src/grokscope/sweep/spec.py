"""The sweep spec: a base run config and axes over any config key, expanded into cells.

A sweep is data (YAML or Python):

    name: liu_toy_lr_wd
    base: liu_toy                      # a preset, a path to a YAML run config, or an inline config
    overrides: {training: {steps: 20000}}
    axes:                              # dotted config key -> values; the first two are x and y
      optimizer.groups.decoder.lr: {log: [1.0e-5, 1.0e-2], num: 8}
      optimizer.groups.decoder.weight_decay: {linear: [0, 10], num: 8}
    seeds: 3                           # shorthand for an axis `seed: [0, 1, 2]`

An axis is a list of values, or one of ``{log: [lo, hi], num: n}`` (log-spaced, both ends
included), ``{linear: [lo, hi], num: n}``, ``{range: [start, stop(, step)]}`` (integers, stop
excluded), ``{values: [...]}``. The grid is the product of all axes; with ``samples: N`` the
non-seed axes are instead drawn at random N times (log axes log-uniformly, linear axes
uniformly, lists by choice; ``sample_seed`` fixes the draw) and crossed with the seeds.

Each cell is a full ``RunConfig`` (base + overrides + the cell's axis values), validated before
anything is trained, named by its axis values (``lr=0.001_weight_decay=2_seed=0``).

>>> spec = SweepSpec.model_validate({"base": {"task": {"name": "modular_arithmetic", "p": 7},
...     "model": {"name": "mlp", "width": 8}}, "axes": {"optimizer.lr": [0.01, 0.1]}, "seeds": 2})
>>> [cell.id for cell in expand(spec)]
['lr=0.01_seed=0', 'lr=0.01_seed=1', 'lr=0.1_seed=0', 'lr=0.1_seed=1']
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import Field, ValidationError, model_validator

from grokscope.config import RunConfig, format_validation_error, merge, parse_config, read_yaml, set_dotted
from grokscope.errors import ConfigError
from grokscope.spec import Spec

SEED_AXIS = "seed"


class AxisSpec(Spec):
    """Values of one axis: exactly one of ``values``, ``log``, ``linear``, ``range``."""

    values: list[Any] | None = None
    """Explicit values."""
    log: tuple[float, float] | None = None
    """[lo, hi] (both > 0): ``num`` log-spaced values, both ends included."""
    linear: tuple[float, float] | None = None
    """[lo, hi]: ``num`` evenly spaced values, both ends included."""
    range: tuple[int, int] | tuple[int, int, int] | None = None
    """[start, stop] or [start, stop, step]: integers, stop excluded (Python's range)."""
    num: int | None = Field(None, ge=1)
    """Number of values of a ``log`` or ``linear`` axis (not needed when sampling at random)."""

    @model_validator(mode="after")
    def _one_kind(self) -> AxisSpec:
        kinds = [k for k in ("values", "log", "linear", "range") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of values, log, linear, range")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("values", "log", "linear", "range") if getattr(self, k) is not None)

    def grid(self, key: str) -> list[Any]:
        """The axis values of a grid sweep; an empty or ill-formed range is a ConfigError."""
        kind = self.kind
        if kind == "values":
            values = list(self.values or [])
        elif kind == "range":
            values = list(range(*self.range))  # type: ignore[misc]
        else:
            lo, hi = self.log if kind == "log" else self.linear  # type: ignore[misc]
            if kind == "log" and (lo <= 0 or hi <= 0):
                raise ConfigError(f"axes.{key}.log = {[lo, hi]}: bounds must be > 0")
            if self.num is None:
                raise ConfigError(f"axes.{key}: a {kind} axis needs num (the number of values) in a grid sweep")
            if kind == "log":
                values = [float(v) for v in np.logspace(np.log10(lo), np.log10(hi), self.num)]
            else:
                values = [float(v) for v in np.linspace(lo, hi, self.num)]
        if not values:
            raise ConfigError(f"axes.{key} = {self.model_dump(exclude_none=True)}: the axis has no values")
        return values

    def draw(self, key: str, rng: np.random.Generator) -> Any:
        """One value at random (log axes log-uniformly, linear uniformly, lists by choice)."""
        kind = self.kind
        if kind == "log":
            lo, hi = self.log  # type: ignore[misc]
            if lo <= 0 or hi <= 0:
                raise ConfigError(f"axes.{key}.log = {[lo, hi]}: bounds must be > 0")
            return float(10 ** rng.uniform(np.log10(lo), np.log10(hi)))
        if kind == "linear":
            return float(rng.uniform(*self.linear))  # type: ignore[misc]
        values = self.grid(key)
        return values[int(rng.integers(len(values)))]


class SweepSpec(Spec):
    """A sweep: base config, overrides, axes, seeds, and how cells are chosen."""

    name: str = "sweep"
    """Label of the sweep; cell run names are ``<name>/<cell id>``."""
    base: str | dict[str, Any]
    """A preset name (``grokscope init --list``), a path to a YAML run config (relative to the
    sweep file), or an inline run config."""
    overrides: dict[str, Any] = {}
    """Merged into the base before the axes are applied."""
    axes: dict[str, AxisSpec | list[Any]] = {}
    """Dotted config key -> values. Order matters: the first two non-seed axes are the x and y
    of the phase diagram."""
    seeds: int | list[int] | None = None
    """Seeds as an axis: ``3`` means ``seed: [0, 1, 2]``; a list gives them explicitly."""
    samples: int | None = Field(None, ge=1)
    """Draw this many points of the non-seed axes at random instead of the full grid."""
    sample_seed: int = 0
    """Seed of the random draw of ``samples``."""

    @model_validator(mode="after")
    def _seed_once(self) -> SweepSpec:
        if self.seeds is not None and SEED_AXIS in self.axes:
            raise ValueError("seeds given twice: as `seeds` and as the axis `seed`; keep one")
        if isinstance(self.seeds, int) and self.seeds < 1:
            raise ValueError("seeds must be >= 1")
        return self

    def axis_specs(self) -> dict[str, AxisSpec]:
        """Every axis as an AxisSpec, the seed axis last."""
        axes = {k: v if isinstance(v, AxisSpec) else AxisSpec(values=v) for k, v in self.axes.items()}
        if self.seeds is not None:
            seeds = list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)
            axes[SEED_AXIS] = AxisSpec(values=seeds)
        return axes


@dataclass(frozen=True)
class Cell:
    """One point of a sweep: its id (folder name), axis values and complete run config."""

    id: str
    values: dict[str, Any]
    config: RunConfig


def load_sweep(source: SweepSpec | dict[str, Any] | str | Path) -> tuple[SweepSpec, Path | None]:
    """The validated spec and the folder relative paths in it refer to (None for Python specs)."""
    if isinstance(source, SweepSpec):
        return source, None
    if isinstance(source, dict):
        data, where, folder = source, "sweep", None
    else:
        path = Path(source)
        data, where, folder = read_yaml(path), str(path), path.parent
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping with base and axes")
    try:
        return SweepSpec.model_validate(data), folder
    except ValidationError as error:
        raise ConfigError("\n".join(f"{where}: {line}" for line in format_validation_error(error))) from None


def base_config(spec: SweepSpec, folder: Path | None = None) -> dict[str, Any]:
    """The base run config as plain data, overrides applied."""
    from grokscope.experiments.catalog import load_preset, preset_names

    if isinstance(spec.base, dict):
        data = dict(spec.base)
    elif spec.base.endswith((".yaml", ".yml")):
        path = Path(spec.base)
        if not path.is_absolute() and folder is not None:
            path = folder / path
        data = read_yaml(path)
    elif spec.base in preset_names():
        data = load_preset(spec.base)
    else:
        raise ConfigError(f"base = {spec.base!r}: neither a preset ({', '.join(preset_names())}) nor a .yaml file")
    return merge(data, spec.overrides)


def expand(spec: SweepSpec, folder: Path | None = None) -> list[Cell]:
    """Every cell of the sweep, validated, in a fixed order (grid: the last axis varies fastest)."""
    axes = spec.axis_specs()
    if not axes:
        raise ConfigError("axes: a sweep needs at least one axis (or seeds)")
    base = base_config(spec, folder)
    grids: dict[str, list[Any]] = {}
    for key, axis in axes.items():
        if spec.samples is None or key == SEED_AXIS:
            grids[key] = axis.grid(key)
        _check_axis(base, key, grids[key][0] if key in grids else axis.draw(key, np.random.default_rng(0)))
    if spec.samples is None:
        points = [dict(zip(axes, combo)) for combo in itertools.product(*(grids[k] for k in axes))]
    else:
        rng = np.random.default_rng(spec.sample_seed)
        drawn = [{k: a.draw(k, rng) for k, a in axes.items() if k != SEED_AXIS} for _ in range(spec.samples)]
        seeds = grids.get(SEED_AXIS, [None])
        points = [{**d, SEED_AXIS: s} if s is not None else d for d in drawn for s in seeds]
    names = cell_ids(list(axes), points)
    cells = []
    for cell_id, values in zip(names, points):
        data = base
        for key, value in values.items():
            data = set_dotted(data, key, value)
        data = {**data, "name": f"{spec.name}/{cell_id}"}
        cells.append(Cell(cell_id, values, parse_config(data, source=f"sweep {spec.name}, cell {cell_id}")))
    return cells


def _check_axis(base: dict[str, Any], key: str, value: Any) -> None:
    """Reject an axis whose key the run config does not have, naming the axis, in one line."""
    try:
        parse_config(set_dotted(base, key, value), source="config")
    except ConfigError as error:
        reason = str(error).splitlines()[0].removeprefix("config: ")
        raise ConfigError(f"axes.{key} = {value!r}: {reason}") from None


def short_keys(keys: list[str]) -> dict[str, str]:
    """The shortest dotted suffix of each key that tells the keys apart (``decoder.lr``)."""
    result = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if sum(k == suffix or k.endswith("." + suffix) for k in keys) == 1:
                result[key] = suffix
                break
        else:
            result[key] = key
    return result


def format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def cell_ids(keys: list[str], points: list[dict[str, Any]]) -> list[str]:
    """Folder names from axis values; points that print alike get ``-<n>`` suffixes."""
    short = short_keys(keys)
    names = [
        re.sub(r"[^A-Za-z0-9._=+,-]", "-", "_".join(f"{short[k]}={format_value(p[k])}" for k in keys if k in p))
        for p in points
    ]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        if names.count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            name = f"{name}-{seen[name]}"
        unique.append(name)
    return unique


def spec_yaml(spec: SweepSpec, cells: list[Cell]) -> str:
    """What ``sweep.yaml`` records: the spec as given and every cell's axis values."""
    record = {
        "spec": spec.model_dump(mode="json", exclude_none=True),
        "axes": list(spec.axis_specs()),
        "cells": [{"id": c.id, "values": c.values} for c in cells],
    }
    return yaml.safe_dump(record, sort_keys=False)
