"""Batched ensembles: runs that share an architecture, trained together as one stacked model.

Cells of a sweep that differ only in seed, learning rates, weight decays or initialization
scales have parameters of the same shapes and the same forward function. Stacking each parameter
along a new leading cell axis (C, ...) turns C small forward/backward passes into one batched
pass (the forward written on stacks, ``train.stacked_forward``, for the MLP and the Liu toy
model; ``torch.func.vmap`` over ``functional_call`` for other models; differentiated by autograd
either way), and C optimizer steps into one step on stacked tensors with per-cell learning rates
and weight decays. On small models, where one run's step is dominated by Python and dispatch
overhead, that is many times the throughput of running the cells one after the other.

Every cell stays an ordinary run: it has its own ``Experiment`` (initialized from its own seed,
exactly as ``grokscope.run`` would), its own run folder, ``Trainer`` (step count, minibatch
sampler), probes, checkpoints and summary, set up and closed by ``runner.start_run`` /
``runner.finish_run``. The cell's parameters are views into the stacks (``param.data =
stack[i]``), so probes read the live weights without copies, and a probe that perturbs weights
and restores them does so in the stack. A checkpoint of a cell holds that cell's weights and
its optimizer state in torch's own format, so a cell can be resumed by the sequential runner
or by another ensemble, and vice versa.

Measuring is batched as well. At a step where cells evaluate, their outputs on both splits come
from one batched forward pass (``StackedGroup.evaluate``), and every probe that implements
``StackMeasure.measure_stack`` (loss and accuracy, weight norms) measures all cells in one call
(``StackedGroup.measure``); each cell's probe callback records those results as its own and runs
its other probes itself, on the shared outputs. When all cells evaluate on full-batch training,
the train split's outputs are those of the next step's training forward, which the evaluation
runs early and hands to that step (``StackedGroup._run_ahead``). Training and measuring a
100-cell Liu grid this way takes a fourth to a fifth of the time of the sequential runs on 2
cores (``benchmarks/sweep_ensemble.py``; the ratio depends on the machine and the day); the
arithmetic of the stacked step, not Python, is then most of the time. On CPU, a group is cut into
stacks of at least 25 cells trained side by side, up to one per torch thread, each in a thread
of its own (``side_by_side``): the Python of one stack's step and callbacks then runs while the
other's arithmetic does.

The stacked step computes each cell's bits. The model's linear layers go through
``train.stacked_linear`` (each cell's ``addmm`` and its backward, batched where MKL computes a batch
as it computes each matrix, cell by cell where not), called by the stacked forward or, under
``vmap``, by ``exact_linears``; the forward is differentiated with plain autograd, and wherever the
fused Adam kernel would round a range of cells otherwise than each cell alone, a stack is stepped by
the kernel's arithmetic written out, or a cell at a time (``stacked_adam.fused_adam_way``). For Adam
/ AdamW runs of linear layers and elementwise operations (the MLP, the Liu toy model) every
parameter at every step is then bitwise the sequential run's (SGD and gradient clipping agree to
rounding), and so is every recorded metric in float32 (``tests/sweep/test_ensemble.py``), and with
them every phase label. Before (``vmap`` over ``torch.func.grad``: batched matmul, then a separate
bias add) the two paths agreed to rounding only, and over 2e4 steps that moved 2 cells of the 100 of
``benchmarks/liu_grid_100.yaml`` into another phase: cells at a phase boundary are labelled by
rounding (a float64 run labels them otherwise again).

With ``compile`` (``grokscope sweep --backend ensemble --compile``), each group compiles its
stacked forward and backward (``torch.func.grad`` of the model's own layers) with
``torch.compile`` (``compiled``): about a quarter faster per step, after a first compilation,
but with Inductor's rounding, which is not a single run's. Parameters agree within 1e-5 over
100 steps in float32; at 2e4 steps 3 cells of those 100 got another phase than the sequential
runs (1 of the 64 of ``experiments/sweeps/liu_toy_lr_wd.yaml``). The eager step is the default.

Both paths step Adam / AdamW with one implementation, torch's fused kernel: the ensemble calls
it on the stacks, and ``build_optimizer`` asks torch for it in every run.

The stacked optimizer is torch's own: AdamW / Adam by torch's fused kernel (one call per
distinct learning rate, over ranges of the stacks: the cells are sorted by learning rate), SGD
by torch's single-tensor arithmetic repeated operation by operation on the stacks.

What can be stacked (``stack_key``): equal task, model spec up to fields whose name contains
``init`` (a convention: such fields only shape the initial weights), training spec, dtype,
device, optimizer kind, betas, eps, momentum and nesterov. Schedules, probes, analysis and
output settings may differ per cell. Models with buffers (batch norm) or active dropout are
trained one by one instead (``stackable``); so is any model that draws random numbers in its
forward pass, since the ensemble's randomness could not match the sequential run's. Every
trainable parameter is assumed to receive a gradient at every step (true of full models: a
parameter a model never uses would be decayed here and skipped by torch).
"""

from __future__ import annotations

import copy
import ctypes
import gc
import itertools
import json
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from grokscope.config import RunConfig
from grokscope.errors import ConfigError
from grokscope.probes.base import ProbeOutput, StackedContext, StackMeasure, eval_mode
from grokscope.runner import Experiment, finish_run, start_run
from grokscope.store import RunStore
from grokscope.train.callbacks import ProbeCallback
from grokscope.train.stacked_adam import adam_written_out, fused_adam_kernel, fused_adam_way
from grokscope.train.stacked_forward import StackedForward, stacked_forward
from grokscope.train.stacked_linear import exact_linears
from grokscope.train.trainer import Callback, Trainer

