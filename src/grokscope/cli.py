"""The ``grokscope`` command. Every verb is a thin layer over the Python API; bad input ends
in one readable line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from grokscope.errors import GrokscopeError

app = typer.Typer(
    name="grokscope",
    help="A laboratory for the dynamics of learning: train, measure, classify and draw grokking.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
if not console.is_terminal:  # piped or captured: no terminal width to respect, keep tables whole
    console = Console(width=160)

OutOption = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder.")]
DeviceOption = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:N, mps or auto.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Argument(help="YAML run config (see `grokscope init`).")],
    out: OutOption = None,
    resume: Annotated[bool, typer.Option(help="Continue a killed run from its last checkpoint.")] = False,
    force: Annotated[bool, typer.Option(help="Replace a run already in the folder.")] = False,
    device: DeviceOption = None,
    quiet: QuietOption = False,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key, e.g. --set optimizer.lr=0.01 --set seed=3.")
    ] = None,
) -> None:
    """Train one run into a run folder (default runs/<name>)."""
    from grokscope.config import load_config
    from grokscope.runner import run

    result = run(
        load_config(config, overrides or ()), out=out, resume=resume, force=force, device=device, progress=not quiet
    )
    _print_summaries({result.path.name: result.summary})
    console.print(f"run folder: {result.path}")


@app.command()
def demo(
    out: OutOption = None,
    device: DeviceOption = None,
    quiet: QuietOption = False,
) -> None:
    """Grokking in three minutes: modular addition at weight decay 2.0 and 0.1 (O-info fig. 1)."""
    from grokscope.experiments import reproduce

    out = out or Path("runs") / "demo"
    console.print(
        "[bold]grokscope demo[/]: modular addition p = 97, 40 % train, MLP 194-250-97, full-batch AdamW "
        "lr 0.03, weight decay 2.0 and 0.1 (O-info sec. 4)"
    )
    started = time.monotonic()
    verdict = reproduce("demo_weight_decay", out=out, force=True, device=device, progress=not quiet)
    from grokscope.runner import open_run

    summaries = {label: open_run(out / label).summary for label in ("wd2", "wd01")}
    _print_summaries(summaries)
    console.print(f"claim: weight decay 2.0 generalizes sooner than 0.1 -> [bold]{verdict.label}[/]")
    console.print(f"figure: {out / 'figure.png'}   runs: {out / 'wd2'}, {out / 'wd01'}")
    console.print(f"wall time: {time.monotonic() - started:.0f} s")


@app.command()
def show(run_folder: Annotated[Path, typer.Argument(help="A run folder.")]) -> None:
    """Print a run's summary."""
    from grokscope.runner import open_run

    result = open_run(run_folder)
    _print_summaries({result.path.name: result.summary})
    final = result.summary.get("final", {})
    if final:
        table = Table(title="final metrics", show_header=True)
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in final.items():
            table.add_row(key, f"{value:.4g}")
        console.print(table)


@app.command("ls")
def list_runs(folder: Annotated[Path, typer.Argument(help="Folder to search for runs.")] = Path("runs")) -> None:
    """List the runs under a folder with their status and phase."""
    from grokscope.store import RunStore, find_run_folders

    if not folder.is_dir():
        raise GrokscopeError(f"{folder}: no such folder")
    paths = find_run_folders(folder)
    if not paths:
        console.print(f"no runs under {folder}")
        return
    _print_summaries({label: RunStore(path).summary() for label, path in paths.items()})


@app.command()
def init(
    preset: Annotated[str, typer.Argument(help="Preset to start from.")] = "modadd",
    list_presets: Annotated[bool, typer.Option("--list", help="List the presets.")] = False,
) -> None:
    """Print a complete, commented YAML run config to start from."""
    from grokscope.experiments import preset_names, preset_path

    if list_presets:
        for name in preset_names():
            first = preset_path(name).read_text().splitlines()[0].lstrip("# ")
            console.print(f"[bold]{name}[/]  {first}", highlight=False)
        return
    sys.stdout.write(preset_path(preset).read_text())


