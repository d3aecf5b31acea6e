"""Adam on stacks of cells, with each cell's bits: torch's fused kernel on ranges of cells where
it rounds them as it rounds each cell alone, its arithmetic written out in torch operations
where it would not and the cells are small, one cell at a time otherwise.

A one-time probe per cell size decides (``fused_adam_way``), as ``stacked_linear`` decides how
to batch each product: the kernel's rounding depends on how it cuts a tensor into vectors, which
depends on the CPU and on the compiler torch was built with.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import torch


def fused_adam_kernel(kind: str) -> Callable:
    """torch's fused kernel for the optimizer ``kind`` (``AdamW`` or ``Adam``)."""
    return torch._fused_adamw_ if kind == "AdamW" else torch._fused_adam_


_ADAM_WAYS: dict[tuple, tuple[str, torch.Tensor | None]] = {}
_WRITTEN_OUT_CELLS = 1024
"""The most elements per cell for which Adam's arithmetic is written out on the stack
(``adam_written_out``): above, its dozen passes over memory cost more than the kernel's calls."""


def fused_adam_way(
    size: int, dtype: torch.dtype, device: torch.device, kernel: Callable, decays: bool, defaults: dict
) -> tuple[str, torch.Tensor | None]:
    """How to step a stack of cells of ``size`` elements so that each gets the bits that torch's
    fused Adam kernel gives it alone: ``("ranges", None)``, the kernel on ranges of cells;
    ``("written out", one_at_a_time)``, the kernel's arithmetic on the whole stack
    (``adam_written_out``); or ``("by cell", None)``, the kernel on one cell at a time.

    On CPU the kernel steps a tensor by whole vectors of the vector unit, and what is left at
    its end by the compiler's code for the loop over the rest: narrower vectors, then one element
    at a time, which rounds the second moment otherwise. In a stack a cell's last elements go by
    whole vectors. With torch 2.13 on AVX-512 (16 floats) the last 8 elements of a 200-float
    cell go by 8-wide vectors and round as in a stack; of a 30-float cell's last 14, the last 6
    go one at a time and do not. Found once per size, on 256 random cells: stepped alone, as one
    stack (the elements that round otherwise: ``one_at_a_time``, a mask over a cell's elements)
    and in ranges of 1, 2, 3, ... cells (whose own last elements the kernel steps as it steps
    what is left); 256 more check the written-out arithmetic. The kernel sees a tensor as a run
    of numbers, cut into threads' shares at whole cache lines: a cell of more than 1024 elements
    is probed by cells of 1024 + its size modulo 1024, which end as it ends. The probe runs on
    the stack's device, with the stack's dtype."""
    probed = size if size <= 1024 else 1024 + size % 1024
    key = (probed, dtype, device, kernel, decays, torch.get_num_threads())
    if key in _ADAM_WAYS:
        return _ADAM_WAYS[key]
    generator = torch.Generator(device=device).manual_seed(0)
    per_round = 16 * max(1, min(16, 2**16 // max(1, probed)))  # bounds the probe's memory
    beta1, beta2 = defaults["betas"]
    learning_rate, step = 1e-3, 3
    ranges = [k for k in range(1, per_round) if k * (k + 1) // 2 <= per_round]
    ranges.append(per_round - sum(ranges))

    def draw() -> tuple[torch.Tensor, ...]:
        def random() -> torch.Tensor:
            # magnitudes from 1e-6 to 10: on uniform(-1, 1) draws alone, torch's float64 square
            # root happened to round as the kernel's, and the ensemble's float64 runs lost bits
            shape = (per_round, probed)
            normal = torch.randn(shape, dtype=dtype, device=device, generator=generator)
            exponent = torch.empty(shape, dtype=dtype, device=device).uniform_(-6, 1, generator=generator)
            return normal * torch.pow(10.0, exponent)

        return random(), random(), random(), random() ** 2  # param, grad, exp_avg, exp_avg_sq

    def fused(values: tuple[torch.Tensor, ...], cells: list[int]) -> list[torch.Tensor]:
        """The state after one step of the kernel on the stack cut into ranges of ``cells``."""
        param, grad, exp_avg, exp_avg_sq = (t.clone() for t in values)
        cut = [list(t.split(cells)) for t in (param, grad, exp_avg, exp_avg_sq)]
        steps = [torch.tensor(float(step), device=device)] * len(cells)
        decay = 0.1 if decays else 0.0
        kernel(
            *cut,
            [],
            steps,
            lr=learning_rate,
            beta1=beta1,
            beta2=beta2,
            weight_decay=decay,
            eps=defaults["eps"],
            amsgrad=False,
            maximize=False,
        )
        return [param, exp_avg, exp_avg_sq]

    def elements_differ(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([(x != y).any(0) for x, y in zip(a, b, strict=True)]).any(0)

    one_at_a_time = torch.zeros(probed, dtype=torch.bool, device=device)
    ranges_alike = True
    for _ in range(math.ceil(256 / per_round)):
        values = draw()
        alone = fused(values, [1] * per_round)
        one_at_a_time |= elements_differ(alone, fused(values, [per_round]))
        ranges_alike &= not bool(elements_differ(alone, fused(values, ranges)).any())
    if ranges_alike and not one_at_a_time.any():
        way: tuple[str, torch.Tensor | None] = ("ranges", None)
    elif decays or size > _WRITTEN_OUT_CELLS:  # written out without Adam's decay, for small cells
        way = ("by cell", None)
    else:
        values = draw()
        param, grad, exp_avg, exp_avg_sq = (t.clone() for t in values)
        step_sizes = torch.full((per_round,), learning_rate / (1 - beta1**step), dtype=torch.float64, device=device)
        adam_written_out(param, grad, exp_avg, exp_avg_sq, step_sizes, one_at_a_time, step, defaults)
        alone = fused(values, [1] * per_round)
        exact = all(torch.equal(a, b) for a, b in zip(alone, (param, exp_avg, exp_avg_sq), strict=True))
        way = ("written out", one_at_a_time) if exact else ("by cell", None)
    _ADAM_WAYS[key] = way
    return way


def adam_written_out(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step_sizes: torch.Tensor,
    one_at_a_time: torch.Tensor,
    step: int,
    defaults: dict,
) -> None:
    """Adam's update of stacks (C, ...) in place, as torch's fused CPU kernel computes it (torch
    2.13, ``adam_math`` in ``FusedAdamKernel.cpp``; no weight decay), written out in torch
    operations: ``exp_avg + (1 - beta1)(grad - exp_avg)`` as one fused multiply-add; the second
    moment ``exp_avg_sq beta2 + ((1 - beta2) grad) grad`` as one too, fused on the last product
    where the kernel steps an element by vectors and on the first where it steps it one at a
    time (``one_at_a_time``, a mask over a cell's elements); the square root correctly rounded;
    ``param - step_size exp_avg / (sqrt(exp_avg_sq) / sqrt(1 - beta2^step) + eps)``; each
    constant rounded to the dtype as the kernel rounds it. ``step_sizes``: each cell's learning
    rate / (1 - beta1^step), in float64 (C,). ``fused_adam_way`` checks it against the kernel."""
    beta1, beta2 = defaults["betas"]
    cells = len(param)
    param_, exp_avg_, exp_avg_sq_ = (t.view(cells, -1) for t in (param, exp_avg, exp_avg_sq))  # in place
    grad_ = grad.reshape(cells, -1)
    # a Python number multiplies as the tensor's dtype, rounded as the kernel's scalar_t(x); a
    # fused multiply-add (addcmul) needs its factor as a tensor
    exp_avg_.addcmul_(grad_ - exp_avg_, _constant(1 - beta1, param.dtype, param.device))
    scaled_grad = grad_ * (1 - beta2)
    by_vectors = torch.addcmul(exp_avg_sq_ * beta2, scaled_grad, grad_)
    one_by_one = torch.addcmul(scaled_grad * grad_, exp_avg_sq_, _constant(beta2, param.dtype, param.device))
    torch.where(one_at_a_time, one_by_one, by_vectors, out=exp_avg_sq_)
    # torch.sqrt of float32 on CPU is not correctly rounded, float64's rounded to float32 is (and
    # float64's own is not: the probe then finds no match, and float64 stacks go cell by cell)
    denominator = exp_avg_sq_.double().sqrt_().to(param.dtype).div_(math.sqrt(1 - beta2**step)).add_(defaults["eps"])
    param_.sub_(exp_avg_.mul(step_sizes.to(param.dtype).view(cells, 1)).div_(denominator))


@cache
def _constant(value: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor(value, dtype=dtype, device=device)
