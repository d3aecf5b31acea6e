"""The sharpness probe against the full Hessian of a tiny network."""

from __future__ import annotations

import pytest
import torch

from grokscope.config import parse_config
from tests.conftest import tiny_config_data
from tests.probes.helpers import assert_training_unchanged, measure, tiny_experiment


def full_hessian(experiment) -> torch.Tensor:
    model, task, objective = experiment.model, experiment.task, experiment.objective
    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().flatten() for p in model.parameters()]).double().requires_grad_()

    def loss(theta):
        params, offset = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = theta[offset : offset + shape.numel()].view(shape)
            offset += shape.numel()
        output = torch.func.functional_call(model.double(), params, (task.x_train.double(),))
        return objective.loss(output, task.y_train)

    return torch.autograd.functional.hessian(loss, flat)


def test_probe_matches_the_eigenvalues_and_trace_of_the_full_hessian():
    experiment = tiny_experiment(model={"name": "mlp", "width": 6}, task={"p": 5}, dtype="float64")
    out = measure(experiment, {"name": "sharpness", "iterations": 1000, "tolerance": 1e-9, "trace_samples": 2000})
    hessian = full_hessian(experiment)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    top = eigenvalues[eigenvalues.abs().argmax()]
    assert out["sharpness/top_eigenvalue"] == pytest.approx(float(top), rel=1e-4)
    spread = torch.sqrt(2 * (hessian.pow(2).sum() - hessian.diagonal().pow(2).sum()) / 2000)
    assert out["sharpness/trace"] == pytest.approx(float(hessian.trace()), abs=4 * float(spread))


def test_sharpness_in_a_run_leaves_training_bitwise_equal(tmp_path):
    config = parse_config(
        tiny_config_data(training={"steps": 20}, probes=[{"name": "sharpness", "iterations": 5, "trace_samples": 2}])
    )
    run = assert_training_unchanged(tmp_path, config)
    assert run.metrics["sharpness/top_eigenvalue"].notna().sum() >= 3