_BATCHED_ROWS = 12
"""The fewest rows an evaluation pass gets when the train split's outputs came from the training
forward (``StackedGroup.evaluate``): MKL sums products of 5-11 rows in another order batched
than alone, so such a pass would go cell by cell (``_each_cell``), at twice the time."""

CellDone = Callable[[int, str], None]
"""``done(index, status)``: called as each cell's run folder is closed."""


def stack_key(config: RunConfig) -> str:
    """Cells whose configs give equal keys can be trained as one stacked model."""
    data = config.to_dict()
    for key in ("name", "seed", "provenance", "probes", "schedule", "analysis", "output"):
        data.pop(key, None)
    data["model"] = {k: v for k, v in data["model"].items() if "init" not in k}
    data["optimizer"] = {k: v for k, v in data["optimizer"].items() if k not in ("lr", "weight_decay", "groups")}
    return json.dumps(data, sort_keys=True)


def stackable(model: nn.Module) -> bool:
    """No buffers (batch-norm statistics) and no active dropout: the forward is a pure function
    of parameters and inputs, which ``vmap`` can batch."""
    if any(True for _ in model.buffers()):
        return False
    return not any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())


@dataclass
class _Member:
    """One cell inside the ensemble: its built parts, locked store and trainer."""

    index: int
    experiment: Experiment
    store: RunStore
    trainer: Trainer
    started: float = field(default_factory=time.monotonic)

    @cached_property
    def probe_callback(self) -> ProbeCallback:
        """The run's own probes (``runner.start_run``'s callback)."""
        return next(c for c in self.trainer.callbacks if isinstance(c, ProbeCallback))


class _CellOptimizer:
    """Stands in for a cell's torch optimizer inside its Trainer. The optimizer state lives in
    the ensemble's stacks; ``state_dict`` first copies this cell's slice into the torch
    optimizer (the format ``Trainer.load_state_dict`` reads back) and then returns it."""

    def __init__(self, optimizer: torch.optim.Optimizer, export: Callable[[torch.optim.Optimizer], None]) -> None:
        self.optimizer = optimizer
        self._export = export

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def state_dict(self) -> dict[str, Any]:
        self._export(self.optimizer)
        return self.optimizer.state_dict()


