"""exact_linears: stacked under vmap, linear layers compute each cell's outputs and gradients bit
for bit as the cell computes them alone."""

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from grokscope.train.stacked_linear import exact_linears

CELLS = 5


def cells_and_data(in_features: int, bias: bool, shared_input: bool):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(in_features, 48, bias=bias), nn.Tanh(), nn.Linear(48, 30, bias=bias))
    cells = []
    for _ in range(CELLS):
        cell = copy.deepcopy(model)
        for parameter in cell.parameters():
            parameter.data.normal_()
        cells.append(cell)
    x = torch.randn(45, in_features) if shared_input else torch.randn(CELLS, 45, in_features)
    return model, cells, x, torch.randn(45, 30)


def mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((output - target) ** 2).mean()


@pytest.mark.parametrize("in_features", [1, 7, 64])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("shared_input", [True, False], ids=["shared-input", "own-input"])
def test_a_stack_computes_each_cells_bits(in_features, bias, shared_input):
    model, cells, x, target = cells_and_data(in_features, bias, shared_input)
    inputs = [x if shared_input else x[i].clone().requires_grad_() for i in range(CELLS)]
    alone = []
    for cell, cell_input in zip(cells, inputs, strict=True):
        loss = mse(cell(cell_input), target)
        wrt = [*cell.parameters()] + ([] if shared_input else [cell_input])
        alone.append((loss, torch.autograd.grad(loss, wrt)))

    template = exact_linears(copy.deepcopy(model))
    names = [name for name, _ in model.named_parameters()]
    stacks = {n: torch.stack([c.get_parameter(n).detach() for c in cells]).requires_grad_() for n in names}
    stacked_input = x if shared_input else x.clone().requires_grad_()
    losses = vmap(
        lambda params, cell_input: mse(functional_call(template, params, (cell_input,)), target),
        in_dims=(0, None if shared_input else 0),
    )(stacks, stacked_input)
    wrt = [*stacks.values()] + ([] if shared_input else [stacked_input])
    stacked = torch.autograd.grad(losses.sum(), wrt)

    for i, (loss, grads) in enumerate(alone):
        assert torch.equal(losses[i], loss)
        for alone_grad, stacked_grad in zip(grads, stacked, strict=True):
            assert torch.equal(stacked_grad[i], alone_grad)
            assert stacked_grad[i].is_contiguous()
        # another cell is elsewhere: the comparison can fail
        assert not torch.equal(stacked[0][(i + 1) % CELLS], grads[0])


def test_alone_the_layers_compute_as_before_and_torch_func_grad_is_refused():
    _, cells, x, target = cells_and_data(7, True, True)
    template = exact_linears(copy.deepcopy(cells[0]))
    assert torch.equal(template(x), cells[0](x))
    assert torch.equal(template(x.view(5, 9, 7)), cells[0](x.view(5, 9, 7)))  # other shapes: F.linear
    params = {n: p.detach() for n, p in cells[0].named_parameters()}
    with pytest.raises(RuntimeError, match=r"torch\.autograd"):
        grad(lambda p: mse(functional_call(template, p, (x,)), target))(params)
