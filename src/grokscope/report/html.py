"""One self-contained HTML report of a run, a sweep or a folder of runs (issue 8, part 1).

The page needs nothing but itself: figures are embedded as base64 PNG, the style is inline, and
a Content-Security-Policy meta tag forbids every outside resource (and every script), so what
loads offline is exactly what a reader sees.

A run's report (``run_report``): config and summary (status, phase, fit and generalization
steps, key checkpoints); the timeline, one figure of stacked panels on one shared log-step axis
(accuracy, loss, then every scalar probe metric, grouped by family: ``rpd/grad/layer1..L`` share a
panel), with the fit and generalization steps as vertical lines across all panels and the change
point of each series (``analysis.leadtime.change_point``) as a marker, so a reader sees what
moves before the test accuracy; a table of those change points and their lead; then every
figure that probe families registered (``report.registry``), those that show stored arrays at a
few steps (``CHECKPOINT_FIGURES``) drawn at the key checkpoints (before fit, fit, before
generalization, generalization, end).

A sweep's report (``sweep_report``): the sweep figures (phase diagram...) and a table of cells
linking to each cell's own report (relative links; missing cell reports are written). A folder
of runs (``folder_report``): the table of runs with links, and the lead-time table and figure
when ``grokscope leadtime`` wrote them there.

>>> write_report("runs/demo/wd2")          # doctest: +SKIP
PosixPath('runs/demo/wd2/report.html')
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from grokscope.analysis.leadtime import ONSET_COLUMN, change_points, fit_step, run_leads
from grokscope.errors import GrokscopeError, RunFolderError
from grokscope.report.figures import COLORS, plt
from grokscope.report.registry import RUN_FIGURES
from grokscope.runner import Run, open_run
from grokscope.store import find_run_folders, is_run_folder

REPORT_NAME = "report.html"
CURVE_COLUMNS = ("train/acc", "test/acc", "train/loss", "test/loss")
CHECKPOINT_FIGURES = frozenset({"rpd_curves", "basins"})
"""Registered figures that draw stored arrays at a few steps; in the report they get the
stored steps nearest the key checkpoints."""
SKIPPED_FIGURES = frozenset({"curves"})
"""Registered figures written to the figures folder but not embedded (the timeline shows them)."""
MAX_LINES = 12
"""Most series drawn in one timeline panel (evenly chosen when a family has more)."""

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #555; }
pre { background: #f7f7f7; padding: 0.8em; font-size: 0.8em; overflow-x: auto; }
details summary { cursor: pointer; }
.phase { font-weight: bold; }
"""


# ---------------------------------------------------------------- embedding and small pieces


def png_data_uri(data: bytes) -> str:
    """``data:image/png;base64,...`` of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    """The PNG bytes of a matplotlib figure (closed afterwards)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def img(data: bytes, alt: str, caption: str = "") -> str:
    """A ``<figure>`` with the PNG embedded and an optional caption."""
    tag = f'<img src="{png_data_uri(data)}" alt="{html.escape(alt)}">'
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f"<figure>{tag}{text}</figure>"