class StackedGroup:
    """Cells of one stack key, at the same step, trained as one stacked model."""

    def __init__(self, members: list[_Member], compile: bool = False) -> None:
        # cells with equal learning rates side by side: each optimizer call then takes a range
        # of the stacks (one view) instead of one slice per cell
        members = self.members = sorted(members, key=_learning_rates)
        first = members[0]
        self.objective = first.experiment.objective
        self.task = first.trainer.task
        self.training = first.experiment.config.training
        self.budget = first.trainer.budget
        self.step = first.trainer.step
        self.template = copy.deepcopy(first.experiment.model).train()
        self.names = [n for n, p in self.template.named_parameters() if p.requires_grad]
        self.frozen_names = [n for n, p in self.template.named_parameters() if not p.requires_grad]
        groups = first.trainer.optimizer.param_groups
        self.kind = type(first.trainer.optimizer).__name__  # AdamW, Adam or SGD
        self.defaults = {k: v for k, v in groups[0].items() if k not in ("params", "lr", "weight_decay")}
        if self.kind not in ("AdamW", "Adam", "SGD"):
            raise ValueError(f"the ensemble has no stacked version of optimizer {self.kind}")
        self._stack_parameters()
        self._stack_hyperparameters()
        self._fused_batches: list | None = None
        self._piece_sizes: dict[str, list[int]] = {}
        self._decayed_names: list[str] = []
        self._written_out: dict[str, torch.Tensor] = {}
        self._stack_optimizer_state()
        # the template whose linear layers compute each cell's bits as a single run does
        self.exact_template = exact_linears(copy.deepcopy(self.template))
        # full batches are shared by every cell; minibatches are each cell's own (axis 0)
        self._full_batch = all(m.trainer.sampler.full_batch for m in self.members)
        x_dim = None if self._full_batch else 0
        # the forward on stacks, written out for the models that have it (without vmap's cost
        # per operation), else the vmapped forward of exact_template: the same bits either way
        forward = stacked_forward(self.template)
        if forward is not None:
            self.output_fn = partial(self._stacked_output, forward, shared=True)
        else:
            self.output_fn = vmap(partial(self._cell_output, self.exact_template), in_dims=(0, 0, None))
        self.compiled = compile
        # the eager step's forward: outputs (on stacks; None when vmapped), then losses from them
        self._training_outputs: Callable[..., torch.Tensor] | None = None
        if compile:
            # torch.compile traces torch.func.grad of the model's own layers
            cell_loss = partial(self._cell_loss, self.template)
            self.grad_fn = compiled(vmap(grad_and_value(cell_loss), in_dims=(0, 0, x_dim, x_dim)))
        else:
            if forward is not None:
                self._training_outputs = partial(self._stacked_output, forward, shared=x_dim is None)
                self._training_losses = partial(self.objective.losses, shared=x_dim is None)
            else:
                cell_loss = partial(self._cell_loss, self.exact_template)
                self._training_losses = vmap(cell_loss, in_dims=(0, 0, x_dim, x_dim))
            self.grad_fn = self._exact_grads
        # the training forward of step s + 1, when the evaluation at step s ran it: (s, forward);
        # never when a callback may change the weights in between (the cells' callbacks are fixed)
        self._ahead: tuple[int, _Forward] | None = None
        self._weights_kept = not any(c.changes_weights for m in members for c in m.trainer.callbacks)
        self.parameter_names = [n for n, _ in self.template.named_parameters()]
        self.stacked_probes = self._stacked_probes()
        self.eval_batch_size = self.training.eval_batch_size
        # bounds the rows (cells x samples) of one evaluation pass, and so its activations' memory
        samples = max(1, len(self.task.x_train) + len(self.task.x_test))
        self.cells_per_evaluation = max(1, 8 * self.eval_batch_size // samples)
        for member in members:
            member.trainer.optimizer = _CellOptimizer(
                member.trainer.optimizer, lambda opt, m=member: self._export_state(m, opt)
            )

    # -- stacking --------------------------------------------------------------------------
    def _stack_parameters(self) -> None:
        self.params: dict[str, torch.Tensor] = {}
        self.frozen: dict[str, torch.Tensor] = {}
        for name in self.names + self.frozen_names:
            stacked = torch.stack([m.experiment.model.get_parameter(name).detach() for m in self.members])
            (self.params if name in self.names else self.frozen)[name] = stacked
        self._bind()

    def _bind(self) -> None:
        """Make every cell's parameters views of its slice of the stacks."""
        for i, member in enumerate(self.members):
            for name, stacked in {**self.params, **self.frozen}.items():
                member.experiment.model.get_parameter(name).data = stacked[i]

    def _stack_hyperparameters(self) -> None:
        """Per-parameter, per-cell base learning rate and weight decay, in float64 (C,)."""
        lrs = {name: [] for name in self.names}
        wds = {name: [] for name in self.names}
        for member in self.members:
            names = {id(p): n for n, p in member.experiment.model.named_parameters()}
            for group, base_lr in zip(member.trainer.optimizer.param_groups, member.trainer.base_lrs):
                for p in group["params"]:
                    lrs[names[id(p)]].append(base_lr)
                    wds[names[id(p)]].append(group["weight_decay"])
        device = self.params[self.names[0]].device
        self.lr = {n: torch.tensor(v, dtype=torch.float64, device=device) for n, v in lrs.items()}
        self.wd = {n: torch.tensor(v, dtype=torch.float64, device=device) for n, v in wds.items()}

    def _stack_optimizer_state(self) -> None:
        """Moments (or momentum buffers) from each cell's torch optimizer: zeros at the start,
        the checkpoint's values after a resume."""
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        # optimizer updates so far (the bias corrections' t; whether SGD's momentum has started)
        self.optimizer_steps = self.step
        keys = ("exp_avg", "exp_avg_sq") if self.kind != "SGD" else ("momentum_buffer",)
        for name in self.names:
            slots: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
            for member in self.members:
                parameter = member.experiment.model.get_parameter(name)
                state = member.trainer.optimizer.state.get(parameter, {})
                for key in keys:
                    value = state.get(key)
                    slots[key].append(
                        value.detach().to(parameter) if value is not None else torch.zeros_like(parameter)
                    )
            self.state[name] = {k: torch.stack(v) for k, v in slots.items()}

    def _export_state(self, member: _Member, optimizer: torch.optim.Optimizer) -> None:
        i = self.members.index(member)
        model = member.experiment.model
        for name in self.names:
            parameter = model.get_parameter(name)
            if self.kind == "SGD":
                started = self.optimizer_steps and self.defaults["momentum"] != 0
                buffer = self.state[name]["momentum_buffer"][i].clone() if started else None
                optimizer.state[parameter] = {"momentum_buffer": buffer}
            else:
                optimizer.state[parameter] = {
                    "step": torch.tensor(float(self.optimizer_steps)),
                    "exp_avg": self.state[name]["exp_avg"][i].clone(),
                    "exp_avg_sq": self.state[name]["exp_avg_sq"][i].clone(),
                }

    def drop(self, keep: list[int]) -> None:
        """Keep only the cells at positions ``keep`` (the others diverged): smaller stacks."""
        self._ahead = None
        index = torch.tensor(keep, device=self.params[self.names[0]].device)
        self.members = [self.members[i] for i in keep]
        self.params = {n: t.index_select(0, index) for n, t in self.params.items()}
        self.frozen = {n: t.index_select(0, index) for n, t in self.frozen.items()}
        self.lr = {n: t.index_select(0, index) for n, t in self.lr.items()}
        self.wd = {n: t.index_select(0, index) for n, t in self.wd.items()}
        self.state = {n: {k: t.index_select(0, index) for k, t in s.items()} for n, s in self.state.items()}
        self._fused_batches = None
        self._bind()

    # -- one step --------------------------------------------------------------------------
    def _cell_loss(self, template: nn.Module, params: dict[str, torch.Tensor], frozen: dict[str, torch.Tensor], x, y):
        return self.objective.loss(self._cell_output(template, params, frozen, x), y)

    def _cell_output(self, template: nn.Module, params: dict[str, torch.Tensor], frozen: dict[str, torch.Tensor], x):
        return functional_call(template, {**params, **frozen}, (x,))

    @staticmethod
    def _stacked_output(forward: StackedForward, params, frozen, x, shared: bool) -> torch.Tensor:
        return forward({**params, **frozen}, x, shared)

    def _exact_grads(self, params: dict[str, torch.Tensor], frozen: dict[str, torch.Tensor], x, y):
        """Each cell's gradients and loss (C,): the stacked forward (``stacked_forward``, else
        the vmapped forward of ``exact_template``), differentiated by autograd (the sum's
        backward hands each cell's loss a 1, as ``loss.backward()`` does). For linear layers
        and elementwise operations, bit for bit what each cell computes alone. The forward is
        the one an evaluation of the current weights ran ahead, if any (``_run_ahead``)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == self.step:
            forward = ahead[1]
        else:
            forward = self._forward_with_graph(params, frozen, x, y)
        leaves = forward.leaves
        grads = torch.autograd.grad(
            forward.losses.sum(), list(leaves.values()), allow_unused=True, materialize_grads=True
        )
        return dict(zip(leaves, grads, strict=True)), forward.losses

    def _forward_with_graph(self, params, frozen, x, y) -> _Forward:
        """The training forward, recorded by autograd from leaves that alias the stacks."""
        leaves = {name: stack.detach().requires_grad_() for name, stack in params.items()}
        with torch.enable_grad():
            if self._training_outputs is None:
                return _Forward(leaves, None, self._training_losses(leaves, frozen, x, y))
            outputs = self._training_outputs(leaves, frozen, x)
            return _Forward(leaves, outputs, self._training_losses(outputs, y))

    def _run_ahead(self, positions: list[int]) -> torch.Tensor | None:
        """The outputs of every cell on the train split from the next training step's forward,
        run now and kept for that step; None where that is not what a run alone would evaluate.

        An evaluation at step s and the training forward of step s + 1 compute the same outputs:
        both run the weights of step s on the train split, and these models are the same in
        both modes (``stackable``). The step's forward then costs nothing extra, and only the
        test split is evaluated (on the 100-cell Liu grid, 5 instead of 13-21 ms). It needs the
        eager step of a model with a stacked forward, full batches (the training batch is the
        train split), all cells evaluating, a step left to train, a train split that one
        evaluation pass covers (a run alone evaluates it as one batch, as it trains), and no
        callback that may change the weights before the step (``Callback.changes_weights``;
        probes restore what they perturb, so the forward's saved weights are as it ran them)."""
        runs_ahead = (
            self._training_outputs is not None  # the eager step, on a stacked forward
            and self._full_batch
            and positions == list(range(len(self.members)))
            and self.step < self.budget
            and 0 < len(self.task.x_train) <= self.eval_batch_size
            and self._weights_kept
        )
        if not runs_ahead:
            return None
        forward = self._forward_with_graph(self.params, self.frozen, self.task.x_train, self.task.y_train)
        self._ahead = (self.step, forward)
        return forward.outputs.detach()

    @torch.no_grad()
    def evaluate(self, positions: list[int]) -> dict[str, torch.Tensor]:
        """Outputs of the cells at ``positions`` on the whole train and test splits, in eval mode,
        as ``ProbeContext.outputs`` computes them for one cell: ``{split: (cells, samples, ...)}``.
        Where it can, it runs the next training step's forward for the train split and keeps it
        for that step (``_run_ahead``)."""
        params, frozen = self._select(self.params, positions), self._select(self.frozen, positions)
        train = self._run_ahead(positions)
        splits = {"train": self.task.x_train, "test": self.task.x_test}
        if train is not None:
            del splits["train"]
        # the splits in one pass (these models compute each row alone): on the Liu grid a
        # second pass for the 10 test samples took 6 of the 21 ms
        x = torch.cat(list(splits.values()))
        if train is not None:  # a few rows: padded with training rows, whose outputs are dropped
            x = torch.cat([x, self.task.x_train[: max(0, _BATCHED_ROWS - len(x))]])
        with eval_mode(self.exact_template):
            chunks = [self.output_fn(params, frozen, chunk) for chunk in x.split(self.eval_batch_size)]
        together = torch.cat(chunks, dim=1)
        sizes = [len(split) for split in splits.values()]
        parts = together.narrow(1, 0, sum(sizes)).split(sizes, dim=1)
        outputs = {name: part for name, part, size in zip(splits, parts, sizes) if size}
        return outputs if train is None else {"train": train, **outputs}

    @torch.no_grad()
    def measure(self, positions: list[int]) -> None:
        """Measure the cells at ``positions`` together for their probes of this step: their outputs
        on both splits in one batched pass, and the result of every probe that measures stacks
        (``StackMeasure.measure_stack``) in one call per probe, handed to each cell's probe callback."""
        outputs = self.evaluate(positions)
        stacks = {**self.params, **self.frozen}
        parameters = self._select({name: stacks[name] for name in self.parameter_names}, positions)
        results: list[dict[str, ProbeOutput]] = [{} for _ in positions]
        for name, probe in self.stacked_probes.items():
            due = [row for row, p in enumerate(positions) if self.step in self.members[p].probe_callback.steps[name]]
            if not due:
                continue
            context = StackedContext(
                self._select(parameters, due), self._select(outputs, due), self.task, self.objective, self.step
            )
            for row, output in zip(due, probe.measure_stack(context), strict=True):
                results[row][name] = output
        for row, position in enumerate(positions):
            cell_outputs = {split: values[row] for split, values in outputs.items()}
            self.members[position].probe_callback.provide(self.step, cell_outputs, results[row])

    def _select(self, stacks: dict[str, torch.Tensor], rows: list[int]) -> dict[str, torch.Tensor]:
        """The given rows of each stack (the stacks themselves when that is all of them)."""
        if not stacks or rows == list(range(len(next(iter(stacks.values()))))):
            return dict(stacks)
        index = torch.tensor(rows, device=self.params[self.names[0]].device)
        return {name: stack.index_select(0, index) for name, stack in stacks.items()}

    def _stacked_probes(self) -> dict[str, StackMeasure]:
        """Probes that every cell runs with the same spec and that measure stacks: measured for
        all cells at once (the first cell's instance stands for all)."""
        stacked: dict[str, StackMeasure] = {}
        for probe in self.members[0].probe_callback.probes:
            if not isinstance(probe, StackMeasure):
                continue
            specs = [{p.name: p.spec for p in m.probe_callback.probes}.get(probe.name) for m in self.members]
            if all(spec == probe.spec for spec in specs):
                stacked[probe.name] = probe
        return stacked

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Full batch (shared by all cells), or each cell's own minibatch stacked (C, B, ...)."""
        x, y = self.task.x_train, self.task.y_train
        batches = [m.trainer.sampler.next() for m in self.members]
        if batches[0] is None:
            return x, y
        index = torch.stack(batches).to(x.device)  # (C, B)
        return x[index], y[index]

    def train_step(self) -> torch.Tensor:
        """One update of every cell; returns each cell's batch loss before the update (C,)."""
        x, y = self._batch()
        grads, losses = self.grad_fn(self.params, self.frozen, x, y)
        if self.training.grad_clip is not None:
            self._clip(grads, self.training.grad_clip)
        factor = 1.0
        if self.training.warmup_steps:
            factor = min(1.0, (self.step + 1) / self.training.warmup_steps)
        self.optimizer_steps += 1
        with torch.no_grad():
            if self.kind == "SGD":
                self._sgd(grads, factor)
            else:
                self._adam(grads, factor)
        self.step += 1
        return losses.detach()

    def _per_cell(self, values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """(C,) float64 -> rounded to ``like``'s dtype, shaped to broadcast over (C, ...)."""
        return values.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def _clip(self, grads: dict[str, torch.Tensor], max_norm: float) -> None:
        """torch.nn.utils.clip_grad_norm_, per cell: scale by min(1, max_norm / (norm + 1e-6))."""
        norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), 2, dim=1) for g in grads.values()], dim=1)
        total = torch.linalg.vector_norm(norms, 2, dim=1)  # (C,)
        coefficient = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        for g in grads.values():
            g.mul_(coefficient.view(-1, *([1] * (g.dim() - 1))))

    def _adam(self, grads: dict[str, torch.Tensor], factor: float) -> None:
        """torch.optim.AdamW / Adam with torch's fused kernel (torch's ``fused=True`` optimizer):
        one pass over memory instead of the ten of an operation-by-operation version.

        The kernel takes one learning rate and weight decay per call, so it is called once per
        distinct learning rate (and weight decay, for Adam, whose decay enters the gradient) over
        each range of consecutive cells that share them (a view of the stacks; the cells are
        sorted by learning rate when the group is made), or over whole stacks. A stack whose cells
        would round otherwise in a range is stepped by the kernel's arithmetic written out (small
        cells) or goes in cell by cell (``_way``). AdamW's decoupled decay ``p * (1 - lr wd)`` is
        applied to each whole stack first, with per-cell factors: bitwise what the kernel does
        inside, in one pass for all cells."""
        if self._fused_batches is None:
            self._fused_batches = self._group_by_learning_rate()
        for name in self._decayed_names:
            param = self.params[name]
            param.mul_(self._per_cell(1 - self.lr[name] * factor * self.wd[name], param))
        step = torch.tensor(float(self.optimizer_steps), dtype=torch.float32)
        beta1, beta2 = self.defaults["betas"]
        kernel = fused_adam_kernel(self.kind)
        # the kernel walks memory densely: gradients must be laid out as the parameters are; each
        # stack cut into its pieces by one split (slicing them one by one took 0.8 ms a step)
        pieces_of = {name: grads[name].contiguous().split(sizes) for name, sizes in self._piece_sizes.items()}
        for lr, wd, pieces, params, exp_avgs, exp_avg_sqs in self._fused_batches:
            kernel(
                params,
                [pieces_of[name][index] for name, index in pieces],
                exp_avgs,
                exp_avg_sqs,
                [],
                [step] * len(pieces),
                lr=lr * factor,
                beta1=beta1,
                beta2=beta2,
                weight_decay=wd,
                eps=self.defaults["eps"],
                amsgrad=False,
                maximize=False,
            )
        if self._written_out:
            bias_correction1 = 1 - beta1**self.optimizer_steps  # the kernel's, in float64
            for name, one_at_a_time in self._written_out.items():
                state, step_sizes = self.state[name], self.lr[name] * factor / bias_correction1
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                param, grad = self.params[name], grads[name]
                adam_written_out(
                    param, grad, exp_avg, exp_avg_sq, step_sizes, one_at_a_time, self.optimizer_steps, self.defaults
                )

    def _group_by_learning_rate(self) -> list[tuple]:
        """(lr, kernel weight decay, pieces, params, exp_avgs, exp_avg_sqs) per kernel call; a
        piece is a range of consecutive cells of a stack that share the learning rate (and, for
        Adam, the weight decay), or one cell of it (``_way``: "by cell"), named (parameter name, its
        index among the stack's pieces): ``self._piece_sizes[name]`` cuts each stack into its
        pieces, in order; the stacks stepped by the arithmetic written out instead are
        ``self._written_out``. Kept until ``drop()``."""
        ranges: dict[tuple[float, float], list[tuple[str, int, int, int]]] = {}
        self._piece_sizes, self._written_out = {}, {}
        for name in self.names:
            way, one_at_a_time = self._way(name)
            if way == "written out":
                self._written_out[name] = one_at_a_time
                continue
            keys = [
                (lr, wd if self.kind == "Adam" else 0.0)
                for lr, wd in zip(self.lr[name].tolist(), self.wd[name].tolist(), strict=True)
            ]
            sizes = self._piece_sizes[name] = []
            start = 0
            by_cell = way == "by cell"
            for key, run in itertools.groupby(keys):
                stop = start + len(list(run))
                for first, end in [(i, i + 1) for i in range(start, stop)] if by_cell else [(start, stop)]:
                    ranges.setdefault(key, []).append((name, len(sizes), first, end))
                    sizes.append(end - first)
                start = stop
        # AdamW's stacks with a decay in any cell, decayed before the kernel calls
        self._decayed_names = [n for n in self.names if self.kind == "AdamW" and bool((self.wd[n] != 0).any())]

        def pick(stacks: dict[str, torch.Tensor], entries: list[tuple[str, int, int, int]]) -> list[torch.Tensor]:
            return [stacks[name][first:end] for name, _, first, end in entries]

        exp_avgs = {n: s["exp_avg"] for n, s in self.state.items()}
        exp_avg_sqs = {n: s["exp_avg_sq"] for n, s in self.state.items()}
        return [
            (
                lr,
                wd,
                [(name, index) for name, index, _, _ in entries],
                pick(self.params, entries),
                pick(exp_avgs, entries),
                pick(exp_avg_sqs, entries),
            )
            for (lr, wd), entries in ranges.items()
        ]

    def _way(self, name: str) -> tuple[str, torch.Tensor | None]:
        """How the stack ``name`` is stepped so that each cell rounds as a run alone does
        (``stacked_adam.fused_adam_way``)."""
        stack = self.params[name]
        kernel = fused_adam_kernel(self.kind)
        # AdamW's decay is applied before the kernel; Adam's enters the gradient in it
        decays = self.kind == "Adam" and bool((self.wd[name] != 0).any())
        return fused_adam_way(stack[0].numel(), stack.dtype, stack.device, kernel, decays, self.defaults)

    def _sgd(self, grads: dict[str, torch.Tensor], factor: float) -> None:
        """torch.optim.SGD (single-tensor path, no dampening), on stacks."""
        momentum, nesterov = self.defaults["momentum"], self.defaults["nesterov"]
        for name in self.names:
            param, grad = self.params[name], grads[name]
            wd = self.wd[name]
            if bool((wd != 0).any()):
                grad = grad + self._per_cell(wd, param) * param
            if momentum != 0:
                buffer = self.state[name]["momentum_buffer"]
                if self.optimizer_steps == 1:
                    buffer.copy_(grad)
                else:
                    buffer.mul_(momentum).add_(grad)
                grad = grad + momentum * buffer if nesterov else buffer
            param.add_(self._per_cell(-(self.lr[name] * factor), param) * grad)


