"""Lead time of progress measures: which recorded quantity moves before the test accuracy jumps.

The seeds claim that inner quantities move before grokking shows in the test accuracy: an early
synergy peak (O-info sec. 4), RPD-gradient peaks and expanding basins (Zhao-B secs. IV-V), RQI and
effective dimension (Liu sec. 3), the weight norm (Omnigrok). Here every scalar series of a run
gets one change point by the same method, and a measure's lead is how long before the change
point of the test accuracy its own lies.

Method (``change_point``), the same for every series:

1. keep the evaluated steps >= 1 with a finite value (step 0 has no place on a log axis);
2. interpolate the series linearly onto a uniform grid of u = log10(step), from the first to the
   last evaluated step, fine enough to resolve the closest two evaluations (grid spacing at most
   the smallest log10 gap between consecutive evaluated steps; between 200 and 5000 points);
3. standardize it (zero mean, unit variance; a constant series has no change point);
4. place one breakpoint under the L2 cost (a change in the mean): the split k minimizing
   sum_{i<k} (x_i - mean_<k)^2 + sum_{i>=k} (x_i - mean_>=k)^2, found exactly by ``ruptures``'
   kernel change point detection with the linear kernel (``KernelCPD(kernel="linear")``, whose
   cost is the L2 cost; dynamic programming in C, the same split as ``Binseg``/``Dynp`` with
   ``model="l2"`` and one breakpoint, faster); ``min_size`` 2, every grid point a candidate;
5. the change point is the step at the middle (in log10 step) of the two grid points around the
   split.

For a sigmoid-like jump the L2 split lies at the middle of the jump, so the change point of the
test accuracy is where it rises, and that of a measure where it moves most. The lead of a
measure in a run is ``onset - change`` in steps and ``log10(onset) - log10(change)`` in
log10-steps, ``onset`` being the change point of ``test/acc``: positive when the measure moves
first, negative when it lags.

Most measures change most when the network memorizes its training set, long before the test
accuracy moves; over the whole series their lead is then the delay of grokking itself. With
``window="fit"`` every series (test accuracy included) is cut to the steps from the run's fit
step on (train accuracy >= the threshold), which asks what moves on the plateau between
memorization and generalization.

References: Truong, Oudre, Vayatis, "Selective review of offline change point detection methods",
Signal Processing 167 (2020) (the ``ruptures`` library); issue 8 part 3.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from grokscope.analysis.phases import first_step_reaching
from grokscope.errors import ConfigError, GrokscopeError

ONSET_COLUMN = "test/acc"
WINDOWS = ("all", "fit")
MIN_GRID = 200
MAX_GRID = 5000


def log_grid(steps: np.ndarray, min_points: int = MIN_GRID, max_points: int = MAX_GRID) -> np.ndarray:
    """Uniform grid of log10(step) from the first to the last of ``steps`` (sorted, >= 1), with a
    spacing no larger than the smallest log10 gap between consecutive steps (clipped to
    ``[min_points, max_points]`` points).

    >>> log_grid(np.array([1, 10, 100]), min_points=3).tolist()
    [0.0, 1.0, 2.0]
    """
    u = np.log10(np.asarray(steps, dtype=float))
    span = u[-1] - u[0]
    gaps = np.diff(u)
    gaps = gaps[gaps > 0]
    points = math.ceil(span / gaps.min()) + 1 if gaps.size else min_points
    return np.linspace(u[0], u[-1], int(np.clip(points, min_points, max_points)))


def change_point(steps: Iterable[float], values: Iterable[float]) -> float | None:
    """The step where the series changes most: one L2 (mean-shift) breakpoint on the standardized
    series interpolated onto a uniform log10-step grid (method in the module docstring).

    Returns None when fewer than four evaluated steps >= 1 have finite values, or the series is
    constant.

    >>> steps = np.arange(1, 1001)
    >>> round(change_point(steps, (steps >= 300).astype(float)))
    300
    """
    import ruptures

    steps = np.asarray(list(steps), dtype=float)
    values = np.asarray(list(values), dtype=float)
    keep = (steps >= 1) & np.isfinite(values)
    steps, values = steps[keep], values[keep]
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    if len(steps) < 4 or steps[-1] <= steps[0]:
        return None
    grid = log_grid(steps)
    signal = np.interp(grid, np.log10(steps), values)
    spread = signal.std()
    if not np.isfinite(spread) or spread <= 1e-12 * max(1.0, float(np.abs(signal).max())):
        return None
    signal = (signal - signal.mean()) / spread
    algorithm = ruptures.KernelCPD(kernel="linear", min_size=2, jump=1).fit(signal[:, None])
    split = algorithm.predict(n_bkps=1)[0]  # index of the first point after the break
    return float(10 ** ((grid[split - 1] + grid[split]) / 2))


def scalar_columns(metrics: pd.DataFrame) -> list[str]:
    """Every metric column with at least one finite number (``step`` aside)."""
    columns = []
    for column in metrics.columns:
        if column == "step" or not pd.api.types.is_numeric_dtype(metrics[column]):
            continue
        if np.isfinite(metrics[column].to_numpy(dtype=float)).any():
            columns.append(column)
    return columns


def change_points(metrics: pd.DataFrame, start: float | None = None) -> dict[str, float]:
    """``change_point`` of every scalar column over the rows at step >= ``start`` (all rows when
    None); columns without one (constant, too short) are left out."""
    if start is not None:
        metrics = metrics[metrics["step"] >= start]
    steps = metrics["step"].to_numpy(dtype=float)
    found = {column: change_point(steps, metrics[column].to_numpy(dtype=float)) for column in scalar_columns(metrics)}
    return {column: step for column, step in found.items() if step is not None}


def run_leads(
    metrics: pd.DataFrame,
    onset_column: str = ONSET_COLUMN,
    start: float | None = None,
    changes: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Change point of every scalar column of one run's metrics table against that of
    ``onset_column``, over the rows at step >= ``start`` (all rows when None); ``changes``: the
    ``change_points`` of those rows when already computed.

    Rows: ``measure``, ``onset_step`` (change point of ``onset_column``), ``change_step``,
    ``lead_steps`` = onset - change, ``lead_log10`` = log10(onset) - log10(change). Measures
    without a change point (constant, too short) are left out; so is ``onset_column`` itself.
    Empty when ``onset_column`` has no change point.
    """
    columns = ["measure", "onset_step", "change_step", "lead_steps", "lead_log10"]
    if onset_column not in metrics:
        return pd.DataFrame(columns=columns)
    changes = change_points(metrics, start) if changes is None else changes
    onset = changes.get(onset_column)
    if onset is None:
        return pd.DataFrame(columns=columns)
    rows = []
    for column, change in changes.items():
        if column == onset_column:
            continue
        rows.append(
            {
                "measure": column,
                "onset_step": onset,
                "change_step": change,
                "lead_steps": onset - change,
                "lead_log10": math.log10(onset) - math.log10(change),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def reaches(metrics: pd.DataFrame, threshold: float, column: str = ONSET_COLUMN) -> bool:
    """Whether ``column`` reaches ``threshold`` at some evaluated step."""
    return column in metrics and bool((metrics[column].to_numpy(dtype=float) >= threshold).any())


def fit_step(metrics: pd.DataFrame, threshold: float) -> int | None:
    """The first evaluated step whose ``train/acc`` is >= ``threshold`` (None: never, or no column)."""
    if "train/acc" not in metrics:
        return None
    return first_step_reaching(metrics["step"].to_numpy(), metrics["train/acc"].to_numpy(), threshold)


def lead_table(runs: Mapping[str, pd.DataFrame], threshold: float = 0.9, window: str = "all") -> pd.DataFrame:
    """``run_leads`` of every run (label -> metrics) whose test accuracy reaches ``threshold``,
    stacked with a ``run`` column first.

    ``window``: ``all`` uses the whole series; ``fit`` only the steps from the run's fit step on
    (``train/acc`` >= ``threshold``), which asks what moves while the network sits on the
    training set it has memorized, leaving out the changes of memorization itself.
    """
    if window not in WINDOWS:
        raise ConfigError(f"window = {window!r}: unknown; allowed: {', '.join(WINDOWS)}")
    frames = []
    for label, metrics in runs.items():
        if not reaches(metrics, threshold):
            continue
        start = fit_step(metrics, threshold) if window == "fit" else None
        if window == "fit" and start is None:
            continue
        leads = run_leads(metrics, start=start)
        if not leads.empty:
            frames.append(leads.assign(run=label))
    if not frames:
        return pd.DataFrame(columns=["run", "measure", "onset_step", "change_step", "lead_steps", "lead_log10"])
    table = pd.concat(frames, ignore_index=True)
    return table[["run", *[c for c in table.columns if c != "run"]]]


def summarize_leads(table: pd.DataFrame) -> pd.DataFrame:
    """Per measure: ``runs`` (with a change point), ``first`` (runs where it moves strictly before
    the test accuracy), ``median_lead_steps`` and ``median_lead_log10``; sorted by the median lead
    in log10-steps, largest first."""
    grouped = table.groupby("measure")
    summary = pd.DataFrame(
        {
            "runs": grouped.size(),
            "first": grouped["lead_steps"].apply(lambda lead: int((lead > 0).sum())),
            "median_lead_steps": grouped["lead_steps"].median(),
            "median_lead_log10": grouped["lead_log10"].median(),
        }
    ).reset_index()
    return summary.sort_values("median_lead_log10", ascending=False, ignore_index=True)


def markdown_table(summary: pd.DataFrame) -> str:
    """The per-measure summary as a GitHub markdown table."""
    lines = [
        "| measure | runs | moves first | median lead (steps) | median lead (log10 steps) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in summary.itertuples(index=False):
        lines.append(
            f"| `{row.measure}` | {row.runs} | {row.first} | {row.median_lead_steps:+.0f} | "
            f"{row.median_lead_log10:+.3f} |"
        )
    return "\n".join(lines) + "\n"


def plot_leads(table: pd.DataFrame, summary: pd.DataFrame, path: Path, title: str = "") -> list[Path]:
    """Lead of each measure in log10-steps (one dot per run, the median as a bar), measures in
    the order of ``summary``; zero (moves together with the test accuracy) marked."""
    from grokscope.report.figures import COLORS, plt, save

    measures = list(summary["measure"])
    figure, axis = plt.subplots(figsize=(7.5, 0.32 * len(measures) + 1.6))
    jitter = np.random.default_rng(0)
    for index, measure in enumerate(measures):
        leads = table.loc[table["measure"] == measure, "lead_log10"].to_numpy()
        y = index + (jitter.random(len(leads)) - 0.5) * 0.35
        axis.scatter(leads, y, s=12, color=COLORS[0] if np.median(leads) > 0 else COLORS[3], alpha=0.7)
        axis.plot([np.median(leads)] * 2, [index - 0.3, index + 0.3], color="black", linewidth=2)
    axis.axvline(0, color="gray", linestyle="--", linewidth=1)
    axis.set_yticks(range(len(measures)))
    axis.set_yticklabels(measures, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("lead over the test-accuracy change point (log10 steps; > 0: moves first)")
    axis.grid(alpha=0.3, axis="x")
    runs = table["run"].nunique()
    axis.set_title(title or f"lead time of each measure ({runs} runs; bar: median)", fontsize=10)
    return save(figure, path)


def output_stem(window: str) -> str:
    """``leadtime`` for the whole series, ``leadtime_fit`` from the fit step on."""
    return "leadtime" if window == "all" else f"leadtime_{window}"


def leadtime(
    folder: Path, threshold: float = 0.9, out: Path | None = None, window: str = "all"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lead times over every run under ``folder``; writes ``leadtime.csv`` (one row per run and
    measure), ``leadtime.md`` (the per-measure table) and ``leadtime.png``/``.svg`` into ``out``
    (default ``folder``); ``leadtime_fit.*`` with ``window="fit"`` (see ``lead_table``).
    Returns (per-run table, per-measure summary)."""
    from grokscope.store import RunStore, find_run_folders

    folder = Path(folder)
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold = {threshold}: must be in (0, 1]")
    if window not in WINDOWS:
        raise ConfigError(f"window = {window!r}: unknown; allowed: {', '.join(WINDOWS)}")
    if not folder.is_dir():
        raise GrokscopeError(f"{folder}: no such folder")
    paths = find_run_folders(folder)
    if not paths:
        raise GrokscopeError(f"{folder}: no run folders under it")
    table = lead_table({label: RunStore(path).metrics() for label, path in paths.items()}, threshold, window)
    if table.empty:
        raise GrokscopeError(f"{folder}: none of its {len(paths)} runs has test/acc reaching threshold = {threshold}")
    summary = summarize_leads(table)
    out = Path(out) if out is not None else folder
    out.mkdir(parents=True, exist_ok=True)
    stem = output_stem(window)
    table.to_csv(out / f"{stem}.csv", index=False)
    runs = table["run"].nunique()
    scope = "whole series" if window == "all" else "series from each run's fit step on"
    header = (
        f"Lead of each measure's change point over that of test/acc ({scope}), {runs} of {len(paths)} runs "
        f"under {folder} (test/acc reaching {threshold:g}); method: grokscope.analysis.leadtime.\n\n"
    )
    (out / f"{stem}.md").write_text(header + markdown_table(summary))
    title = f"lead time of each measure, {scope} ({runs} runs; bar: median)"
    plot_leads(table, summary, out / f"{stem}.png", title=title)
    return table, summary
