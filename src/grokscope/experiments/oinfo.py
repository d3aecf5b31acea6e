"""Analysis of the O-info reproductions (Clauw, Marinazzo, Stramaglia 2024, secs. 4-6).

``weight_decay_timelines`` reads the runs of ``oinfo_weight_decay`` (weight decay 0.1, 2, 10, 50
and alpha = 8 initialization, optionally several seeds), and returns per condition:

- ``gen_<c>``: generalization step (first evaluated step with test accuracy >= 90 %; inf when
  never reached), median over seeds;
- ``peak_step_<c>``, ``drop_<c>``, ``early_peak_<c>``: the synergy peak before grokking. On the
  steps from 1 to the horizon (the generalization step, or the budget for runs that never
  generalize), the peak is the step of maximum synergy (-min O-information, bits); ``drop`` is
  the normalized synergy at the peak minus at the last measured step of the horizon (timeline
  normalized to [0, 1] per run); an early peak is a peak strictly inside the horizon followed by
  a drop of at least ``PEAK_DROP`` (every seed);
- ``peak_syn_<c>``: maximum synergy (bits) over steps 1..W with one window W for all runs (the
  latest generalization step among the runs that generalize; the budget when none does),
  median over seeds: "too much weight decay shows lower synergy" (sec. 6).

It draws ``figure.png``: normalized timelines per condition with the test loss (figs. 2-4) and
the raw synergy and accuracies of all conditions (figs. 5, 8, 9).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from grokscope.report.figures import COLORS, plt, save
from grokscope.report.oinfo import draw_timeline, oinfo_timeline
from grokscope.runner import Run

PEAK_DROP = 0.1
"""Fall of the normalized synergy (fraction of the run's range) after the peak and before
generalization for the peak to count as a peak (fixed before the full runs were made)."""


def condition_of(label: str) -> str:
    """Run label without its seed suffix: ``wd2_s1`` -> ``wd2``."""
    return re.sub(r"_s\d+$", "", label)


def generalization_step(run: Run) -> float:
    step = run.summary.get("generalization_step")
    return math.inf if step is None else float(step)


def synergy_peak(run: Run) -> dict[str, float]:
    """The synergy peak before the horizon (generalization step, or the budget): its step, the
    drop of the normalized synergy after it, and whether it counts as an early peak."""
    rows = oinfo_timeline(run)
    horizon = generalization_step(run)
    if not math.isfinite(horizon):
        horizon = float(run.summary.get("budget", rows["step"].max() if len(rows) else 0))
    window = rows[rows["step"] <= horizon]
    if len(window) < 3 or window["oinfo/synergy"].isna().all():
        return {"peak_step": math.nan, "drop": math.nan, "early_peak": False}
    peak = window.loc[window["oinfo/synergy"].idxmax()]
    drop = float(peak["synergy_normalized"] - window["synergy_normalized"].iloc[-1])
    inside = peak["step"] < window["step"].iloc[-1]
    return {"peak_step": float(peak["step"]), "drop": drop, "early_peak": bool(inside and drop >= PEAK_DROP)}


def peak_synergy(run: Run, window: float) -> float:
    """Maximum synergy (bits) over steps 1..window."""
    rows = oinfo_timeline(run)
    rows = rows[rows["step"] <= window]
    return float(rows["oinfo/synergy"].max()) if len(rows) else math.nan


def weight_decay_timelines(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """Numbers and figure of ``oinfo_weight_decay`` (see the module docstring)."""
    by_condition: dict[str, list[tuple[str, Run]]] = defaultdict(list)
    for label, run in runs.items():
        by_condition[condition_of(label)].append((label, run))
    finite = [generalization_step(r) for r in runs.values() if math.isfinite(generalization_step(r))]
    window = max(finite) if finite else float(max(r.summary.get("budget", 0) for r in runs.values()))
    numbers: dict[str, Any] = {"window": window}
    for condition, members in by_condition.items():
        peaks = [synergy_peak(run) for _, run in members]
        numbers[f"gen_{condition}"] = float(np.median([generalization_step(run) for _, run in members]))
        numbers[f"peak_step_{condition}"] = float(np.median([p["peak_step"] for p in peaks]))
        numbers[f"drop_{condition}"] = float(np.median([p["drop"] for p in peaks]))
        numbers[f"early_peak_{condition}"] = all(p["early_peak"] for p in peaks)
        numbers[f"peak_syn_{condition}"] = float(np.median([peak_synergy(run, window) for _, run in members]))
    draw(by_condition, out / "figure.png")
    return numbers


def draw(by_condition: dict[str, list[tuple[str, Run]]], path: Path) -> list[Path]:
    """Top row: the first seed of each condition, normalized synergy / redundancy with the test
    loss. Bottom row: raw max synergy (bits), train and test accuracy of every run."""
    conditions = list(by_condition)
    columns = max(len(conditions), 3)
    figure, axes = plt.subplots(2, columns, figsize=(4.6 * columns, 8.4), squeeze=False)
    for axis, condition in zip(axes[0], conditions):
        label, run = by_condition[condition][0]
        rows = oinfo_timeline(run)
        if not rows.empty:
            draw_timeline(axis, run, rows, label)
    for axis in axes[0][len(conditions) :]:
        axis.axis("off")
    bottom = axes[1]
    for index, condition in enumerate(conditions):
        color = COLORS[index % len(COLORS)]
        for number, (_, run) in enumerate(by_condition[condition]):
            rows = oinfo_timeline(run)
            name = condition if number == 0 else None
            if not rows.empty:
                bottom[0].plot(rows["step"], rows["oinfo/synergy"], color=color, label=name, alpha=0.8)
            for axis, column in ((bottom[1], "train/acc"), (bottom[2], "test/acc")):
                acc = run.metrics[["step", column]].dropna()
                acc = acc[acc["step"] >= 1]
                axis.plot(acc["step"], acc[column], color=color, label=name, alpha=0.8)
    for axis, ylabel in zip(bottom[:3], ("max synergy (bits)", "train accuracy", "test accuracy")):
        axis.set_xscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    for axis in bottom[3:]:
        axis.axis("off")
    figure.suptitle("O-information on modular addition: weight decay and initialization")
    figure.tight_layout()
    return save(figure, path)