@dataclass
class _Forward:
    """A stacked training forward recorded by autograd: its leaves (aliases of the parameter
    stacks), the cells' outputs (None when vmapped) and their losses (C,)."""

    leaves: dict[str, torch.Tensor]
    outputs: torch.Tensor | None
    losses: torch.Tensor


def _learning_rates(member: _Member) -> tuple[tuple[float, float], ...]:
    """The cell's (learning rate, weight decay) per parameter group."""
    groups = member.trainer.optimizer.param_groups
    return tuple((lr, group["weight_decay"]) for lr, group in zip(member.trainer.base_lrs, groups, strict=True))


def _open_member(
    index: int, config: RunConfig, folder: Path, device: str | None, extra: list[Callback]
) -> _Member | None:
    """Build a cell and open its run folder (fresh, or at its last checkpoint); None if finished."""
    experiment = Experiment(config, device)
    store = RunStore(folder).lock()
    try:
        trainer = start_run(experiment, store, resume=True, progress=False, extra=extra)
    except BaseException:
        store.unlock()
        raise
    if trainer is None:
        store.unlock()
        return None
    return _Member(index, experiment, store, trainer)


def _close(member: _Member, status: str, done: CellDone | None) -> None:
    trainer = member.trainer
    trainer.status = status  # type: ignore[assignment]
    try:
        for callback in trainer.callbacks:
            callback.on_train_end(trainer)
        finish_run(member.experiment, member.store, trainer, status, time.monotonic() - member.started)
    finally:
        member.store.unlock()
    if done is not None:
        done(member.index, status)