def fmt(value: Any) -> str:
    """A table cell: '-' for missing, 4 significant digits for floats, integers as integers."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.4g}"
    return str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1, raw: Sequence[int] = ()) -> str:
    """An HTML table; the first ``left`` columns left-aligned; columns in ``raw`` hold HTML."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(h)}</th>' for i, h in enumerate(header))
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            text = value if i in raw else html.escape(fmt(value))
            cells.append(f'<td class="{"l" if i < left else ""}">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, body: str) -> str:
    """A whole HTML document: inline style, CSP forbidding outside resources and scripts."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n<h1>{html.escape(title)}</h1>\n{body}\n"
        '<p style="font-size:0.8em;color:#777">written by grokscope report</p></body></html>\n'
    )


# ---------------------------------------------------------------- a run


def key_checkpoints(steps: Sequence[int], fit_step: int | None, generalization_step: int | None) -> dict[str, int]:
    """The key checkpoints among the evaluated ``steps``: the last step before fit, the fit step,
    the last step before generalization, the generalization step and the last step (those that
    exist; fit and generalization steps as given).

    >>> key_checkpoints([0, 10, 20, 30, 40], 20, 40)
    {'before fit': 10, 'fit': 20, 'before generalization': 30, 'generalization': 40, 'end': 40}
    """
    steps = sorted(int(s) for s in steps)
    keys: dict[str, int] = {}
    for name, event in (("fit", fit_step), ("generalization", generalization_step)):
        if event is None:
            continue
        earlier = [s for s in steps if s < event]
        if earlier:
            keys[f"before {name}"] = earlier[-1]
        keys[name] = int(event)
    if steps:
        keys["end"] = steps[-1]
    return keys


def nearest_steps(stored: Sequence[int], targets: Iterable[int]) -> list[int]:
    """For each target, the stored step nearest to it in log(step + 1); sorted, without repeats.

    >>> nearest_steps([0, 10, 100, 1000], [12, 90, 5000])
    [10, 100, 1000]
    """
    stored = sorted(stored)
    if not stored:
        return []
    return sorted({min(stored, key=lambda s, t=t: abs(math.log1p(s) - math.log1p(t))) for t in targets})


class CheckpointView(Run):
    """A run whose stored arrays are only those nearest the key checkpoints (for figures that
    draw arrays at a few steps)."""

    def __init__(self, path: Path, targets: Sequence[int]) -> None:
        super().__init__(path)
        self.targets = list(targets)

    def arrays(self, probe: str) -> dict[int, dict[str, np.ndarray]]:
        stored = super().arrays(probe)
        if not self.targets:
            return stored
        return {step: stored[step] for step in nearest_steps(list(stored), self.targets)}


def measure_groups(metrics: pd.DataFrame) -> dict[str, list[str]]:
    """Scalar metric columns (accuracy and loss aside) grouped into panels: columns that differ
    only in a trailing index share a panel, the index being ``layer<N>`` (``rpd/grad/layer1`` ->
    ``rpd/grad/layer``), a path segment (``skills/3`` -> ``skills/``) or a module number
    (``norm/linears.0`` -> ``norm/linears.``); ``collapse/nc1`` is a name, not an index."""
    groups: dict[str, list[str]] = {}
    for column in metrics.columns:
        if column == "step" or column in CURVE_COLUMNS or not pd.api.types.is_numeric_dtype(metrics[column]):
            continue
        if not np.isfinite(metrics[column].to_numpy(dtype=float)).any():
            continue
        groups.setdefault(re.sub(r"(/|layer|\.)\d+$", r"\1", column), []).append(column)
    return groups


def _series(metrics: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    frame = metrics[["step", column]].dropna()
    frame = frame[frame["step"] >= 1]
    return frame["step"].to_numpy(dtype=float), frame[column].to_numpy(dtype=float)


def _spread_evenly(columns: list[str], count: int) -> list[str]:
    if len(columns) <= count:
        return columns
    return [columns[i] for i in np.linspace(0, len(columns) - 1, count).round().astype(int)]


def timeline_figure(run: Run, changes: dict[str, float] | None = None) -> Figure | None:
    """Stacked panels on one shared log-step axis: accuracy, loss, then each family of scalar
    measures; fit and generalization steps as vertical lines across all panels; the change point
    of every series (``changes``, computed when None) as a triangle on it. None when the run has
    no metrics at step >= 1."""
    metrics = run.metrics
    if metrics.empty or not (metrics["step"] >= 1).any():
        return None
    changes = change_points(metrics) if changes is None else changes
    summary = run.summary
    panels: list[tuple[str, list[str]]] = []
    for kind in ("acc", "loss"):
        present = [c for c in (f"train/{kind}", f"test/{kind}") if c in metrics]
        if present:
            panels.append(("accuracy" if kind == "acc" else "loss", present))
    panels += list(measure_groups(metrics).items())
    if not panels:
        return None
    figure, axes = plt.subplots(len(panels), 1, figsize=(10, 1.9 * len(panels) + 0.6), sharex=True, squeeze=False)
    for axis, (title, columns) in zip(axes[:, 0], panels):
        shown = _spread_evenly(columns, MAX_LINES)
        values_all = []
        for index, column in enumerate(shown):
            steps, values = _series(metrics, column)
            if not len(steps):
                continue
            color = COLORS[index % len(COLORS)]
            label = column[len(title) :] if column.startswith(title) and column != title else column
            axis.plot(steps, values, color=color, linewidth=1.2, label=label)
            values_all.append(values)
            found = changes.get(column)
            if found is not None:
                axis.plot([found], [np.interp(found, steps, values)], marker="v", color=color, markersize=6)
        finite = np.concatenate(values_all) if values_all else np.array([])
        finite = finite[np.isfinite(finite)]
        if finite.size and finite.min() > 0 and finite.max() / finite.min() > 50:
            axis.set_yscale("log")
        for key, style in (("fit_step", ":"), ("generalization_step", "--")):
            if summary.get(key):
                axis.axvline(summary[key], color="black", linestyle=style, linewidth=1)
        more = f" ({len(shown)} of {len(columns)} shown)" if len(shown) < len(columns) else ""
        axis.set_title(title + more, fontsize=9, loc="left")
        axis.grid(alpha=0.3)
        axis.tick_params(labelsize=7, labelbottom=True)  # step labels on every panel of a tall figure
        if len(shown) > 1 or title in ("accuracy", "loss"):
            axis.legend(fontsize=6, ncol=min(4, len(shown)), loc="best")
    figure.subplots_adjust(hspace=0.55)
    axes[-1, 0].set_xscale("log")
    axes[-1, 0].set_xlabel("step (dotted: fit step, dashed: generalization step; triangles: change points)")
    return figure


def summary_rows(run: Run) -> list[tuple[str, Any]]:
    summary = run.summary
    final = summary.get("final", {})
    rows = [
        ("status", summary.get("status")),
        ("phase", summary.get("phase")),
        ("fit step", summary.get("fit_step")),
        ("generalization step", summary.get("generalization_step")),
        ("gap (steps)", summary.get("gap_steps")),
        ("delay ratio", summary.get("delay_ratio")),
        ("steps trained / budget", f"{fmt(summary.get('step'))} / {fmt(summary.get('budget'))}"),
        ("wall time (s)", summary.get("wall_seconds")),
    ]
    rows += [(key, value) for key, value in summary.items() if "@" in key]
    rows += [(f"final {key}", final.get(key)) for key in CURVE_COLUMNS if key in final]
    return rows


LEAD_HEADER = (
    "measure",
    "change point (step)",
    "lead (steps)",
    "lead (log10 steps)",
    "from fit: change point",
    "from fit: lead (steps)",
    "from fit: lead (log10 steps)",
)


def lead_rows(
    run: Run, threshold: float = 0.9, changes: dict[str, float] | None = None
) -> tuple[float | None, float | None, list[tuple[Any, ...]]]:
    """Change point and lead over the test accuracy of every scalar series, over the whole
    series (``changes``: its change points when already computed) and from the fit step on
    (``analysis.leadtime``, windows ``all`` and ``fit``), most ahead first. Returns
    (test-accuracy change point, the same from fit, rows)."""
    metrics = run.metrics
    whole = run_leads(metrics, changes=changes)
    if whole.empty:
        return None, None, []
    start = fit_step(metrics, threshold)
    after = run_leads(metrics, start=start) if start is not None else whole.iloc[0:0]
    after = after.set_index("measure")
    rows = []
    for r in whole.sort_values("lead_log10", ascending=False).itertuples(index=False):
        row: list[Any] = [r.measure, round(r.change_step), f"{r.lead_steps:+.0f}", f"{r.lead_log10:+.3f}"]
        if r.measure in after.index:
            a = after.loc[r.measure]
            row += [round(a["change_step"]), f"{a['lead_steps']:+.0f}", f"{a['lead_log10']:+.3f}"]
        else:
            row += [None, None, None]
        rows.append(tuple(row))
    onset_after = float(after["onset_step"].iloc[0]) if len(after) else None
    return float(whole["onset_step"].iloc[0]), onset_after, rows


def phase_threshold(run: Run) -> float:
    """The run's ``analysis.phase_threshold`` (0.9 when its stored config no longer parses)."""
    try:
        return float(run.config.analysis.phase_threshold)
    except GrokscopeError:
        return 0.9


def run_figures(run: Run, out: Path, targets: Sequence[int]) -> list[tuple[str, str, Path]]:
    """Draw every registered figure into ``out`` (PNG and SVG); those in ``CHECKPOINT_FIGURES``
    from the stored arrays nearest ``targets``. Returns (name, caption, PNG path) of each."""
    view = CheckpointView(run.path, targets)
    drawn = []
    for name, function in RUN_FIGURES.items():
        written = function(view if name in CHECKPOINT_FIGURES else run, out)
        caption = (function.__doc__ or name).strip().split("\n\n")[0].replace("\n", " ").replace("``", "")
        for path in written:
            if path.suffix == ".png":
                drawn.append((name, caption, path))
    return drawn


def run_report(run: Run | str | Path, out: Path | None = None, figures: Path | None = None) -> Path:
    """Write the run's report (default ``RUN/report.html``); figures also go to ``figures``
    (default ``RUN/report/``) as PNG and SVG. Returns the HTML path."""
    run = run if isinstance(run, Run) else open_run(run)
    out = Path(out) if out is not None else run.path / REPORT_NAME
    figures = Path(figures) if figures is not None else run.path / "report"
    summary = run.summary
    metrics = run.metrics
    evaluated = metrics["step"].astype(int).tolist() if "step" in metrics else []
    keys = key_checkpoints(evaluated, summary.get("fit_step"), summary.get("generalization_step"))
    parts = ['<h2 id="summary">Summary</h2>']
    parts.append(table(["", "value"], summary_rows(run)))
    if keys:
        parts.append("<p>Key checkpoints: " + ", ".join(f"{html.escape(k)} {v}" for k, v in keys.items()) + "</p>")
    config = (run.path / "config.yaml").read_text() if (run.path / "config.yaml").is_file() else ""
    parts.append(f"<details><summary>config.yaml</summary><pre>{html.escape(config)}</pre></details>")
    parts.append('<h2 id="timeline">Accuracy, loss and every measure on one step axis</h2>')
    changes = change_points(metrics)  # one change point per series, for the timeline and the lead table
    figure = timeline_figure(run, changes)
    if figure is None:
        parts.append("<p>No metrics recorded at step 1 or later.</p>")
    else:
        parts.append(
            img(
                figure_png(figure, dpi=90),
                "timeline",
                "Each panel on the same log-step axis; triangles: change point of each series "
                "(one L2 breakpoint on the log-step axis, grokscope.analysis.leadtime).",
            )
        )
    onset, onset_after, rows = lead_rows(run, phase_threshold(run), changes)
    if rows:
        parts.append('<h2 id="leads">What moves before the test accuracy</h2>')
        after = f"; from the fit step on: step {round(onset_after)}" if onset_after is not None else ""
        parts.append(
            f"<p>Change point of {ONSET_COLUMN}: step {round(onset)}{after}. Lead = that step minus the "
            "measure's change point (positive: the measure moves first); the change points from the fit "
            "step on leave out the changes of memorization (grokscope leadtime --window fit).</p>"
        )
        parts.append(table(LEAD_HEADER, rows))
    drawn = [d for d in run_figures(run, figures, list(keys.values())) if d[0] not in SKIPPED_FIGURES]
    if drawn:
        parts.append('<h2 id="figures">Probe figures</h2>')
        if keys:
            parts.append(
                "<p>Figures of stored arrays ("
                + ", ".join(sorted(CHECKPOINT_FIGURES))
                + ") show the stored steps nearest the key checkpoints.</p>"
            )
        for name, caption, path in drawn:
            parts.append(f"<h3>{html.escape(name)}</h3>" + img(path.read_bytes(), name, caption))
    title = f"{run.path.name}: {summary.get('phase', 'no phase')} ({summary.get('status', 'no status')})"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page(title, "\n".join(parts)))
    return out


