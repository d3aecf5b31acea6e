"""Embedding figures of a run (Liu fig. 1, fig. 7 left, fig. 21): effective dimension over
training and the embeddings on principal components before and after training."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from grokscope.measures.embedding import fourier_concentration, pca, project
from grokscope.report.figures import COLORS, plt, save
from grokscope.report.registry import run_figure
from grokscope.runner import Run


def stored_tables(run: Run) -> dict[int, np.ndarray]:
    """{step: (n_tokens, d) embedding table} of every step the embedding probe stored."""
    return {step: arrays["table"] for step, arrays in sorted(run.arrays("embedding").items()) if "table" in arrays}


def scatter_tokens(axis, coordinates: np.ndarray, title: str) -> None:
    """Tokens on two principal components, coloured by token id and labelled by it."""
    n = len(coordinates)
    axis.scatter(coordinates[:, 0], coordinates[:, 1], c=np.arange(n), cmap="hsv", s=18)
    if n <= 60:
        for token, (x, y) in enumerate(coordinates):
            axis.annotate(str(token), (x, y), fontsize=6, alpha=0.7)
    axis.set_xlabel("PC 1")
    axis.set_ylabel("PC 2")
    axis.set_title(title, fontsize=9)
    axis.set_aspect("equal", adjustable="datalim")


def embedding_panels(tables: dict[int, np.ndarray], steps: list[int], axes) -> None:
    """Each of ``steps`` on its own first two PCs, then the initial table on the PCs of the last
    step (Liu fig. 21 right)."""
    last = torch.from_numpy(tables[steps[-1]])
    last_basis = pca(last)
    for axis, step in zip(axes, steps):
        table = torch.from_numpy(tables[step])
        scatter_tokens(axis, project(table, pca(table), 2).numpy(), f"step {step}: own PCs")
    first = torch.from_numpy(tables[min(tables)])
    scatter_tokens(
        axes[len(steps)], project(first, last_basis, 2).numpy(), f"step {min(tables)} on PCs of step {steps[-1]}"
    )


@run_figure("embedding")
def embedding_figure(run: Run, out: Path) -> list[Path]:
    """``embedding.png``: effective dimension exp(S) with test accuracy (left), embeddings at
    initialization and at the end on their own first two PCs, and the initial embeddings on the
    final PCs."""
    metrics = run.metrics
    if "embedding/effective_dim" not in metrics:
        return []
    tables = stored_tables(run)
    panels = 1 + (3 if len(tables) >= 2 else 0)
    figure, axes = plt.subplots(1, panels, figsize=(4.8 * panels, 4.2), squeeze=False)
    axes = axes[0]
    rows = metrics[["step", "embedding/effective_dim"]].dropna()
    rows = rows[rows["step"] >= 1]
    axes[0].plot(rows["step"], rows["embedding/effective_dim"], color=COLORS[0], label="effective dimension exp(S)")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("effective dimension")
    twin = axes[0].twinx()
    acc = metrics[["step", "test/acc"]].dropna() if "test/acc" in metrics else None
    if acc is not None:
        acc = acc[acc["step"] >= 1]
        twin.plot(acc["step"], acc["test/acc"], color=COLORS[1], label="test acc")
        twin.set_ylabel("test accuracy")
    lines = axes[0].get_lines() + twin.get_lines()
    axes[0].legend(lines, [line.get_label() for line in lines], fontsize=7)
    axes[0].grid(alpha=0.3)
    if len(tables) >= 2:
        embedding_panels(tables, [min(tables), max(tables)], axes[1:])
    figure.suptitle(f"{run.path.name}: embedding geometry")
    figure.tight_layout()
    return save(figure, out / "embedding.png")


def plot_transformer_embeddings(
    rows: Sequence, runs: dict[str, Run], shown: str, path: Path, title: str = ""
) -> list[Path]:
    """Liu fig. 1 and fig. 7 (left) over runs (``experiments.liu.EmbeddingTimeline``): effective
    dimension exp(S) of every run over training with its generalization step (dashed) and test
    accuracy (thin), then the embeddings of run ``shown`` on their own first two PCs at
    initialization, after memorization and at the end, and the initial ones on the final PCs
    (appendix K); each panel's title gives the Fourier concentration of its two coordinates."""
    figure, axes = plt.subplots(1, 5, figsize=(24, 4.6))
    twin = axes[0].twinx()
    for index, row in enumerate(rows):
        color = COLORS[index % len(COLORS)]
        frame = runs[row.label].metrics
        dims = frame[["step", "embedding/effective_dim"]].dropna()
        dims = dims[dims["step"] >= 1]
        axes[0].plot(dims["step"], dims["embedding/effective_dim"], color=color, label=f"{row.label} exp(S)")
        acc = frame[["step", "test/acc"]].dropna()
        acc = acc[acc["step"] >= 1]
        twin.plot(acc["step"], acc["test/acc"], color=color, linewidth=0.8, alpha=0.5)
        if np.isfinite(row.generalization_step):
            axes[0].axvline(row.generalization_step, color=color, linestyle="--", linewidth=1)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("effective dimension exp(S) (thick)")
    twin.set_ylabel("test accuracy (thin); dashed: test acc >= 0.9")
    twin.set_ylim(-0.02, 1.02)
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    row = next(r for r in rows if r.label == shown)
    tables = stored_tables(runs[shown])
    final = torch.from_numpy(tables[row.end_step])
    final_basis = pca(final)
    panels = [
        (row.init_step, None, "initialization"),
        (row.before_step, None, "memorized, before generalization"),
        (row.end_step, None, "end"),
        (row.init_step, final_basis, "initialization on the final PCs"),
    ]
    for axis, (step, basis, what) in zip(axes[1:], panels):
        table = torch.from_numpy(tables[step])
        coordinates = project(table, basis if basis is not None else pca(table), 2).numpy()
        share, frequency = fourier_concentration(torch.from_numpy(coordinates))
        scatter_tokens(axis, coordinates, f"{shown} step {step}: {what}\nFourier share {share:.2f} (k = {frequency})")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save(figure, path)