def _fit_alone(member: _Member, done: CellDone | None) -> None:
    """A cell that cannot be stacked: trained by its own Trainer, as ``grokscope.run`` would."""
    try:
        status = member.trainer.fit()
        finish_run(member.experiment, member.store, member.trainer, status, time.monotonic() - member.started)
    finally:
        member.store.unlock()
    if done is not None:
        done(member.index, status)
    if status == "interrupted":
        raise KeyboardInterrupt


def _fit_stacks(
    members: list[_Member],
    compile: bool,
    done: CellDone | None,
    on_step: Callable[[int], None] | None,
    stacks: int | None,
) -> None:
    """Train cells of one stack key at one step: as one stack, or cut into ``stacks`` stacks
    trained side by side, each in a thread of its own on its share of torch's threads (``None``:
    ``side_by_side``). ``done`` and ``on_step`` are then called from those threads, one call at
    a time."""
    count = side_by_side(members, compile) if stacks is None else max(1, min(stacks, len(members)))
    # what is alive now (torch, the cells' models, stores and trainers) outlives the training
    # loop: keep it out of the garbage collector's full passes (0.3 s each on the 100-cell Liu grid)
    gc.freeze()
    try:
        if count == 1:
            _fit_group(StackedGroup(members, compile), done, on_step)
        else:
            _fit_in_threads(members, count, compile, done, on_step)
    finally:
        gc.unfreeze()


