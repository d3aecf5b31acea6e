"""Forward passes of whole models on stacked parameters, written out instead of vmapped.

``torch.func.vmap`` makes any model's forward run on a stack of cells, but it pays for that in
Python at every operation: its batching rules, ``functional_call``, and the custom Function
path of ``stacked_linear``. On the 100-cell Liu grid of ``benchmarks/sweep_ensemble.py`` that
was about 4 of the 37 ms that the stacked forward and backward took per step, for the same
arithmetic. For the models that sweeps train most, the MLP and Liu's toy model with summed
embeddings, ``stacked_forward`` gives the forward written directly on (C, ...) stacks, with the
operations vmap would issue: autograd then differentiates it as it differentiates the vmapped
forward, and each cell's outputs and gradients stay bitwise those of its model alone
(``tests/sweep/test_stacked_forward.py``). The ensemble uses it for training and evaluation.
Other models (and the MLP's batch-norm variant, which is not stacked at all) have none and are
vmapped.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from grokscope.models.base import ACTIVATIONS
from grokscope.models.mlp import MLP
from grokscope.models.toy import LiuToy
from grokscope.train.stacked_linear import StackedLinear

StackedForward = Callable[[dict[str, torch.Tensor], torch.Tensor, bool], torch.Tensor]
"""``forward(stacks, x, shared)``: each cell's output (C, N, ...) for parameter stacks (C, ...)
by name, and inputs shared by every cell (``shared``: (N, ...)) or each cell's own (C, N, ...)."""


def stacked_forward(model: torch.nn.Module) -> StackedForward | None:
    """The model's forward written on stacks, or None when it has none (vmap it instead)."""
    if type(model) is MLP and not model.spec.batch_norm:
        return partial(_mlp, model, "")
    if type(model) is LiuToy and model.spec.combine == "sum":
        return partial(_liu_toy, model)
    return None


def _mlp(model: MLP, prefix: str, stacks: dict[str, torch.Tensor], x: torch.Tensor, shared: bool) -> torch.Tensor:
    """``MLP.forward`` on stacks; ``prefix`` names the MLP's parameters inside a larger model."""
    cells = stacks[f"{prefix}linears.0.weight"].shape[0]
    x = x.flatten(1).expand(cells, -1, -1) if shared else x.flatten(2)
    act = ACTIVATIONS[model.activation]
    outputs: list[torch.Tensor] = []
    last = len(model.linears) - 1
    for i in range(last):
        out = act(_linear(stacks, f"{prefix}linears.{i}", x))
        skip = model.skip_source(i)
        if skip is not None:
            out = out + outputs[skip]
        outputs.append(out)
        x = out
    return model.scaled(_linear(stacks, f"{prefix}linears.{last}", x))


def _linear(stacks: dict[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    return StackedLinear.apply(x, stacks[f"{name}.weight"], stacks.get(f"{name}.bias"))


def _liu_toy(model: LiuToy, stacks: dict[str, torch.Tensor], x: torch.Tensor, shared: bool) -> torch.Tensor:
    """``LiuToy.forward`` with ``combine: sum`` on stacks: E_a + E_b, then the decoder."""
    embedding = stacks["embedding"]  # (C, n_tokens, d)
    if shared:
        a, b = embedding[:, x[:, 0]], embedding[:, x[:, 1]]
    else:
        cells = torch.arange(embedding.shape[0], device=x.device).unsqueeze(1)
        a, b = embedding[cells, x[..., 0]], embedding[cells, x[..., 1]]
    return _mlp(model.decoder, "decoder.", stacks, a + b, shared=False)