# ---------------------------------------------------------------- sweeps and folders of runs


def _link(href: str, text: str) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'


def _cell_reports(root: Path, relative: Iterable[str], write: bool) -> dict[str, str | None]:
    """{relative run path: relative link to its report, or None}; missing reports written when
    ``write``."""
    links: dict[str, str | None] = {}
    for rel in relative:
        folder = root / rel
        report = folder / REPORT_NAME
        if write and is_run_folder(folder) and not report.is_file():
            run_report(folder)
        links[rel] = f"{Path(rel).as_posix()}/{REPORT_NAME}" if report.is_file() else None
    return links


def _leadtime_section(folder: Path) -> list[str]:
    """The tables and figures ``grokscope leadtime`` wrote into ``folder`` (both windows)."""
    from grokscope.analysis.leadtime import WINDOWS, output_stem, summarize_leads

    parts = []
    for window in WINDOWS:
        stem = output_stem(window)
        if not (folder / f"{stem}.csv").is_file():
            continue
        summary = summarize_leads(pd.read_csv(folder / f"{stem}.csv"))
        scope = "whole series" if window == "all" else "from each run's fit step on"
        parts.append(f'<h2 id="{stem}">Lead time of the measures, {scope} (grokscope leadtime)</h2>')
        rows = [
            (r.measure, r.runs, r.first, f"{r.median_lead_steps:+.0f}", f"{r.median_lead_log10:+.3f}")
            for r in summary.itertuples(index=False)
        ]
        parts.append(
            table(["measure", "runs", "moves first", "median lead (steps)", "median lead (log10 steps)"], rows)
        )
        if (folder / f"{stem}.png").is_file():
            parts.append(img((folder / f"{stem}.png").read_bytes(), stem))
    return parts


