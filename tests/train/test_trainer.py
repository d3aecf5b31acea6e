"""Training: determinism, probes that leave no trace, divergence, the objective."""

import random
from typing import Literal

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import grokscope
from grokscope.config import parse_config
from grokscope.models.base import MODELS, LayerRecord, ModelSpec, Trace, TracedModel
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeSpec
from grokscope.runner import Experiment, _final_metrics
from tests.conftest import tiny_config_data


class DropoutNetSpec(ModelSpec):
    """A model whose training draws from the global torch RNG (dropout) and has batch norm,
    so any probe leaking RNG state, modes or running statistics changes the trajectory."""

    name: Literal["test_dropout_net"] = "test_dropout_net"


class DropoutNet(TracedModel):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_in, 32)
        self.norm = nn.BatchNorm1d(32)
        self.dropout = nn.Dropout(0.3)
        self.out = nn.Linear(32, n_out)

    def trace(self, x: torch.Tensor) -> Trace:
        h = self.norm(self.hidden(x))
        z = self.dropout(torch.relu(h))
        logits = self.out(z)
        return Trace(
            [
                LayerRecord("hidden", self.hidden.weight, self.hidden.bias, self.norm, "relu", x, h, z),
                LayerRecord("output", self.out.weight, self.out.bias, None, "identity", z, logits, logits),
            ],
            logits,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trace(x).output


if "test_dropout_net" not in MODELS:
    MODELS.register(DropoutNetSpec)(lambda spec, task: DropoutNet(task.input_dim, task.output_dim))


class VandalSpec(ProbeSpec):
    name: Literal["test_vandal"] = "test_vandal"


class Vandal(Probe):
    """Does everything a careless probe could: perturbs weights and batch-norm statistics,
    draws from every global RNG, leaves gradients and train mode behind."""

    touches_weights = True

    def __call__(self, context: ProbeContext) -> dict[str, float]:
        model = context.model
        model.train()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        out = model(context.task.x_train)  # train mode: updates BN running stats, draws dropout masks
        out.sum().backward()
        torch.rand(100)
        np.random.rand(10)
        random.random()
        return {"vandal/score": float(out.detach().mean())}


if "test_vandal" not in PROBES:
    PROBES.register(VandalSpec)(Vandal)


def train_without_probes(config) -> dict[str, torch.Tensor]:
    experiment = Experiment(config)
    experiment.trainer(callbacks=[]).fit()
    return {k: v.clone() for k, v in experiment.model.state_dict().items()}


def final_weights(run: grokscope.Run) -> dict[str, torch.Tensor]:
    return dict(run.load_model().state_dict())


@pytest.mark.parametrize("batch_size", [None, 16])
def test_probes_on_or_off_leave_the_weights_bitwise_equal(tmp_path, batch_size):
    data = tiny_config_data(
        model={"name": "test_dropout_net"},
        training={"steps": 60, "batch_size": batch_size},
        probes=[{"name": "weight_norm"}, {"name": "test_vandal", "cadence": "every"}],
    )
    data["model"] = {"name": "test_dropout_net"}
    config = parse_config(data)
    reference = train_without_probes(config)
    run = grokscope.run(config, out=tmp_path / "probed", progress=False)
    assert run.metrics["vandal/score"].notna().sum() > 10  # the vandal did run, often
    probed = final_weights(run)
    assert reference.keys() == probed.keys()
    for key in reference:
        assert torch.equal(reference[key], probed[key]), key


def test_same_seed_same_run_and_other_seed_differs(tmp_path):
    config = parse_config(tiny_config_data(training={"steps": 40, "batch_size": 8}))
    a = grokscope.run(config, out=tmp_path / "a", progress=False)
    b = grokscope.run(config, out=tmp_path / "b", progress=False)
    c = grokscope.run(config.model_copy(update={"seed": 1}), out=tmp_path / "c", progress=False)
    assert a.metrics.equals(b.metrics)
    assert not a.metrics.equals(c.metrics)


def test_divergence_stops_the_run_marks_it_and_keeps_the_metrics(tmp_path):
    config = parse_config(
        tiny_config_data(optimizer={"name": "sgd", "lr": 1e6}, training={"steps": 500, "loss": "mse"})
    )
    run = grokscope.run(config, out=tmp_path / "boom", progress=False)
    summary = run.summary
    assert summary["status"] == "diverged"
    assert summary["diverged_at_step"] < 500 and not np.isfinite(summary["last_loss"])
    assert len(run.metrics) >= 2 and run.metrics["step"].iloc[0] == 0
    assert [e["event"] for e in run.events] == ["started", "diverged"]


@pytest.mark.parametrize(
    "optimizer",
    [
        {"name": "sgd", "lr": 0.5, "momentum": 0.9, "weight_decay": 0.0},
        {"name": "adam", "lr": 0.01, "weight_decay": 0.0},
    ],
)
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_optimizers_and_losses_train(tmp_path, optimizer, loss):
    config = parse_config(
        tiny_config_data(
            optimizer=optimizer,
            training={"steps": 150, "loss": loss, "target_scale": 1.0},
            task={"train_fraction": 0.9},
        )
    )
    run = grokscope.run(config, out=tmp_path / "r", progress=False)
    metrics = run.metrics
    assert metrics["train/loss"].iloc[-1] < metrics["train/loss"].iloc[0]
    assert metrics["train/acc"].iloc[-1] > 3 / 11  # three times chance


def test_parameter_groups_get_their_own_learning_rate(tiny_config):
    config = tiny_config.model_copy(deep=True)
    config.optimizer.groups = {"last_layer": {"lr": 0.5, "weight_decay": 0.0}}
    optimizer = Experiment(config).optimizer
    by_role = {group["role"]: group for group in optimizer.param_groups}
    assert by_role["last_layer"]["lr"] == 0.5 and by_role["default"]["lr"] == 0.01
    assert by_role["last_layer"]["weight_decay"] == 0.0


@pytest.mark.parametrize("name", ["adamw", "adam"])
def test_adam_steps_with_the_fused_kernel_the_ensemble_uses(tiny_config, name):
    """Sequential runs and batched ensembles step Adam with one implementation, torch's fused
    kernel, so that rounding cannot set them apart; its default (a for-loop on CPU) rounds
    differently within these five steps."""
    config = tiny_config.model_copy(deep=True)
    config.optimizer.name = name
    experiment = Experiment(config)
    (group,) = experiment.optimizer.param_groups  # one group: one kernel call steps all of it
    params = group["params"]
    expected = [p.detach().clone() for p in params]
    exp_avgs = [torch.zeros_like(p) for p in expected]
    exp_avg_sqs = [torch.zeros_like(p) for p in expected]
    kernel = torch._fused_adamw_ if name == "adamw" else torch._fused_adam_
    generator = torch.Generator().manual_seed(0)
    for step in range(1, 6):
        grads = [torch.randn(p.shape, generator=generator) for p in params]
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        experiment.optimizer.step()
        kernel(
            expected,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            [torch.tensor(float(step))] * len(params),
            lr=group["lr"],
            beta1=group["betas"][0],
            beta2=group["betas"][1],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            amsgrad=False,
            maximize=False,
        )
    for p, e in zip(params, expected, strict=True):
        assert torch.equal(p.detach(), e)


def test_cuda_is_refused_clearly_without_a_gpu(tiny_config):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(grokscope.ConfigError, match="CUDA is not available"):
        Experiment(tiny_config, device="cuda")


def test_final_metrics_are_each_columns_last_recorded_value():
    nan = float("nan")
    frame = pd.DataFrame({"step": [0, 10, 20], "train/loss": [2.0, 1.0, 0.5], "rpd/mean": [0.3, 0.2, nan]})
    assert _final_metrics(frame) == {"train/loss": 0.5, "rpd/mean": 0.2}
    assert _final_metrics(frame.assign(empty=[nan, nan, nan])) == {"train/loss": 0.5, "rpd/mean": 0.2}
