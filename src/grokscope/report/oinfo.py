"""O-information figures of a run (O-info figs. 2-4): normalized synergy and redundancy against
the test loss, the size of the synergistic sub-network, and the synergy-redundancy trade-off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from grokscope.measures.oinfo import normalize_timeline
from grokscope.report.figures import COLORS, plt, save
from grokscope.report.registry import run_figure
from grokscope.runner import Run


def oinfo_timeline(run: Run) -> pd.DataFrame:
    """Rows of the steps where O-info was measured (step >= 1, for log axes): raw synergy and
    redundancy (bits), their per-run normalized versions, sub-network sizes, and the loss and
    accuracy columns of those steps. Empty when the run has no O-info."""
    metrics = run.metrics
    if "oinfo/synergy" not in metrics:
        return pd.DataFrame()
    rows = metrics[metrics["oinfo/synergy"].notna()].copy()
    rows["synergy_normalized"] = normalize_timeline(rows["oinfo/synergy"].to_numpy())
    rows["redundancy_normalized"] = normalize_timeline(rows["oinfo/redundancy"].to_numpy())
    return rows[rows["step"] >= 1].reset_index(drop=True)


def draw_timeline(axis, run: Run, rows: pd.DataFrame, title: str = "") -> None:
    """Normalized synergy / redundancy (left axis) and test loss (right, log) against step."""
    steps = rows["step"].to_numpy()
    axis.plot(steps, rows["synergy_normalized"], color=COLORS[3], label="synergy (normalized)")
    axis.plot(steps, rows["redundancy_normalized"], color=COLORS[0], label="redundancy (normalized)")
    axis.set_xscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("normalized O-information")
    axis.set_ylim(-0.05, 1.05)
    loss = run.metrics[["step", "test/loss"]].dropna()
    loss = loss[loss["step"] >= 1]
    twin = axis.twinx()
    twin.plot(loss["step"], loss["test/loss"], color="gray", linewidth=1, label="test loss")
    twin.set_yscale("log")
    twin.set_ylabel("test loss")
    step = run.summary.get("generalization_step")
    if step:
        axis.axvline(step, color="black", linestyle="--", linewidth=1, label=f"test acc 90% (step {step})")
    lines = axis.get_lines() + twin.get_lines()
    axis.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="upper left")
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title, fontsize=10)


@run_figure("oinfo")
def oinfo_figure(run: Run, out: Path) -> list[Path]:
    """``oinfo.png``: (left) normalized max synergy and max redundancy with the test loss;
    (centre) neurons in the max-synergy multiplet with train/test accuracy; (right) redundancy
    against synergy (bits), coloured by log step (the paper's Pareto view)."""
    rows = oinfo_timeline(run)
    if rows.empty:
        return []
    figure, axes = plt.subplots(1, 3, figsize=(17, 4.2))
    draw_timeline(axes[0], run, rows, "max synergy / redundancy (normalized per run)")

    axes[1].plot(rows["step"], rows["oinfo/synergy_neurons"], color=COLORS[3], label="synergistic sub-network")
    axes[1].plot(rows["step"], rows["oinfo/active_neurons"], color="gray", linestyle=":", label="active neurons")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("neurons")
    twin = axes[1].twinx()
    for split, style in (("train", "--"), ("test", "-")):
        acc = run.metrics[["step", f"{split}/acc"]].dropna()
        acc = acc[acc["step"] >= 1]
        twin.plot(acc["step"], acc[f"{split}/acc"], color=COLORS[2], linestyle=style, label=f"{split} acc")
    twin.set_ylabel("accuracy")
    lines = axes[1].get_lines() + twin.get_lines()
    axes[1].legend(lines, [line.get_label() for line in lines], fontsize=7, loc="center left")
    axes[1].grid(alpha=0.3)

    colours = np.log10(rows["step"].to_numpy())
    points = axes[2].scatter(rows["oinfo/synergy"], rows["oinfo/redundancy"], c=colours, cmap="viridis", s=12)
    axes[2].plot(rows["oinfo/synergy"], rows["oinfo/redundancy"], color="lightgray", linewidth=0.8, zorder=0)
    axes[2].set_xlabel("max synergy (bits, -min O-information)")
    axes[2].set_ylabel("max redundancy (bits)")
    figure.colorbar(points, ax=axes[2], label="log10 step")
    axes[2].grid(alpha=0.3)
    figure.suptitle(f"{run.path.name}: O-information of hidden layer")
    figure.tight_layout()
    return save(figure, out / "oinfo.png")