def sweep_report(path: str | Path, out: Path | None = None, cells: bool = True) -> Path:
    """Write a sweep's report (default ``SWEEP/report.html``): its figures (phase diagram...)
    and a table of cells linking to each cell's report (written first when ``cells`` and
    missing)."""
    from grokscope.report.sweep import draw_sweep_figures
    from grokscope.sweep import open_sweep

    sweep = open_sweep(path)
    out = Path(out) if out is not None else sweep.path / REPORT_NAME
    frame = sweep.table
    parts = []
    drawn = [p for p in draw_sweep_figures(sweep, sweep.path / "report") if p.suffix == ".png"]
    if drawn:
        parts.append('<h2 id="figures">Figures</h2>')
        parts += [img(p.read_bytes(), p.stem, p.stem.replace("_", " ")) for p in drawn]
    links = _cell_reports(sweep.path, frame["path"].astype(str), cells)
    columns = [c for c in (*sweep.axes, "status", "phase", "fit_step", "generalization_step") if c in frame]
    final = [c for c in ("final/train/acc", "final/test/acc") if c in frame]
    rows = []
    for record in frame.to_dict("records"):
        link = links.get(str(record["path"]))
        cell = _link(link, str(record["cell"])) if link else html.escape(str(record["cell"]))
        rows.append([cell, *(record.get(c) for c in columns + final)])
    parts.append(f'<h2 id="cells">Cells ({len(frame)})</h2>')
    parts.append(table(["cell", *columns, *final], rows, raw=(0,)))
    parts += _leadtime_section(sweep.path)
    out.write_text(page(f"sweep {sweep.name}", "\n".join(parts)))
    return out


