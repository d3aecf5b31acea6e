"""Linear layers that compute, stacked, the bits a single run computes.

Under ``torch.func.vmap``, ``F.linear`` becomes a batched matmul followed by a separate bias add,
and ``torch.func.grad`` differentiates that. A single run computes ``addmm``: the bias enters the
matrix product's accumulation, so about a third of the outputs of a 45 x 200 x 200 layer differ in
the last bit, and after 2e4 steps of training that is enough for a cell at a phase boundary to
land in another phase (2 cells of the 100 of ``benchmarks/liu_grid_100.yaml``).

``exact_linears(model)`` makes every ``nn.Linear`` of a model, when it runs under ``vmap`` over
stacked parameters, call ``StackedLinear``: each cell's output as its ``addmm``, and its
backward by the formulas of ``addmm``'s own backward, each product a batched matmul where MKL
computes the batch as it computes each matrix, as the batched transpose where it has one column,
or elementwise where it has one term per output, each where it rounds as MKL does
(``_each_cell``). The stacked step then differentiates the batched forward with plain autograd
(``StackedGroup``), not with ``torch.func.grad``. Every gradient and every loss then equals the
single run's bit for bit (``tests/sweep/test_stacked_linear.py``; on the Liu grid, every metric
of 100 runs of 2e4 steps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch._functorch.pyfunctorch import temporarily_clear_interpreter_stack

_EXACT_WAY: dict[tuple, Callable[..., torch.Tensor]] = {}


def _each_cell(bias: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Each cell's ``bias + a @ b`` ((C, M, K) x (C, K, N), bias (C, 1, N) or None), computed as
    the cell computes ``addmm`` / ``mm`` alone.

    MKL computes most batches of matrices as it computes each matrix, but not all: on the AVX2
    machine this was written on, products with a dimension of 1 or 5-11 (a layer with one
    input, say) sum in another order in a batch. A product with one term per output (K = 1, a
    layer with one input) needs no matrix product at all: elementwise, ``a * b + bias`` computes
    it 4x faster, and on that machine with the same bits. A product with one column (N = 1: the
    weight gradient of a layer with one input) is 8x faster batched as its transpose, a row
    times a matrix, with the same bits there. The fastest of these ways that gives the cells'
    bits for this shape and layout is found once, on random matrices; cell by cell is the way
    that always does."""
    layout = (a.shape[1:], b.shape[1:], a.stride()[1:], b.stride()[1:], bias is None)
    key = (*layout, a.dtype, a.device, torch.get_num_threads())  # MKL's order can depend on threads
    if key not in _EXACT_WAY:
        generator = torch.Generator(device=a.device).manual_seed(0)
        probe = [None if t is None else _random_like(t, generator) for t in (bias, a, b)]
        expected = _one_by_one(*probe)
        fits = {_elementwise: a.shape[2] == 1, _transposed: b.shape[2] == 1, _batched: True}
        ways = [way for way, fit in fits.items() if fit]  # fastest first
        _EXACT_WAY[key] = next((way for way in ways if torch.equal(way(*probe), expected)), _one_by_one)
    return _EXACT_WAY[key](bias, a, b)


def _elementwise(bias: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """For K = 1: each output is one product."""
    product = a * b
    return product if bias is None else product + bias


def _batched(bias: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.bmm(a, b) if bias is None else torch.baddbmm(bias, a, b)


def _transposed(bias: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """For N = 1: (b^T a^T)^T, whose (C, M, 1) result is contiguous."""
    bias_t = None if bias is None else bias.transpose(1, 2)
    return _batched(bias_t, b.transpose(1, 2), a.transpose(1, 2)).transpose(1, 2)


def _one_by_one(bias: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if bias is None:
        return torch.stack([x.mm(y) for x, y in zip(a, b, strict=True)])
    return torch.stack([torch.addmm(c[0], x, y) for c, x, y in zip(bias, a, b, strict=True)])


def _random_like(tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random entries in the same layout (a transposed operand stays transposed)."""
    if tensor.stride(0) == 0:  # one matrix shared by the cells (the data)
        return _random_like(tensor[0], generator).expand(tensor.shape)
    empty = torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device=tensor.device)
    return empty.uniform_(-1, 1, generator=generator)  # as telling as normal_, 5x faster


class StackedLinear(torch.autograd.Function):
    """Cells' inputs (C, N, in), weights (C, out, in), biases (C, out) or None -> (C, N, out)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _each_cell(None if bias is None else bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        # addmm(b, x, W.t())'s backward (torch's mm_mat1_backward / mm_mat2_backward): grad_x =
        # grad W, grad_W = grad^T x in the weight's own layout, grad_b = grad summed over rows
        x, weight = ctx.saved_tensors
        grad_x = _each_cell(None, grad, weight) if ctx.needs_input_grad[0] else None  # not for data
        grad_weight = _each_cell(None, grad.transpose(1, 2), x)
        return grad_x, grad_weight, grad.sum(1) if ctx.has_bias else None


class _Linear(torch.autograd.Function):
    """``F.linear`` for one cell; under ``vmap``, ``StackedLinear`` on the whole stack."""

    @staticmethod
    def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, weight, bias)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
        """Nothing to save: functorch requires the method, and under ``vmap`` autograd records
        ``StackedLinear`` instead of this function (whose ``backward`` only refuses)."""

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        raise RuntimeError("exact_linears: differentiate the vmapped forward with torch.autograd, not torch.func")

    @staticmethod
    def vmap(info: Any, in_dims: tuple, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
        def leading(tensor: torch.Tensor | None, dim: int | None) -> torch.Tensor | None:
            if tensor is None:
                return None
            return tensor.movedim(dim, 0) if dim is not None else tensor.expand(info.batch_size, *tensor.shape)

        # below vmap the stacks are plain tensors: autograd records StackedLinear and its backward
        stacks = [leading(t, d) for t, d in zip((x, weight, bias), in_dims, strict=True)]
        with temporarily_clear_interpreter_stack():
            return StackedLinear.apply(*stacks), 0


def _forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 2:  # a single run flattens other shapes its own way: leave them to vmap
        return F.linear(x, self.weight, self.bias)
    return _Linear.apply(x, self.weight, self.bias)


def exact_linears(model: nn.Module) -> nn.Module:
    """``model`` with each ``nn.Linear`` computing, under ``vmap``, through ``StackedLinear``.

    For a copy of a model that ``StackedGroup`` runs stacked: alone, each such layer computes
    ``F.linear`` as before, but its gradient must then come from ``torch.autograd`` on the
    vmapped forward (``torch.func.grad`` cannot see through the stack)."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.forward = _forward.__get__(module)
    return model