@app.command()
def reproduce(
    name: Annotated[str | None, typer.Argument(help="Catalogue entry (see --list).")] = None,
    list_entries: Annotated[bool, typer.Option("--list", help="List the reproduction catalogue.")] = False,
    smoke: Annotated[bool, typer.Option(help="Tiny size that runs in well under a minute.")] = False,
    out: OutOption = None,
    force: Annotated[bool, typer.Option(help="Retrain runs that already exist.")] = False,
    device: DeviceOption = None,
    quiet: QuietOption = False,
    verdicts_in: Annotated[
        Path | None, typer.Option("--table", help="Print the markdown table of the verdicts under this folder.")
    ] = None,
    thumbnails: Annotated[
        Path | None, typer.Option("--thumbnails", help="With --table: folder for scaled copies of the figures.")
    ] = None,
) -> None:
    """Run a reproduction of a seed paper's claim and write its verdict."""
    from grokscope.experiments import list_reproductions
    from grokscope.experiments import reproduce as reproduce_entry

    if verdicts_in is not None:
        from grokscope.experiments.verdicts import verdict_table

        sys.stdout.write(verdict_table(verdicts_in, thumbnails, link_base=Path.cwd()))
        return
    if list_entries or name is None:
        table = Table(show_header=True, show_lines=True)
        for column in ("name", "paper / figure", "claim", "rule", "minutes"):
            table.add_column(column)
        for entry in list_reproductions():
            table.add_row(
                entry.name, f"{entry.paper}\n{entry.figure}", entry.claim, entry.rule, f"{entry.expected_minutes:g}"
            )
        console.print(table)
        return
    verdict = reproduce_entry(name, out=out, smoke=smoke, force=force, device=device, progress=not quiet)
    console.print((verdict.out / "verdict.md").read_text(), highlight=False)
    console.print(f"verdict files: {verdict.out / 'verdict.json'}, figure: {verdict.out / 'figure.png'}")


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="YAML sweep spec: base config and axes.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Sweep folder (cells/, sweep.parquet).")],
    backend: Annotated[str, typer.Option(help="sequential, process, ensemble or ray.")] = "sequential",
    workers: Annotated[int, typer.Option(help="Processes (process and ensemble backends) or local Ray CPUs.")] = 1,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (ray backend).")] = None,
    retry_failed: Annotated[bool, typer.Option(help="Retrain cells whose training failed.")] = False,
    compile: Annotated[
        bool,
        typer.Option(
            help="Ensemble backend: compile the stacked step (torch.compile, needs a C++ compiler). "
            "About a quarter faster per step after a one-time compile of 6-30 s; it rounds as Inductor "
            "does, where the eager step computes each cell's bits as its run alone would."
        ),
    ] = False,
    device: DeviceOption = None,
) -> None:
    """Train every cell of a sweep (resumable: finished cells are kept) and draw its phase diagram."""
    from grokscope.report.sweep import draw_sweep_figures
    from grokscope.sweep import run_sweep

    started = time.monotonic()
    count = {"n": 0}

    def report_cell(cell_id: str, state: str) -> None:
        count["n"] += 1
        console.print(f"[{count['n']}] {cell_id}: {state}", highlight=False)

    result = run_sweep(
        spec,
        out,
        backend=backend,
        workers=workers,
        retry_failed=retry_failed,
        address=address,
        device=device,
        report=report_cell,
        compile=compile,
    )
    table = result.table
    console.print(
        f"cells: {len(table)}; status: {table['status'].value_counts().to_dict()}; "
        f"phases: {table['phase'].value_counts().to_dict()}",
        highlight=False,
    )
    for path in draw_sweep_figures(result, out / "report"):
        console.print(f"wrote {path}")
    console.print(f"sweep table: {out / 'sweep.parquet'}   wall time: {time.monotonic() - started:.0f} s")


