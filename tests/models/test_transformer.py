"""The small decoder-only transformer: trace records, residual stream, roles, readouts."""

from __future__ import annotations

import pytest
import torch

from grokscope.config import parse_config
from grokscope.errors import ConfigError
from grokscope.models import build_model
from grokscope.models.transformer import TransformerSpec
from grokscope.runner import Experiment
from grokscope.tasks import build_task
from grokscope.tasks.arithmetic import ModularArithmeticSpec


def tokens_task(**fields):
    return build_task(ModularArithmeticSpec(p=7, encoding="tokens", equals_token=True, **fields))


@pytest.mark.parametrize("readout", ["last", "concat"])
def test_trace_records_each_block_mlp_and_reproduces_the_output(readout):
    torch.manual_seed(0)
    task = tokens_task()
    model = build_model(TransformerSpec(n_layers=2, d_model=16, n_heads=2, d_mlp=24, readout=readout), task)
    model.eval()
    x = task.x_train[:9]
    trace = model.trace(x)
    assert torch.equal(trace.output, model(x)) and trace.output.shape == (9, 7)
    assert not trace.sequential
    assert [r.name for r in trace.layers] == ["block1.mlp", "block2.mlp", "output"]
    for record in trace.hidden:
        assert record.h.shape == (9, 24) and record.input.shape == (9, 16)
        assert torch.allclose(record.h, record.input @ record.weight.T + record.bias, atol=1e-5)
        assert torch.equal(record.x, torch.relu(record.h))
    out = trace.layers[-1]
    assert out.input.shape == (9, 16 if readout == "last" else 48)
    assert torch.allclose(out.h, out.input @ out.weight.T + out.bias, atol=1e-5)
    assert [tuple(s.shape) for s in trace.residual_stream] == [(9, 3, 16)] * 2
    assert model.embeddings().shape == (8, 16)  # p tokens and "="


def test_attention_is_causal():
    torch.manual_seed(0)
    model = build_model(TransformerSpec(d_model=8, n_heads=2), tokens_task()).eval()
    x = torch.tensor([[1, 2, 7], [1, 5, 7]])
    stream = model.trace(x).residual_stream[0]
    # the first position cannot see the second token
    assert torch.allclose(stream[0, 0], stream[1, 0]) and not torch.allclose(stream[0, 1], stream[1, 1])


def test_token_embeddings_have_their_own_group_and_dropout_only_in_training():
    config = parse_config(
        {
            "task": {"name": "modular_arithmetic", "p": 5, "encoding": "tokens"},
            "model": {"name": "transformer", "d_model": 8, "n_heads": 2, "dropout": 0.5},
            "optimizer": {"weight_decay": 1.0, "groups": {"embeddings": {"weight_decay": 0.0}}},
        }
    )
    experiment = Experiment(config, device="cpu")
    groups = {g["role"]: g for g in experiment.optimizer.param_groups}
    assert groups["embeddings"]["params"] == [experiment.model.token_embedding.weight]
    assert groups["embeddings"]["weight_decay"] == 0.0 and groups["default"]["weight_decay"] == 1.0
    model, x = experiment.model, experiment.task.x_train[:4]
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_transformer_needs_tokens_and_dividing_heads():
    with pytest.raises(ConfigError, match="token ids"):
        build_model(TransformerSpec(d_model=8, n_heads=2), build_task(ModularArithmeticSpec(p=5)))
    with pytest.raises(ValueError, match="must divide"):
        TransformerSpec(d_model=10, n_heads=4)
