"""Running a sweep: the backends that train its cells, and the resumable loop around them.

Every backend ends each cell the same way, as an ordinary run folder ``<out>/cells/<cell id>``,
and the sweep table ``<out>/sweep.parquet`` is rewritten from the run folders as cells finish:

- ``sequential``: one cell after the other, in this process;
- ``process``: a pool of ``workers`` processes, one cell per task;
- ``ensemble``: cells that can be stacked (same architecture; seeds, learning rates, weight
  decays, init scales may differ) trained together as one stacked model
  (``grokscope.train.ensemble``); the others one by one. With ``compile``, each stack's step
  is compiled by ``torch.compile`` (``grokscope.train.ensemble.compiled``);
- ``ray``: cells as Ray tasks, on the cluster at ``address`` or on a local one with ``workers``
  CPUs (``pip install grokscope[ray]``). On a cluster of several machines, ``out`` must be a
  folder that every node sees (a shared file system).

Re-running a sweep into the same folder skips finished (and diverged) cells, resumes
interrupted ones from their last checkpoint, and retrains failed ones only with
``retry_failed``.
"""

from __future__ import annotations

import os
import queue
import socket
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from grokscope.errors import ConfigError, RunFolderError
from grokscope.store import atomic_write_text, is_run_folder
from grokscope.sweep.cells import DONE, CellJob, CellState, cell_state, record_failure, same_config, train_cell
from grokscope.sweep.spec import Cell, SweepSpec, expand, load_sweep, spec_yaml
from grokscope.sweep.table import CELLS_DIR, SPEC_NAME, SweepResult, cell_row, write_table

Backend = Literal["sequential", "process", "ensemble", "ray"]
BACKENDS: tuple[str, ...] = ("sequential", "process", "ensemble", "ray")

CellReport = Callable[[str, str], None]
"""``report(cell_id, state)``: called as each cell ends (or is found done and skipped)."""


def run_sweep(
    source: SweepSpec | dict[str, Any] | str | Path,
    out: str | Path,
    backend: str = "sequential",
    workers: int = 1,
    retry_failed: bool = False,
    address: str | None = None,
    device: str | None = None,
    report: CellReport | None = None,
    compile: bool = False,
) -> SweepResult:
    """Train every cell of a sweep into ``out`` and write its table; returns the sweep read back.

    >>> sweep = run_sweep("src/grokscope/experiments/sweeps/liu_toy_lr_wd.yaml", "runs/sweeps/liu",
    ...                   backend="ensemble")                       # doctest: +SKIP
    >>> sweep.table[["cell", "phase"]]                               # doctest: +SKIP
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend = {backend!r}: unknown; allowed: {', '.join(BACKENDS)}")
    if workers < 1:
        raise ConfigError(f"workers = {workers}: must be >= 1")
    if address is not None and backend != "ray":
        raise ConfigError(f"address = {address!r}: only the ray backend connects to a cluster")
    if compile:
        if backend != "ensemble":
            raise ConfigError(f"compile = True: only the ensemble backend compiles its step, not {backend!r}")
        from grokscope.train.ensemble import check_compiler

        check_compiler()
    spec, folder = load_sweep(source)
    cells = expand(spec, folder)
    out = Path(out)
    _check_folder(out, cells)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / SPEC_NAME, spec_yaml(spec, cells))
    values = {cell.id: cell.values for cell in cells}
    rows = {cell.id: cell_row(out, cell.id, cell.values) for cell in cells}
    write_table(out, rows.values())

    def finished(cell_id: str, state: str) -> None:
        rows[cell_id] = cell_row(out, cell_id, values[cell_id])
        write_table(out, rows.values())
        if report is not None:
            report(cell_id, state)

    todo: list[CellJob] = []
    for cell in cells:
        state = cell_state(out / CELLS_DIR / cell.id)
        if state in DONE or (state == "failed" and not retry_failed):
            if report is not None:
                report(cell.id, f"{state} (kept)")
            continue
        todo.append(CellJob(cell.id, cell.config.to_dict(), str(out / CELLS_DIR / cell.id)))
    if todo:
        runner = {"sequential": _sequential, "process": _process, "ensemble": _ensemble, "ray": _ray}[backend]
        runner(todo, finished, workers=workers, address=address, device=device, compile=compile)
    return SweepResult(out)


def _check_folder(out: Path, cells: list[Cell]) -> None:
    """A sweep folder may be re-run only with the same cells: refuse one whose cell folders
    hold runs of other configs (a changed spec), naming the first such cell."""
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out}: exists and is not a folder")
    for cell in cells:
        folder = out / CELLS_DIR / cell.id
        if is_run_folder(folder) and not same_config(folder, cell.config):
            raise RunFolderError(
                f"{folder}: holds a run of another config than cell {cell.id} of this sweep; "
                "the spec changed, so write the sweep into a new --out folder"
            )


def _sequential(jobs: list[CellJob], finished: CellReport, device: str | None = None, **_: Any) -> None:
    for job in jobs:
        finished(job.id, train_cell(job, device))


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _process(jobs: list[CellJob], finished: CellReport, workers: int = 1, device: str | None = None, **_: Any) -> None:
    """A pool of ``workers`` processes (spawned: no state shared with this one), one cell per
    task; each worker gets an equal share of this machine's cores as torch threads."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(train_cell, job, device): job for job in jobs}
        for future in as_completed(futures):
            finished(futures[future].id, future.result())


