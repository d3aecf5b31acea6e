"""The callbacks every run uses: probes at scheduled steps, checkpoints, the progress bar."""

from __future__ import annotations

import math
import time
from contextlib import ExitStack, nullcontext
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from grokscope.probes.base import Probe, ProbeContext, ProbeOutput, untouched
from grokscope.store import RunStore
from grokscope.train.schedule import Schedule
from grokscope.train.trainer import Callback, Trainer


class ProbeCallback(Callback):
    """Runs each probe at the steps of its cadence and hands the results to the store."""

    changes_weights = False  # a probe that perturbs the weights restores them (``untouched``)

    def __init__(
        self,
        probes: list[Probe],
        schedule: Schedule,
        store: RunStore,
        seed: int,
        eval_batch_size: int,
        flush_seconds: float = 30.0,
    ) -> None:
        self.probes = probes
        self.store = store
        self.seed = seed
        self.eval_batch_size = eval_batch_size
        self.flush_seconds = flush_seconds
        self.steps = {probe.name: schedule.steps_for(probe.cadence) for probe in probes}
        self.any_step = frozenset().union(*self.steps.values())
        self.latest: dict[str, float] = {}
        self._given: tuple[int, dict[str, torch.Tensor], dict[str, ProbeOutput]] = (-1, {}, {})

    def provide(
        self, step: int, outputs: dict[str, torch.Tensor] | None = None, results: dict[str, ProbeOutput] | None = None
    ) -> None:
        """What was measured elsewhere for ``step`` (the batched ensemble measures all its cells
        at once): model outputs on whole splits in eval mode, which the probes of the step read
        instead of running the model again, and whole results by probe name, recorded as given."""
        self._given = (step, outputs or {}, results or {})

    def on_train_start(self, trainer: Trainer) -> None:
        if not trainer.resumed:
            for probe in self.probes:
                with untouched(trainer.model, snapshot_weights=True):
                    probe.setup(trainer.model, trainer.task, trainer.objective)

    def on_step(self, trainer: Trainer) -> None:
        step = trainer.step
        if step not in self.any_step:
            return
        given_step, outputs, results = self._given
        self._given = (-1, {}, {})
        if given_step != step:
            outputs, results = {}, {}
        with ExitStack() as guard:
            context: ProbeContext | None = None
            for probe in self.probes:
                if step not in self.steps[probe.name]:
                    continue
                if probe.name in results:
                    self._record(step, results[probe.name], probe.name)
                    continue
                if context is None:
                    context = ProbeContext(
                        trainer.model, trainer.task, trainer.objective, step, self.seed, self.eval_batch_size
                    )
                    context._outputs.update(outputs)
                    # one guard of RNGs, modes and gradients for all probes of the step (it costs as
                    # much as a cheap probe); weights are snapshotted around each probe that
                    # perturbs them, so every probe measures the weights as training left them
                    guard.enter_context(untouched(trainer.model, snapshot_weights=False))
                with untouched(trainer.model, snapshot_weights=True) if probe.touches_weights else nullcontext():
                    output = probe(context)
                self._record(step, output, probe.name)
        if self.store.flush_due(self.flush_seconds):
            self.store.flush()

    def _record(self, step: int, output: ProbeOutput, probe_name: str) -> None:
        """Scalars to the metrics table, arrays to ``arrays/<probe>/<step>.npz``."""
        scalars: dict[str, float] = {}
        arrays: dict[str, np.ndarray] = {}
        for key, value in output.items():
            if isinstance(value, np.ndarray) and value.ndim > 0:
                arrays[key] = value
            else:
                scalars[key] = float(value)
        if scalars:
            self.store.add_metrics(step, scalars)
            self.latest.update(scalars)
        if arrays:
            self.store.write_arrays(probe_name, step, arrays)

    def on_train_end(self, trainer: Trainer) -> None:
        self.store.flush()


class CheckpointCallback(Callback):
    """Saves weights and trainer state every ``every`` steps and at the end of the budget."""

    changes_weights = False

    def __init__(self, store: RunStore, every: int, keep: int, probes: list[Probe]) -> None:
        self.store = store
        self.every = every
        self.keep = keep
        self.probes = probes

    def on_step(self, trainer: Trainer) -> None:
        if trainer.step > 0 and (trainer.step % self.every == 0 or trainer.step == trainer.budget):
            self.save(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        # an interrupted run keeps its progress; a diverged one keeps its last finite checkpoint
        if trainer.status == "interrupted" and trainer.step not in self.store.checkpoint_steps():
            self.save(trainer)

    def save(self, trainer: Trainer) -> None:
        self.store.flush()
        state = trainer.state_dict()
        state["probes"] = {probe.name: probe.state_dict() for probe in self.probes}
        self.store.save_checkpoint(trainer.step, trainer.model.state_dict(), state, keep=self.keep)


class ProgressCallback(Callback):
    """A progress bar with step, train/test loss and accuracy (redrawn at most 10 times a second)."""

    changes_weights = False

    def __init__(self, label: str, probe_callback: ProbeCallback, console: Console | None = None) -> None:
        self.label = label
        self.source = probe_callback
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.task_id: Any = None
        self._last = 0.0

    def on_train_start(self, trainer: Trainer) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.task_id = self.progress.add_task(self.label, total=trainer.budget, completed=trainer.step, metrics="")

    def on_step(self, trainer: Trainer) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and trainer.step < trainer.budget:
            return
        self._last = now
        self._draw(trainer)

    def _draw(self, trainer: Trainer) -> None:
        assert self.progress is not None
        latest = self.source.latest
        parts = []
        for key in ("train/loss", "test/loss", "train/acc", "test/acc"):
            value = latest.get(key)
            if value is not None and math.isfinite(value):
                parts.append(f"{key} {value:.3g}")
        self.progress.update(self.task_id, completed=trainer.step, metrics="  ".join(parts))

    def on_train_end(self, trainer: Trainer) -> None:
        if self.progress is not None:
            self._draw(trainer)
            self.progress.stop()