def folder_report(folder: str | Path, out: Path | None = None, cells: bool = True) -> Path:
    """Write the report of a folder holding run folders (default ``FOLDER/report.html``): a
    table of the runs linking to their reports; the verdict and main figure of a reproduction
    (``verdict.md``, ``figure.png``) and the lead-time tables and figures when present."""
    folder = Path(folder)
    found = find_run_folders(folder)
    if not found:
        raise RunFolderError(f"{folder}: not a run folder, a sweep folder, or a folder holding run folders")
    out = Path(out) if out is not None else folder / REPORT_NAME
    relative, paths = list(found), list(found.values())
    links = _cell_reports(folder, relative, cells)
    rows = []
    for rel, path in zip(relative, paths):
        summary = open_run(path).summary
        final = summary.get("final", {})
        name = _link(links[rel], rel) if links.get(rel) else html.escape(rel)
        rows.append(
            [
                name,
                summary.get("status"),
                summary.get("phase"),
                summary.get("fit_step"),
                summary.get("generalization_step"),
                final.get("train/acc"),
                final.get("test/acc"),
            ]
        )
    header = ["run", "status", "phase", "fit step", "generalization step", "final train acc", "final test acc"]
    parts = []
    if (folder / "verdict.md").is_file():  # a reproduction's folder (grokscope reproduce)
        parts += ['<h2 id="verdict">Verdict</h2>', f"<pre>{html.escape((folder / 'verdict.md').read_text())}</pre>"]
    if (folder / "figure.png").is_file():
        parts.append(img((folder / "figure.png").read_bytes(), "figure", "the main figure of this folder"))
    parts += [f'<h2 id="runs">Runs ({len(paths)})</h2>', table(header, rows, left=3, raw=(0,))]
    parts += _leadtime_section(folder)
    out.write_text(page(f"runs under {folder.name}", "\n".join(parts)))
    return out


def write_report(path: str | Path, out: Path | None = None, cells: bool = True) -> Path:
    """The report of whatever ``path`` is: a run folder, a sweep folder or a folder of runs
    (``cells``: also write the missing reports of the runs it links to)."""
    path = Path(path)
    if not path.is_dir():
        raise RunFolderError(f"{path}: no such folder")
    if is_run_folder(path):
        return run_report(path, out)
    try:
        from grokscope.sweep import is_sweep_folder
    except ImportError:  # sweeps not installed: treat it as a folder of runs
        is_sweep_folder = None
    if is_sweep_folder is not None and is_sweep_folder(path):
        return sweep_report(path, out, cells)
    return folder_report(path, out, cells)
