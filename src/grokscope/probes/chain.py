"""From a trace to the chain of layers the Zhao measures work on (``measures.lmap.ChainLayer``),
and the checks the Zhao probes share.

The trace protocol hands each layer's weight, bias, batch-norm module, activation and residual
source; a sequential trace is a chain, and batch norm in running-statistics mode (what eval mode
gives) folds into a per-neuron scale and shift (Zhao-B eq. 4).
"""

from __future__ import annotations

import torch
from torch import nn

from grokscope.errors import ConfigError
from grokscope.measures.lmap import ChainLayer, batch_norm_affine
from grokscope.models.base import Trace, TracedModel
from grokscope.probes.base import ProbeContext, eval_mode
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective


def chain_layers(trace: Trace, probe: str) -> list[ChainLayer]:
    """The layers of a sequential trace as ``ChainLayer``s, batch norm in running-statistics
    mode folded in. Raises ConfigError naming ``probe`` when the model is not such a chain."""
    if not trace.sequential:
        raise ConfigError(f"probes.{probe}: needs a sequential model (trace.sequential); this model is not")
    layers = []
    for record in trace.layers:
        if record.weight is None or record.weight.dim() != 2:
            raise ConfigError(f"probes.{probe}: layer {record.name} has no (out, in) weight matrix")
        scale = shift = None
        if record.batch_norm is not None:
            scale, shift = _running_affine(record.batch_norm, record.name, probe)
        layers.append(
            ChainLayer(
                weight=record.weight.detach(),
                bias=None if record.bias is None else record.bias.detach(),
                scale=scale,
                shift=shift,
                activation=record.activation,
                skip_from=record.skip_from,
            )
        )
    return layers


def _running_affine(norm: nn.Module, layer: str, probe: str) -> tuple[torch.Tensor, torch.Tensor]:
    mean, var = getattr(norm, "running_mean", None), getattr(norm, "running_var", None)
    if mean is None or var is None:
        raise ConfigError(f"probes.{probe}: batch norm of {layer} keeps no running statistics")
    gamma = getattr(norm, "weight", None)
    beta = getattr(norm, "bias", None)
    return batch_norm_affine(
        mean.detach(),
        var.detach(),
        None if gamma is None else gamma.detach(),
        None if beta is None else beta.detach(),
        float(norm.eps),
    )


def require_class_outputs(task: Task, objective: Objective, probe: str) -> None:
    """The Zhao measures pair output neuron k with class k: a classification task whose model
    has one output per class."""
    if task.kind != "classification" or task.n_classes is None:
        raise ConfigError(f"probes.{probe}: needs a classification task (class labels); this task is regression")
    if objective.target_vectors is not None:
        raise ConfigError(f"probes.{probe}: needs one model output per class; this task regresses target vectors")


def check_chain(model: TracedModel, task: Task, probe: str) -> None:
    """Fail before training when the model cannot be read as a chain (a two-sample trace)."""
    with torch.no_grad(), eval_mode(model):
        chain_layers(model.trace(task.x_train[:2]), probe)


def model_inputs(context: ProbeContext, split: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``limit`` samples of a split as the chain reads them (flattened), and labels."""
    trace = context.trace(split, limit)
    _, y = context.data(split)
    return trace.layers[0].input, y[: len(trace.output)]
