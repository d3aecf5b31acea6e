"""Liu's toy model: embeddings combined by sum or matrix product, then an MLP decoder."""

from __future__ import annotations

import pytest
import torch

from grokscope.config import parse_config
from grokscope.errors import ConfigError
from grokscope.models import build_model
from grokscope.models.toy import LiuToySpec
from grokscope.runner import Experiment
from grokscope.tasks import build_task
from grokscope.tasks.addition import AdditionSpec
from grokscope.tasks.groups import PermutationGroupSpec


def test_sum_model_trace_layers_and_output():
    torch.manual_seed(0)
    task = build_task(AdditionSpec(p=6))
    model = build_model(LiuToySpec(decoder_widths=[8, 5]), task)
    x = task.x_train
    trace = model.trace(x)
    assert torch.equal(trace.output, model(x)) and trace.output.shape == (len(x), 30)
    assert [r.name for r in trace.layers] == ["layer1", "layer2", "output"]
    assert [tuple(r.h.shape) for r in trace.layers] == [(len(x), 8), (len(x), 5), (len(x), 30)]
    E = model.embeddings().detach()
    assert E.shape == (6, 1) and float(E.abs().max()) <= 0.5
    assert torch.equal(trace.layers[0].input, E[x[:, 0]] + E[x[:, 1]])
    first = trace.layers[0]
    assert torch.allclose(first.h, first.input @ first.weight.T + first.bias, atol=1e-6)
    assert torch.equal(first.x, torch.tanh(first.h))


def test_product_model_multiplies_matrix_embeddings():
    torch.manual_seed(0)
    task = build_task(PermutationGroupSpec(n=3))
    model = build_model(LiuToySpec(combine="product", decoder_widths=[4]), task)
    E = model.embeddings().detach()
    assert E.shape == (6, 3, 3)
    x = task.x_test
    trace = model.trace(x)
    expected = torch.stack([E[a] @ E[b] for a, b in x.tolist()]).flatten(1)
    assert torch.allclose(trace.layers[0].input, expected, atol=1e-6)
    assert torch.equal(trace.output, model(x))
    with pytest.raises(ValueError, match="square"):
        LiuToySpec(combine="product", embedding_dim=8)


def test_roles_put_embeddings_and_decoder_in_their_optimizer_groups():
    config = parse_config(
        {
            "task": {"name": "addition", "p": 5},
            "model": {"name": "liu_toy", "decoder_widths": [4]},
            "optimizer": {"groups": {"embeddings": {"lr": 1e-3}, "decoder": {"lr": 1e-4, "weight_decay": 0.5}}},
            "training": {"loss": "mse"},
        }
    )
    experiment = Experiment(config, device="cpu")
    groups = {g["role"]: g for g in experiment.optimizer.param_groups}
    assert set(groups) == {"embeddings", "decoder"}
    assert groups["embeddings"]["params"] == [experiment.model.embedding]
    assert (groups["embeddings"]["lr"], groups["embeddings"]["weight_decay"]) == (1e-3, 0.0)
    assert (groups["decoder"]["lr"], groups["decoder"]["weight_decay"]) == (1e-4, 0.5)
    assert len(groups["decoder"]["params"]) == 4  # two layers, weight and bias each


def test_toy_needs_token_pairs():
    with pytest.raises(ConfigError, match="liu_toy needs token pairs"):
        Experiment(parse_config({"task": {"name": "addition", "encoding": "onehot"}, "model": "liu_toy"}), device="cpu")
