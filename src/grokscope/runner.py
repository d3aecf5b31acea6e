"""Config in, run folder out: the whole path of data for one run, and the ``Run`` that reads it.

>>> import grokscope
>>> config = grokscope.RunConfig.model_validate({"task": {"name": "modular_arithmetic", "p": 7},
...     "model": {"name": "mlp", "width": 16}, "training": {"steps": 20}})
>>> run = grokscope.run(config, out=tmp_path / "r", progress=False)   # doctest: +SKIP
>>> run.metrics[["step", "train/acc", "test/acc"]]                     # doctest: +SKIP
"""

from __future__ import annotations

import platform
import sys
import time
from functools import cache, cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from grokscope.analysis.phases import summarize
from grokscope.config import RunConfig, load_config, parse_config
from grokscope.errors import ConfigError, RunFolderError
from grokscope.models.base import TracedModel, build_model
from grokscope.probes.base import Probe, build_probe
from grokscope.store import RunStore, is_run_folder
from grokscope.tasks.base import Task, build_task
from grokscope.train.callbacks import CheckpointCallback, ProbeCallback, ProgressCallback
from grokscope.train.objective import Objective
from grokscope.train.optim import build_optimizer
from grokscope.train.schedule import Schedule
from grokscope.train.seeding import seed_everything
from grokscope.train.trainer import Callback, Trainer


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; other names are checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device = {name!r}: CUDA is not available on this machine; use cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device = {name!r}: MPS is not available on this machine; use cpu or auto")
    return device


class Experiment:
    """The built parts of a run (task, model, objective, optimizer, probes), before training.

    Building is deterministic in the config: the same seed gives the same initial weights.
    Everything that can reject the config happens here, before a run folder is touched.
    """

    def __init__(self, config: RunConfig, device: str | None = None) -> None:
        self.config = config
        self.device = resolve_device(device or config.device)
        self.dtype = getattr(torch, config.dtype)
        seed_everything(config.seed)
        try:
            self.task: Task = build_task(config.task).to(self.device, self.dtype)
            self.model: TracedModel = build_model(config.model, self.task).to(self.device, self.dtype)
            self.objective = Objective(self.task, config.training.loss, config.training.target_scale).to(self.device)
            self.optimizer = build_optimizer(self.model, config.optimizer)
            self.probes: list[Probe] = [build_probe(spec) for spec in config.probes]
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{config.name}: {error}") from None
        self.schedule = Schedule(config.schedule, config.training.steps)

    def trainer(self, callbacks: list[Callback]) -> Trainer:
        training = self.config.training
        return Trainer(
            self.model,
            self.task,
            self.objective,
            self.optimizer,
            steps=training.steps,
            batch_size=training.batch_size,
            data_seed=self.config.seed + 1,
            grad_clip=training.grad_clip,
            warmup_steps=training.warmup_steps,
            callbacks=callbacks,
        )


def provenance(device: torch.device) -> dict[str, Any]:
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **_installation(),
        "device": str(device),
        "command": " ".join(sys.argv),
    }


