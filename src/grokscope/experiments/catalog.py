"""The reproduction catalogue: each entry is data (DESIGN.md, "a reproduction is data").

An entry is a YAML file in ``experiments/catalog/``:

    name: demo_weight_decay
    paper: O-info (Clauw et al. 2024)
    figure: fig. 1 (left)
    claim: Weight decay 2.0 makes modular addition generalize sooner than weight decay 0.1.
    expected_minutes: 2.5            # full size, on 2 CPU cores
    base: modadd                     # a preset in experiments/configs/, or an inline run config
    runs:                            # label -> overrides merged into the base
      wd2: {optimizer: {weight_decay: 2.0}}
      wd01: {optimizer: {weight_decay: 0.1}}
    seeds: [0, 1, 2]                 # optional: every run once per seed, labelled wd2_s0 ...
    smoke: {training: {steps: 200}}  # overrides for --smoke (runs in well under a minute)
    analysis: grokscope.experiments.oinfo:timelines   # optional: derived numbers and figures
    rule: wd2.generalization_step < wd01.generalization_step

``reproduce`` trains every run into ``<out>/<label>`` (finished runs are reused, interrupted
ones resumed), calls the analysis function if any, evaluates the rule on the stored numbers and
writes ``verdict.json`` and ``verdict.md`` beside a figure.
"""

from __future__ import annotations

import importlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import Field, ValidationError

from grokscope.config import RunConfig, format_validation_error, merge, parse_config
from grokscope.errors import ConfigError
from grokscope.experiments.rules import evaluate_rule
from grokscope.runner import Run, run
from grokscope.spec import Spec
from grokscope.store import atomic_write_text, is_run_folder

PACKAGE = "grokscope.experiments"

Analysis = Callable[[dict[str, Run], Path, bool], dict[str, Any]]
"""``analysis(runs, out, smoke) -> {name: number}``: derived numbers for the rule (it may also
draw figures into ``out``; a ``figure.png`` there becomes the entry's main figure)."""


class Reproduction(Spec):
    """One claim of a seed paper, the runs that test it and the numeric rule that decides it."""

    name: str
    """Identifier used by ``grokscope reproduce NAME``."""
    paper: str
    """Short name of the paper (SPEC.md table) and its authors."""
    figure: str
    """Figure or section reproduced."""
    claim: str
    """The claim, in one sentence."""
    rule: str
    """Boolean expression over run summaries and analysis numbers (see ``rules.py``)."""
    expected_minutes: float = Field(gt=0)
    """Wall time of the full size on 2 CPU cores."""
    base: str | dict[str, Any] | None = None
    """A preset name (``experiments/configs/<name>.yaml``) or an inline run config."""
    runs: dict[str, dict[str, Any]] = {}
    """Run label -> overrides of the base config. Labels are identifiers used in the rule."""
    seeds: list[int] | None = None
    """Repeat every run once per seed (labels get ``_s<seed>``)."""
    smoke: dict[str, Any] = {}
    """Overrides applied to every run with ``--smoke``."""
    smoke_runs: dict[str, dict[str, Any]] = {}
    """Per-label overrides applied after ``smoke`` with ``--smoke``."""
    analysis: str | None = None
    """``module:function`` computing derived numbers for the rule (``Analysis``)."""
    curves: list[str] = ["train/acc", "test/acc"]
    """Metric columns drawn in the default figure."""
    notes: str = ""
    """What a reader should know: reduced sizes, departures from the paper."""

    def run_configs(self, smoke: bool) -> dict[str, RunConfig]:
        """Label -> validated run config, with seeds expanded and smoke overrides applied."""
        base = load_preset(self.base) if isinstance(self.base, str) else dict(self.base or {})
        configs: dict[str, RunConfig] = {}
        for label, overrides in (self.runs or {"run": {}}).items():
            data = merge(base, overrides)
            if smoke:
                data = merge(merge(data, self.smoke), self.smoke_runs.get(label, {}))
            for seed in self.seeds or [None]:
                name = label if seed is None else f"{label}_s{seed}"
                cell = merge(data, {"name": name} if seed is None else {"name": name, "seed": seed})
                configs[name] = parse_config(cell, source=f"reproduction {self.name}, run {name}")
        return configs


def catalog_dir() -> Path:
    return Path(str(resources.files(PACKAGE) / "catalog"))


def presets_dir() -> Path:
    return Path(str(resources.files(PACKAGE) / "configs"))


def preset_names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def preset_path(name: str) -> Path:
    path = presets_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"preset '{name}' unknown; allowed: {', '.join(preset_names())}")
    return path


def load_preset(name: str) -> dict[str, Any]:
    return yaml.safe_load(preset_path(name).read_text())