def _ensemble(
    jobs: list[CellJob],
    finished: CellReport,
    workers: int = 1,
    device: str | None = None,
    compile: bool = False,
    **_: Any,
) -> None:
    """Stackable cells as stacked models (groups of equal ``stack_key``), the rest one by one.
    With ``workers`` > 1 the cells are dealt round-robin to that many spawned processes, each
    stacking its share with an equal share of the cores as torch threads: the per-cell work of
    probes and run folders then runs in parallel too."""
    if workers == 1:
        _ensemble_share(jobs, finished, device, compile)
        return
    shares = [jobs[w::workers] for w in range(workers) if jobs[w::workers]]
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = get_context("spawn")
    with context.Manager() as manager:
        reports = manager.Queue()  # (cell id, state) as each cell ends, from every worker
        with ProcessPoolExecutor(
            len(shares), mp_context=context, initializer=_init_worker, initargs=(threads,)
        ) as pool:
            futures = [pool.submit(_ensemble_worker, share, reports, device, compile) for share in shares]
            while not all(future.done() for future in futures) or not reports.empty():
                try:
                    finished(*reports.get(timeout=0.2))
                except queue.Empty:
                    continue
            for future in futures:
                future.result()  # a worker's error (or interrupt) ends the sweep here


def _ensemble_worker(jobs: list[CellJob], reports: Any, device: str | None, compile: bool) -> None:
    _ensemble_share(jobs, lambda cell_id, state: reports.put((cell_id, state)), device, compile)


def _ensemble_share(jobs: list[CellJob], finished: CellReport, device: str | None, compile: bool) -> None:
    """The cells of ``jobs``, stacked by ``stack_key`` in this process. An error in a group is
    recorded in each of its cells that had not ended, and the other groups go on."""
    from grokscope.config import parse_config
    from grokscope.train.ensemble import stack_key, train_ensemble

    configs = [parse_config(job.config) for job in jobs]
    groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        groups.setdefault(stack_key(config), []).append(i)
    for indices in groups.values():
        ended: set[int] = set()

        def done(position: int, status: str, indices: list[int] = indices, ended: set[int] = ended) -> None:
            ended.add(position)
            finished(jobs[indices[position]].id, status)

        try:
            train_ensemble(
                [configs[i] for i in indices],
                [jobs[i].folder for i in indices],
                device=device,
                done=done,
                compile=compile,
            )
        except (KeyboardInterrupt, RunFolderError):
            raise
        except Exception as error:  # one group's error must not end the other groups
            for position, i in enumerate(indices):
                if position not in ended:
                    record_failure(Path(jobs[i].folder), jobs[i].config, error)
                    finished(jobs[i].id, "failed")


def _ray(
    jobs: list[CellJob],
    finished: CellReport,
    workers: int = 1,
    address: str | None = None,
    device: str | None = None,
    **_: Any,
) -> None:
    """Each cell a Ray task (one CPU), on the cluster at ``address`` or a local one of ``workers``
    CPUs started here (and shut down at the end)."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "backend = 'ray': ray is not installed; install it with `pip install grokscope[ray]`"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        if address is not None:
            unreachable = _unreachable(address)
            if unreachable:
                raise ConfigError(f"address = {address!r}: no Ray cluster answers there ({unreachable})")
            try:
                ray.init(address=address, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as error:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise ConfigError(f"address = {address!r}: no Ray cluster to connect to ({reason})") from None
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_ray_cell)
        pending = {remote.remote(job, device): job for job in jobs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            finished(job.id, ray.get(ready[0]))
    finally:
        if started_here:
            ray.shutdown()


def _unreachable(address: str, timeout: float = 5.0) -> str | None:
    """Why nothing answers at a ``host:port`` (or ``ray://host:port``) address, or None when
    something does. ``ray.init`` itself retries an unreachable address for minutes, logging a
    warning every few seconds; other forms (``auto``) are left to it."""
    host, separator, port = address.removeprefix("ray://").rpartition(":")
    if not separator or not port.isdigit():
        return None
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return None
    except OSError as error:
        return error.strerror or str(error) or type(error).__name__


def _ray_cell(job: CellJob, device: str | None) -> CellState:
    import torch

    torch.set_num_threads(1)
    return train_cell(job, device)