def side_by_side(members: list[_Member], compile: bool) -> int:
    """How many stacks the cells train in, side by side (``_fit_in_threads``): on CPU, one per
    torch thread, as long as each holds ``MIN_CELLS_PER_STACK`` cells; one stack on other
    devices, and when compiled (``torch.compile`` is not made for threads).

    On 2 cores, a stacked operation runs about 1.7x faster on two threads than on one (part of
    its time is not shared out), and a stack's step has Python around its arithmetic (autograd,
    the optimizer's calls, the cells' callbacks), while the other core waits. Two stacks of half
    the cells, each stepped on one thread while the other is, keep both cores busier: on the
    100-cell Liu grid (``benchmarks/sweep_ensemble.py``) the bare step took 18.7-19.0 ms against
    20.3-20.8 ms for one stack on two threads, and full 1000-step runs 19.9-23.8 s against
    21.7-29.0 s (11 alternating pairs: 4-23 % less time in 10, 2 % more in one)."""
    device = next(iter(members[0].experiment.model.parameters())).device
    if compile or device.type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), len(members) // MIN_CELLS_PER_STACK))


MIN_CELLS_PER_STACK = 25
"""The fewest cells of a stack that ``side_by_side`` cuts off: on the 100-cell Liu grid, a step
of 25-cell stacks cost 8 % more per cell than one of a 100-cell stack, and of 10-cell ones 20 %."""