@app.command()
def report(
    folder: Annotated[Path, typer.Argument(help="A run folder, a sweep folder or a folder of runs.")],
    out: OutOption = None,
    open_page: Annotated[bool, typer.Option("--open", help="Open the report in a web browser.")] = False,
    cells: Annotated[
        bool, typer.Option(help="Sweep or folder: also write the missing reports of its runs (linked).")
    ] = True,
) -> None:
    """Write one self-contained HTML report (FOLDER/report.html); a run's figures also go to
    RUN/report/ as PNG and SVG, a sweep's phase diagram to SWEEP/report/."""
    from grokscope.report.html import REPORT_NAME, write_report

    path = write_report(folder, out / REPORT_NAME if out else None, cells=cells)
    console.print(f"wrote {path}")
    if open_page:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


@app.command()
def data(
    dataset: Annotated[str, typer.Argument(help="Dataset to fetch: mnist.")],
    download: Annotated[
        bool, typer.Option("--download", help="Fetch the files (the only command that uses the network).")
    ] = False,
    folder: Annotated[
        Path | None, typer.Option("--folder", help="Where to put them (default: $GROKSCOPE_DATA/mnist).")
    ] = None,
) -> None:
    """Show where a dataset's files are expected, or fetch them with --download (checksums verified)."""
    from grokscope.errors import ConfigError
    from grokscope.tasks.idx import default_data_folder, download_mnist, load_mnist

    if dataset != "mnist":
        raise ConfigError(f"dataset = {dataset!r}: only 'mnist' is downloaded; digits and mnist1d need no files")
    folder = folder or default_data_folder() / "mnist"
    if download:
        for path in download_mnist(folder):
            console.print(f"verified {path}")
        return
    arrays = load_mnist(folder)  # a clear DataError naming the missing file when absent
    console.print(f"{folder}: " + ", ".join(f"{key} {value.shape}" for key, value in arrays.items()))


@app.command()
def leadtime(
    folder: Annotated[Path, typer.Argument(help="A sweep folder or any folder of run folders.")],
    threshold: Annotated[float, typer.Option(help="Use runs whose test accuracy reaches this.")] = 0.9,
    out: OutOption = None,
    window: Annotated[
        str, typer.Option(help="all: whole series; fit: from each run's fit step on (train acc >= threshold).")
    ] = "all",
) -> None:
    """Which measure moves before test accuracy: change-point lead of every recorded measure."""
    from grokscope.analysis.leadtime import leadtime as lead_times
    from grokscope.analysis.leadtime import output_stem

    table, summary = lead_times(folder, threshold=threshold, out=out, window=window)
    rows = Table(title=f"lead over the test-accuracy change point, {table['run'].nunique()} runs", show_header=True)
    for column in ("measure", "runs", "moves first", "median lead (steps)", "median lead (log10 steps)"):
        rows.add_column(column, justify="left" if column == "measure" else "right")
    for row in summary.itertuples(index=False):
        rows.add_row(
            row.measure,
            str(row.runs),
            str(row.first),
            f"{row.median_lead_steps:+.0f}",
            f"{row.median_lead_log10:+.3f}",
        )
    console.print(rows)
    stem = output_stem(window)
    console.print(f"wrote {(out or folder) / stem}.csv, {stem}.md, {stem}.png")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _print_summaries(summaries: dict[str, dict[str, Any]]) -> None:
    table = Table(show_header=True)
    for column in (
        "run",
        "status",
        "phase",
        "fit step",
        "gen. step",
        "fit@0.99",
        "gen@0.99",
        "delay",
        "train acc",
        "test acc",
    ):
        table.add_column(column, justify="left" if column in ("run", "status", "phase") else "right")
    for label, summary in summaries.items():
        final = summary.get("final", {})
        table.add_row(
            label,
            _fmt(summary.get("status", "running?")),
            _fmt(summary.get("phase")),
            _fmt(summary.get("fit_step")),
            _fmt(summary.get("generalization_step")),
            _fmt(summary.get("fit_step@0.99")),
            _fmt(summary.get("generalization_step@0.99")),
            _fmt(summary.get("delay_ratio")),
            _fmt(final.get("train/acc")),
            _fmt(final.get("test/acc")),
        )
    console.print(table)


def main() -> None:
    """Entry point: run the app, turning grokscope's errors into one line and exit status 2."""
    try:
        app()
    except GrokscopeError as error:
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; resume with --resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
