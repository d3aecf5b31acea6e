"""MLP options of the seed papers: per-layer, upstream and downstream init scales, Gaussian
init, output scale; and the Omnigrok weight-norm constraint, exact under resume."""

from __future__ import annotations

import math

import pytest
import torch

import grokscope
from grokscope.config import parse_config
from grokscope.models import MLP, MLPSpec
from grokscope.runner import Experiment
from grokscope.train.trainer import Callback
from tests.conftest import tiny_config_data


def make(**fields) -> MLP:
    torch.manual_seed(0)
    return MLP(MLPSpec(**fields), input_dim=6, output_dim=3)


def test_layer_upstream_and_downstream_scales_multiply_the_default_init():
    reference = make(depth=3, width=5)
    scaled = make(
        depth=3,
        width=5,
        init_scale=2.0,
        layer_init_scales=[1.0, 3.0, 1.0],
        upstream_init_scale=0.5,
        downstream_init_scale=4.0,
    )
    for ref, new, factor in zip(reference.linears, scaled.linears, [1.0, 6.0, 8.0]):
        assert torch.allclose(new.weight, ref.weight * factor) and torch.allclose(new.bias, ref.bias * factor)
    with pytest.raises(ValueError, match="one factor per linear layer"):
        MLPSpec(depth=3, layer_init_scales=[1.0, 2.0])


def test_normal_init_has_the_asked_std():
    torch.manual_seed(0)
    model = MLP(MLPSpec(depth=2, width=2000, init="normal", init_scale=5.0), input_dim=400, output_dim=3)
    first = model.linears[0].requires_grad_(False)
    assert abs(float(first.weight.std()) - 5.0 / math.sqrt(400)) < 0.01 * 5.0 / math.sqrt(400)
    assert float(first.bias.abs().max()) == 0.0


def test_output_scale_multiplies_the_output_and_is_folded_into_the_trace():
    x = torch.randn(4, 6)
    plain, scaled = make(depth=3, width=5), make(depth=3, width=5, output_scale=0.1)
    assert torch.allclose(scaled(x), 0.1 * plain(x), atol=1e-7)
    trace = scaled.trace(x)
    assert torch.equal(trace.output, scaled(x))
    out = trace.layers[-1]
    assert torch.allclose(out.h, out.input @ out.weight.T + out.bias, atol=1e-6)


def total_norm(model: torch.nn.Module) -> float:
    return math.sqrt(sum(float((p.detach().double() ** 2).sum()) for p in model.parameters()))


@pytest.mark.parametrize("target", ["initial", 3.0])
def test_weight_norm_is_held_after_every_step(target):
    config = parse_config(tiny_config_data(model={"init_scale": 4.0}, optimizer={"weight_norm": target}))
    experiment = Experiment(config, device="cpu")
    initial = total_norm(experiment.model)
    assert target == "initial" or abs(initial - 3.0) < 1e-5
    trainer = experiment.trainer([])
    free = Experiment(parse_config(tiny_config_data(model={"init_scale": 4.0})), device="cpu")
    free_trainer = free.trainer([])
    for _ in range(20):
        trainer.train_step()
        free_trainer.train_step()
        assert abs(total_norm(experiment.model) - initial) < 1e-4 * initial
    # the constraint changes the trajectory: without it (wd 1.0) the norm moves
    assert abs(total_norm(free.model) - total_norm(Experiment(free.config, device="cpu").model)) > 1e-3


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, trainer) -> None:
        if trainer.step == self.step:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_weight_norm_run_resumes_exactly(tmp_path):
    data = tiny_config_data(
        model={"init_scale": 4.0, "zero_init_last": True},
        optimizer={"weight_norm": "initial", "weight_decay": 0.0},
        training={"steps": 60},
        output={"checkpoint_every": 20},
    )
    interrupted = grokscope.run(data, out=tmp_path / "a", progress=False, callbacks=[StopAt(30)])
    assert interrupted.summary["status"] == "interrupted"
    resumed = grokscope.run(data, out=tmp_path / "a", resume=True, progress=False)
    whole = grokscope.run(data, out=tmp_path / "b", progress=False)
    a, b = resumed.load_model().state_dict(), whole.load_model().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["train/loss"].tolist() == whole.metrics["train/loss"].tolist()
