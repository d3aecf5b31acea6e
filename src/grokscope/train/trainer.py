"""The training loop. It reads top to bottom; measuring, checkpointing and the progress bar hang
on callbacks (the trainer's only extension point), never on branches inside the loop."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

from grokscope.models.base import TracedModel
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective
from grokscope.train.sampler import EpochSampler
from grokscope.train.seeding import global_rng_state, set_global_rng_state

Status = Literal["running", "finished", "diverged", "interrupted"]


class Callback:
    """Hooks called by ``Trainer.fit``. ``on_step`` runs at every step s (after s updates;
    step 0 is the initialization), so a callback decides itself which steps it acts on."""

    changes_weights: bool = True
    """Whether ``on_step`` may leave the weights other than it found them. The batched ensemble
    runs a step's training forward early, during the evaluation before it, only when no callback
    of its cells does (``StackedGroup._run_ahead``); callbacks that only measure or save say False."""

    def on_train_start(self, trainer: Trainer) -> None:
        pass

    def on_step(self, trainer: Trainer) -> None:
        pass

    def on_train_end(self, trainer: Trainer) -> None:
        pass


class Trainer:
    """Minimizes ``objective`` on ``task.x_train`` for ``steps`` updates of ``optimizer``."""

    def __init__(
        self,
        model: TracedModel,
        task: Task,
        objective: Objective,
        optimizer: torch.optim.Optimizer,
        steps: int,
        batch_size: int | None = None,
        data_seed: int = 0,
        grad_clip: float | None = None,
        warmup_steps: int = 0,
        callbacks: list[Callback] | None = None,
    ) -> None:
        self.model = model
        self.task = task
        self.objective = objective
        self.optimizer = optimizer
        self.budget = steps
        self.grad_clip = grad_clip
        self.warmup_steps = warmup_steps
        self.callbacks = callbacks or []
        self.sampler = EpochSampler(len(task.x_train), batch_size, data_seed)
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.step = 0
        self.status: Status = "running"
        self.last_loss = math.nan
        self.resumed = False

    def train_step(self) -> torch.Tensor:
        """One update on the next batch; returns the batch loss (before the update)."""
        self.model.train()
        batch = self.sampler.next()
        x, y = self.task.x_train, self.task.y_train
        if batch is not None:
            batch = batch.to(x.device)
            x, y = x[batch], y[batch]
        if self.warmup_steps:
            factor = min(1.0, (self.step + 1) / self.warmup_steps)
            for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base_lr * factor
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.objective.loss(self.model(x), y)
        loss.backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return loss.detach()

    def fit(self) -> Status:
        for callback in self.callbacks:
            callback.on_train_start(self)
        try:
            if not self.resumed:
                self._on_step()
            while self.step < self.budget:
                loss = self.train_step()
                self.step += 1
                self.last_loss = float(loss)
                if not math.isfinite(self.last_loss):
                    self.status = "diverged"
                    break
                self._on_step()
            else:
                self.status = "finished"
        except KeyboardInterrupt:
            self.status = "interrupted"
        for callback in self.callbacks:
            callback.on_train_end(self)
        return self.status

    def _on_step(self) -> None:
        for callback in self.callbacks:
            callback.on_step(self)

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the weights that a resume needs to continue bit for bit."""
        return {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": global_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        set_global_rng_state(state["rng"])
        self.resumed = True