def list_reproductions() -> list[Reproduction]:
    return [load_reproduction(p.stem) for p in sorted(catalog_dir().glob("*.yaml"))]


def load_reproduction(name: str) -> Reproduction:
    path = catalog_dir() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in catalog_dir().glob("*.yaml")))
        raise ConfigError(f"reproduction '{name}' unknown; allowed: {known}")
    try:
        return Reproduction.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as error:
        raise ConfigError("\n".join(f"{path}: {line}" for line in format_validation_error(error))) from None


class RunView:
    """A run as the rule sees it: summary keys as attributes (a step never reached reads as
    ``inf``, so "reached sooner" compares naturally), and a few accessors of its metrics."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._summary = run.summary
        self._metrics = run.metrics

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        if key not in self._summary:
            raise ConfigError(f"rule: run {self._run.path.name} has no summary value '{key}'")
        value = self._summary[key]
        if value is None and ("step" in key or key == "delay_ratio"):
            return math.inf
        return value

    def series(self, column: str) -> list[float]:
        return self._metrics[column].dropna().tolist()

    def final(self, column: str) -> float:
        return float(self._metrics[column].dropna().iloc[-1])

    def max(self, column: str) -> float:
        return float(self._metrics[column].max())

    def min(self, column: str) -> float:
        return float(self._metrics[column].min())

    def at(self, step: int, column: str) -> float:
        """The value at the last evaluated step <= ``step``."""
        rows = self._metrics[self._metrics["step"] <= step][column].dropna()
        return float(rows.iloc[-1]) if len(rows) else math.nan


@dataclass
class Verdict:
    name: str
    holds: bool
    numbers: dict[str, Any]
    out: Path
    smoke: bool

    @property
    def label(self) -> str:
        return "holds" if self.holds else "does not hold"


def resolve_analysis(reference: str) -> Analysis:
    module_name, _, function_name = reference.partition(":")
    try:
        return getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"analysis '{reference}': {error}") from None


def reproduce(
    entry: Reproduction | str,
    out: str | Path | None = None,
    smoke: bool = False,
    force: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> Verdict:
    """Train an entry's runs, evaluate its rule, write the verdict and the main figure."""
    from grokscope.report.figures import plot_runs  # figures import matplotlib: load it late

    entry = load_reproduction(entry) if isinstance(entry, str) else entry
    out = Path(out) if out is not None else Path("runs") / "reproduce" / (entry.name + ("_smoke" if smoke else ""))
    configs = entry.run_configs(smoke)
    analysis = resolve_analysis(entry.analysis) if entry.analysis else None
    started = time.monotonic()
    runs: dict[str, Run] = {}
    for label, config in configs.items():
        folder = out / label
        resume = is_run_folder(folder) and not force
        runs[label] = run(config, out=folder, resume=resume, force=force, device=device, progress=progress)
    numbers: dict[str, Any] = {}
    if analysis is not None:
        numbers = analysis(runs, out, smoke)
    names = {**{label: RunView(r) for label, r in runs.items()}, **numbers}
    holds, read = evaluate_rule(entry.rule, names)
    if not (out / "figure.png").is_file():
        plot_runs(runs, out / "figure.png", columns=entry.curves, title=f"{entry.name}: {entry.figure}")
    verdict = Verdict(entry.name, holds, read, out, smoke)
    record = {
        "name": entry.name,
        "paper": entry.paper,
        "figure": entry.figure,
        "claim": entry.claim,
        "rule": entry.rule,
        "numbers": read,
        "analysis_numbers": {k: _plain(v) for k, v in numbers.items()},
        "holds": holds,
        "verdict": verdict.label,
        "smoke": smoke,
        "wall_seconds": round(time.monotonic() - started, 1),
        "runs": {label: str(r.path) for label, r in runs.items()},
        "notes": entry.notes,
    }
    atomic_write_text(out / "verdict.json", json.dumps(record, indent=2, default=_plain))
    atomic_write_text(out / "verdict.md", _verdict_markdown(record))
    return verdict


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _verdict_markdown(record: dict[str, Any]) -> str:
    lines = [
        f"# {record['name']}{' (smoke size)' if record['smoke'] else ''}",
        "",
        f"- paper: {record['paper']}, {record['figure']}",
        f"- claim: {record['claim']}",
        f"- rule: `{record['rule']}`",
        f"- verdict: **{record['verdict']}**",
        f"- wall time: {record['wall_seconds']} s",
        "",
        "| value read by the rule | number |",
        "|---|---|",
        *[f"| `{k}` | {v} |" for k, v in record["numbers"].items()],
    ]
    if record["notes"]:
        lines += ["", record["notes"]]
    return "\n".join(lines) + "\n"
