"""A forward written on stacks gives each cell the output and, through autograd, the gradients
its model computes alone, bit for bit; models without one are left to vmap."""

import pytest
import torch

from grokscope.models.mlp import MLP, MLPSpec
from grokscope.models.toy import LiuToy, LiuToySpec
from grokscope.train.stacked_forward import stacked_forward

CELLS = 3


def cells_of(build) -> list[torch.nn.Module]:
    models = []
    for seed in range(CELLS):
        torch.manual_seed(seed)
        models.append(build())
    return models


def check_each_cells_bits(models: list[torch.nn.Module], x: torch.Tensor, shared: bool) -> None:
    """Outputs and gradients of ``sum(output * weights)``, stacked vs each model alone."""
    forward = stacked_forward(models[0])
    assert forward is not None
    names = [name for name, _ in models[0].named_parameters()]
    stacks = {name: torch.stack([m.get_parameter(name).detach() for m in models]).requires_grad_() for name in names}
    outputs = forward(stacks, x, shared)
    weights = torch.randn(outputs.shape[1:], generator=torch.Generator().manual_seed(1), dtype=outputs.dtype)
    grads = torch.autograd.grad((outputs * weights).sum(), list(stacks.values()))
    for i, model in enumerate(models):
        alone = model(x if shared else x[i])
        assert torch.equal(outputs[i], alone), i
        expected = torch.autograd.grad((alone * weights).sum(), [model.get_parameter(n) for n in names])
        for name, grad, grad_alone in zip(names, grads, expected, strict=True):
            assert torch.equal(grad[i], grad_alone), (i, name)
    # different cells compute different things: the comparison can fail
    assert not torch.equal(outputs[0], outputs[1])


@pytest.mark.parametrize(
    "spec",
    [
        {"widths": [24, 24], "activation": "tanh"},
        {"widths": [24, 16], "activation": "relu", "output_scale": 0.1},
        {"widths": [16], "activation": "gelu", "bias": False},
        {"widths": [16, 16, 16, 16], "activation": "gaussian", "residual": True, "output_bias": False},
        {"widths": [16], "activation": "identity", "init": "normal", "init_scale": 5.0},
    ],
)
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "own"])
def test_mlp(spec, shared):
    models = cells_of(lambda: MLP(MLPSpec(**spec), input_dim=6, output_dim=5))
    # image-like samples (2, 3): the MLP flattens them
    x = torch.randn((13, 2, 3) if shared else (CELLS, 13, 2, 3), generator=torch.Generator().manual_seed(2))
    check_each_cells_bits(models, x, shared)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "own"])
def test_liu_toy_with_summed_embeddings(dtype, shared):
    spec = LiuToySpec(embedding_dim=1, decoder_widths=[200, 200])  # the paper's 1-200-200-30 decoder
    models = [m.to(dtype) for m in cells_of(lambda: LiuToy(spec, n_tokens=10, output_dim=30))]
    generator = torch.Generator().manual_seed(3)
    # repeated tokens: the embedding's gradient accumulates over them
    x = torch.randint(0, 10, (45, 2) if shared else (CELLS, 45, 2), generator=generator)
    check_each_cells_bits(models, x, shared)


def test_models_without_a_stacked_forward_are_left_to_vmap():
    assert stacked_forward(LiuToy(LiuToySpec(combine="product"), n_tokens=6, output_dim=6)) is None
    assert stacked_forward(MLP(MLPSpec(batch_norm=True), input_dim=4, output_dim=2)) is None
    assert stacked_forward(torch.nn.Linear(3, 2)) is None