def _fit_in_threads(
    members: list[_Member], count: int, compile: bool, done: CellDone | None, on_step: Callable[[int], None] | None
) -> None:
    """``members`` trained in ``count`` stacks side by side (``stacks_side_by_side``), each by
    ``_fit_group`` in a thread of its own (``in_threads``); ``done`` and ``on_step`` called one
    at a time. An interrupt ends every stack at its next step, each cell closed as interrupted
    (resumable from its checkpoint)."""
    lock = threading.Lock()

    def one_at_a_time(report: Callable[..., None] | None) -> Callable[..., None] | None:
        if report is None:
            return None

        def locked(*args: Any) -> None:
            with lock:
                report(*args)

        return locked

    done, on_step = one_at_a_time(done), one_at_a_time(on_step)
    in_threads(stacks_side_by_side(members, count, compile), lambda group, stop: _fit_group(group, done, on_step, stop))


def stacks_side_by_side(members: list[_Member], count: int, compile: bool = False) -> list[StackedGroup]:
    """``members`` cut into ``count`` stacks of about equal size, cells of equal learning rates
    together (so that the optimizer's calls do not multiply)."""
    ordered = sorted(members, key=_learning_rates)
    bounds = [round(i * len(ordered) / count) for i in range(count + 1)]
    return [StackedGroup(ordered[a:b], compile) for a, b in itertools.pairwise(bounds)]


SWITCH_INTERVAL = 5e-4
"""Seconds a thread runs Python before another may take the interpreter, while stacks train side
by side (``in_threads``)."""