@cache
def _installation() -> dict[str, Any]:
    """Versions and platform: fixed for the life of a process, so looked up once (the package
    metadata search alone takes about a millisecond, per run folder of a sweep)."""
    try:
        grokscope_version = metadata.version("grokscope")
    except metadata.PackageNotFoundError:
        grokscope_version = None
    return {
        "grokscope": grokscope_version,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def run(
    config: RunConfig | dict | str | Path,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    device: str | None = None,
    progress: bool = True,
    callbacks: list[Callback] | None = None,
) -> Run:
    """Train a run and return it. ``out`` is the run folder (default ``runs/<name>``).

    ``resume`` continues a killed run from its last checkpoint (a finished run is returned as
    is); ``force`` replaces whatever the folder held. Without either, a folder that already
    holds a run is an error, so nothing is lost by accident.
    """
    if isinstance(config, (str, Path)):
        config = load_config(config)
    elif isinstance(config, dict):
        config = parse_config(config)
    folder = Path(out) if out is not None else Path("runs") / config.name
    if is_run_folder(folder) and not (resume or force):
        raise RunFolderError(f"{folder}: already holds a run; pass --resume to continue it or --force to replace it")
    experiment = Experiment(config, device)
    store = RunStore(folder).lock()
    try:
        return _train(experiment, store, resume, progress, callbacks or [])
    finally:
        store.unlock()


def _train(experiment: Experiment, store: RunStore, resume: bool, progress: bool, extra: list[Callback]) -> Run:
    trainer = start_run(experiment, store, resume, progress, extra)
    if trainer is None:
        return Run(store.path)
    started = time.monotonic()
    status = trainer.fit()
    return finish_run(experiment, store, trainer, status, time.monotonic() - started)


def start_run(
    experiment: Experiment,
    store: RunStore,
    resume: bool,
    progress: bool = False,
    extra: list[Callback] | None = None,
) -> Trainer | None:
    """Make a locked run folder ready to train: the trainer with the standard callbacks (probes,
    checkpoints, progress), at step 0 of a fresh folder or at the last checkpoint when resuming.
    Returns None when resuming finds the run finished.

    ``run`` calls ``trainer.fit()`` on it; an external loop (the batched ensemble in
    ``train/ensemble.py``) advances ``trainer.step`` and calls the callbacks itself. Either ends
    with ``finish_run``.
    """
    config = experiment.config
    checkpoints = store.checkpoint_steps() if resume and is_run_folder(store.path) else []
    if resume and store.summary().get("status") == "finished":
        return None
    trainer_probes = experiment.probes
    probe_callback = ProbeCallback(
        trainer_probes,
        experiment.schedule,
        store,
        config.seed,
        config.training.eval_batch_size,
        config.output.flush_seconds,
    )
    every = config.output.checkpoint_every or max(1, config.training.steps // 10)
    callbacks: list[Callback] = [
        probe_callback,
        CheckpointCallback(store, every, config.output.keep_checkpoints, trainer_probes),
        *(extra or []),
    ]
    if progress:
        callbacks.append(ProgressCallback(config.name, probe_callback))
    trainer = experiment.trainer(callbacks)
    if checkpoints:
        _restore(experiment, trainer, store, checkpoints[-1])
    else:
        store.clear()
        store.write_config({**config.to_dict(), "provenance": provenance(experiment.device)})
        store.event("started", seed=config.seed, device=str(experiment.device))
    return trainer


def finish_run(experiment: Experiment, store: RunStore, trainer: Trainer, status: str, wall: float) -> Run:
    """Write the summary (fit / generalization steps, phase, final metrics) and the final event."""
    config = experiment.config
    metrics = store.flush()
    summary = {
        "name": config.name,
        "status": status,
        "step": trainer.step,
        "budget": config.training.steps,
        "wall_seconds": round(wall, 3),
        **summarize(metrics, **config.analysis.model_dump()),
        "final": _final_metrics(metrics),
    }
    if status == "diverged":
        summary["diverged_at_step"] = trainer.step
        summary["last_loss"] = trainer.last_loss
    store.write_summary(summary)
    store.event(status, step=trainer.step, wall_seconds=round(wall, 3))
    return Run(store.path)


def _restore(experiment: Experiment, trainer: Trainer, store: RunStore, step: int) -> None:
    weights, state = store.load_checkpoint(step, experiment.device)
    experiment.model.load_state_dict(weights)
    trainer.load_state_dict(state)
    for probe in experiment.probes:
        probe.load_state_dict(state.get("probes", {}).get(probe.name, {}))
    store.restore_metrics(step)
    store.event("resumed", step=step)


def _final_metrics(metrics: pd.DataFrame) -> dict[str, float]:
    """The last recorded value of each metric column."""
    final: dict[str, float] = {}
    for column in metrics.columns:
        if column == "step":
            continue
        values = metrics[column].to_numpy(dtype=float)
        recorded = np.flatnonzero(~np.isnan(values))
        if recorded.size:
            final[column] = float(values[recorded[-1]])
    return final


class Run:
    """A run folder, read back: config, metrics table, summary, arrays, weights.

    >>> run = grokscope.open_run("runs/demo/wd2.0")   # doctest: +SKIP
    >>> run.summary["phase"], run.metrics["test/acc"].max()   # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not is_run_folder(self.path):
            raise RunFolderError(f"{self.path}: not a run folder (no config.yaml)")
        self.store = RunStore(self.path)

    def __repr__(self) -> str:
        summary = self.summary
        return f"Run({str(self.path)!r}, status={summary.get('status')!r}, phase={summary.get('phase')!r})"

    @cached_property
    def config(self) -> RunConfig:
        return parse_config(self.store.config(), source=str(self.path / "config.yaml"))

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per evaluation step; columns grouped by probe (``train/acc``, ``norm/total``)."""
        return self.store.metrics()

    @property
    def summary(self) -> dict[str, Any]:
        return self.store.summary()

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.store.events()

    def arrays(self, probe: str) -> dict[int, dict[str, np.ndarray]]:
        """{step: {name: array}} of everything ``probe`` stored."""
        return dict(self.store.arrays(probe))

    def checkpoint_steps(self) -> list[int]:
        return self.store.checkpoint_steps()

    def load_model(self, step: int | None = None, device: str = "cpu") -> TracedModel:
        """The model with the weights of a checkpoint (the last one by default)."""
        steps = self.checkpoint_steps()
        if not steps:
            raise RunFolderError(f"{self.path}: has no checkpoint")
        step = steps[-1] if step is None else step
        experiment = Experiment(self.config, device)
        weights, _ = self.store.load_checkpoint(step, experiment.device)
        experiment.model.load_state_dict(weights)
        return experiment.model


def open_run(path: str | Path) -> Run:
    """Open an existing run folder."""
    return Run(path)
