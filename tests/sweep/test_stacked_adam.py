"""fused_adam_way: however a stack of cells is stepped, each cell gets the bits that torch's
fused Adam kernel gives it alone."""

import math

import pytest
import torch

from grokscope.train.stacked_adam import adam_written_out, fused_adam_way

DEFAULTS = {"betas": (0.9, 0.999), "eps": 1e-8}
CELLS = 300  # not a multiple of any vector: the ranges below leave the kernel a stack end too


def state(cell: tuple[int, ...], dtype: torch.dtype, steps_taken: int) -> list[torch.Tensor]:
    """A stack's parameter, gradient and moments, as training leaves them: drawn otherwise than
    the probe draws them (one scale per cell, moments of a few earlier gradients)."""
    generator = torch.Generator().manual_seed(steps_taken)
    scale = torch.logspace(-4, 1, CELLS, dtype=dtype).view(-1, *[1] * len(cell))

    def normal() -> torch.Tensor:
        return torch.randn((CELLS, *cell), dtype=dtype, generator=generator) * scale

    past = [normal() for _ in range(3)]
    exp_avg = sum(0.1 * g * 0.9**i for i, g in enumerate(past))
    exp_avg_sq = sum(0.001 * g * g * 0.999**i for i, g in enumerate(past))
    return [normal(), normal(), exp_avg, exp_avg_sq]


def fused(
    values: list[torch.Tensor], cells: list[int], lr: float, step: int, kernel, decay: float
) -> list[torch.Tensor]:
    param, grad, exp_avg, exp_avg_sq = (t.clone() for t in values)
    cut = [list(t.split(cells)) for t in (param, grad, exp_avg, exp_avg_sq)]
    steps = [torch.tensor(float(step))] * len(cells)
    kernel(*cut, [], steps, lr=lr, beta1=0.9, beta2=0.999, weight_decay=decay, eps=1e-8, amsgrad=False, maximize=False)
    return [param, exp_avg, exp_avg_sq]


@pytest.mark.parametrize("cell", [(10, 1), (30,), (200,), (7,), (64,), (1,)], ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(
    ("kernel", "decay"), [(torch._fused_adamw_, 0.0), (torch._fused_adam_, 0.1)], ids=["AdamW", "Adam-decayed"]
)
def test_each_way_gives_each_cell_its_bits(cell, dtype, kernel, decay):
    way, one_at_a_time = fused_adam_way(math.prod(cell), dtype, torch.device("cpu"), kernel, decay != 0, DEFAULTS)
    lr = 3e-3
    for step in (1, 2, 50):
        values = state(cell, dtype, step)
        alone = fused(values, [1] * CELLS, lr, step, kernel, decay)
        if way == "ranges":
            stacked = fused(values, [97, 1, 5, 3, 194], lr, step, kernel, decay)
        elif way == "written out":
            param, grad, exp_avg, exp_avg_sq = (t.clone() for t in values)
            step_sizes = torch.full((CELLS,), lr / (1 - 0.9**step), dtype=torch.float64)
            adam_written_out(param, grad, exp_avg, exp_avg_sq, step_sizes, one_at_a_time, step, DEFAULTS)
            stacked = [param, exp_avg, exp_avg_sq]
        else:
            assert way == "by cell"
            continue
        for a, b in zip(alone, stacked, strict=True):
            assert torch.equal(a, b), (way, step)
    # a cell of whole vectors (64 floats fill the widest CPU vector, 64 bytes, exactly) is stepped
    # alike in any range of cells
    if cell == (64,):
        assert way == "ranges"
    # the arithmetic is written out without Adam's own decay
    if decay:
        assert way != "written out"


def test_the_written_out_arithmetic_is_the_kernels_where_it_differs():
    """Where the kernel steps a cell alone one element at a time, stepping it by vectors rounds
    otherwise: the written-out update with the other mask is off in some elements."""
    cell = (30,)
    way, one_at_a_time = fused_adam_way(30, torch.float32, torch.device("cpu"), torch._fused_adamw_, False, DEFAULTS)
    if way != "written out":
        pytest.skip(f"this CPU steps 30-float cells {way}")
    values = state(cell, torch.float32, 7)
    alone = fused(values, [1] * CELLS, 3e-3, 7, torch._fused_adamw_, 0.0)
    param, grad, exp_avg, exp_avg_sq = (t.clone() for t in values)
    step_sizes = torch.full((CELLS,), 3e-3 / (1 - 0.9**7), dtype=torch.float64)
    adam_written_out(param, grad, exp_avg, exp_avg_sq, step_sizes, ~one_at_a_time, 7, DEFAULTS)
    assert not torch.equal(exp_avg_sq, alone[2])
    assert torch.equal(exp_avg, alone[1])  # the first moment rounds alike either way