def in_threads(groups: list[StackedGroup], work: Callable[[StackedGroup, threading.Event], None]) -> None:
    """``work(group, stop)`` for every group at once, each in a thread of its own on its share of
    torch's threads; ``stop`` is set when any of them, or this thread, is interrupted.

    The ways of ``stacked_linear`` and ``stacked_adam`` are found for the threads' number of torch
    threads, so each cell gets the bits it gets on that many threads alone. Runs of the Liu toy
    model got the same bits on one thread as on two: the 100 cells of the benchmark's grid on the
    AMD AVX-512 machine, and the cells of ``tests/sweep/test_ensemble.py`` wherever the tests run. An
    error in one group lets the others finish, then is raised."""
    stop = threading.Event()
    threads, switch_interval = torch.get_num_threads(), sys.getswitchinterval()
    # a thread's torch operations take the number of threads set when the thread starts
    torch.set_num_threads(max(1, threads // len(groups)))
    # a stack whose operation has ended waits for the interpreter while another runs Python: at
    # most this long (5 ms by default). On the 100-cell Liu grid, 0.5 ms made full runs of two
    # stacks 2-4 % faster (3 alternating triples; 0.05 ms gained no more)
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        with ThreadPoolExecutor(len(groups), thread_name_prefix="grokscope-stack") as pool:
            futures = [pool.submit(work, group, stop) for group in groups]
            try:
                pending = set(futures)
                while pending:
                    ended, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    if any(isinstance(f.exception(), KeyboardInterrupt) for f in ended):
                        stop.set()
            except KeyboardInterrupt:
                stop.set()
                wait(futures)
                raise
            for future in futures:
                future.result()
    finally:
        torch.set_num_threads(threads)
        sys.setswitchinterval(switch_interval)


def _fit_group(
    group: StackedGroup,
    done: CellDone | None,
    on_step: Callable[[int], None] | None,
    stop: threading.Event | None = None,
) -> None:
    """The trainer loop of ``Trainer.fit``, run for every cell of the group at once; ``stop``
    set ends it as an interrupt does."""
    for member in group.members:
        member.started = time.monotonic()
        # the arithmetic that steps the cell from here on (a resumed cell may be stacked otherwise)
        member.store.event("stacked", step=group.step, cells=len(group.members), compiled=group.compiled)
        for callback in member.trainer.callbacks:
            callback.on_train_start(member.trainer)
    if not group.members[0].trainer.resumed:
        _step_callbacks(group, list(range(len(group.members))))
    try:
        while group.step < group.budget and group.members:
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
            losses = group.train_step().tolist()
            for member in group.members:  # before any callback, so an interrupt saves consistent steps
                member.trainer.step = group.step
            keep = []
            for position, (member, loss) in enumerate(zip(group.members, losses)):
                member.trainer.last_loss = loss
                if math.isfinite(loss):
                    keep.append(position)
                else:
                    _close(member, "diverged", done)
            _step_callbacks(group, keep)
            if len(keep) < len(group.members):
                group.drop(keep)
            if on_step is not None:
                on_step(len(group.members))
    except KeyboardInterrupt:
        for member in group.members:
            _close(member, "interrupted", done)
        raise
    for member in group.members:
        _close(member, "finished", done)


def _step_callbacks(group: StackedGroup, positions: list[int]) -> None:
    """Every callback of the cells at ``positions`` for the group's current step. The cells that
    probe at this step are first measured together, a chunk of cells per batched pass, and their
    probes read those outputs and results instead of running cell by cell."""
    step = group.step
    for start in range(0, len(positions), group.cells_per_evaluation):
        chunk = positions[start : start + group.cells_per_evaluation]
        measuring = [p for p in chunk if step in group.members[p].probe_callback.any_step]
        if measuring:
            group.measure(measuring)
        for position in chunk:
            trainer = group.members[position].trainer
            for callback in trainer.callbacks:
                callback.on_step(trainer)


def compiled(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` (the stacked forward and backward) compiled by ``torch.compile``.

    Inductor fuses the elementwise operations around the batched matmuls (bias adds, tanh and its
    backward, the loss) into a few loops over memory, and computes tanh with Sleef rather than
    MKL's vector math. On the 100-cell Liu grid (``benchmarks/sweep_ensemble.py``), the training
    step takes about a quarter less time. Compiling takes 20-30 s of a 2-core machine the first
    time, and about 6 s once Inductor's on-disk cache holds the kernels. A new group, or one
    that lost a diverged cell, compiles again, so the switch pays on long budgets.

    It differentiates the model's own layers with ``torch.func.grad``, which ``torch.compile``
    traces as one graph (``stacked_linear`` steps outside ``torch.func``), and rounds as Inductor
    does: not bitwise as a single run, unlike the eager step. Parameters agree with the
    sequential runs within the tolerances of ``tests/sweep/test_ensemble.py``; cells at a phase
    boundary can get another phase.

    Shapes are static and the step is one graph. If the recompile limit is hit, the call fails
    instead of falling back silently to eager code: a run must not change its arithmetic
    half-way through.
    """
    check_compiler()
    step = torch.compile(step, dynamic=False, fullgraph=True)

    def compiled_step(*args: Any) -> Any:
        with torch._dynamo.config.patch(recompile_limit=256, fail_on_recompile_limit_hit=True):
            return step(*args)

    return compiled_step


def check_compiler() -> None:
    """Raise ConfigError unless the C++ compiler that torch.compile's CPU kernels need is there."""
    from torch._inductor.cpp_builder import get_cpp_compiler

    try:
        get_cpp_compiler()
    except Exception as error:  # torch raises its own error types, which differ by version
        raise ConfigError(
            f"compile = True: torch.compile needs a C++ compiler ({error}); "
            "install g++ (or set CXX to one), or leave compile off"
        ) from None


def reuse_freed_memory() -> None:
    """Keep freed memory in the process (glibc malloc) instead of returning it to the system.

    A stacked step allocates and frees tensors of megabytes (activations and gradients of every
    cell). By default glibc serves such blocks by ``mmap`` or trims them off the heap when freed,
    so every step pays page faults to get the same memory back: about a quarter of the step
    time of the 100-cell Liu grid of ``benchmarks/sweep_ensemble.py`` on a 2-core machine.
    Raising the mmap and trim thresholds makes freed blocks reusable; the process then holds on
    to its peak memory, which is what a sweep process does anyway. Process-wide, so the
    benchmark calls it before timing either path; without glibc it does nothing.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    trim_threshold, mmap_threshold = -1, -3  # glibc's M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
    mallopt(mmap_threshold, 256 << 20)
    mallopt(trim_threshold, 1 << 30)


def train_ensemble(
    configs: Sequence[RunConfig],
    folders: Sequence[str | Path],
    device: str | None = None,
    extra_callbacks: Callable[[int], list[Callback]] | None = None,
    max_cells: int = 256,
    done: CellDone | None = None,
    on_step: Callable[[int], None] | None = None,
    compile: bool = False,
    stacks: int | None = None,
) -> None:
    """Train each config into its run folder, stacking those that can be stacked.

    Folders that hold a finished run are left alone (``done`` reports them ``finished``); an
    interrupted one resumes from its last checkpoint. Cells are stacked in groups of at most
    ``max_cells`` sharing a ``stack_key`` and a starting step; the rest train one by one.
    ``extra_callbacks(i)`` gives more callbacks for cell i; ``on_step(n)`` is called after each
    stacked step with the number of cells it advanced. ``compile`` compiles each group's stacked
    forward and backward (``compiled``): faster steps after a one-time compilation, with other
    rounding than the eager step (which computes each cell's bits as its run alone would).
    ``stacks`` cuts each group into that many stacks trained side by side in threads (default:
    ``side_by_side``: on CPU, up to one per torch thread, of at least 25 cells each).

    >>> train_ensemble([config_a, config_b], ["runs/a", "runs/b"])   # doctest: +SKIP
    """
    if len(configs) != len(folders):
        raise ValueError("one folder per config")
    reuse_freed_memory()
    groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        groups.setdefault(stack_key(config), []).append(i)
    for indices in groups.values():
        for start in range(0, len(indices), max_cells):
            chunk = indices[start : start + max_cells]
            _train_chunk(chunk, configs, folders, device, extra_callbacks, done, on_step, compile, stacks)


def _train_chunk(chunk, configs, folders, device, extra_callbacks, done, on_step, compile, stacks) -> None:
    members: list[_Member] = []
    try:
        for i in chunk:
            member = _open_member(
                i, configs[i], Path(folders[i]), device, extra_callbacks(i) if extra_callbacks else []
            )
            if member is None:
                if done is not None:
                    done(i, "finished")
            else:
                members.append(member)
        alone = [m for m in members if not stackable(m.experiment.model)]
        for member in alone:
            _fit_alone(member, done)
        by_step: dict[int, list[_Member]] = {}
        for member in members:
            if member not in alone:
                # equal task specs build equal tasks: keep one copy
                member.trainer.task = member.experiment.task = members[0].trainer.task
                by_step.setdefault(member.trainer.step, []).append(member)
        for step_members in by_step.values():
            _fit_stacks(step_members, compile, done, on_step, stacks)
    finally:
        for member in members:
            if member.store.locked:
                member.store.unlock()
