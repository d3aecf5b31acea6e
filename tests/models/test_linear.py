"""Deep and diagonal linear networks: traces, end-to-end maps and the balanced initializations."""

from __future__ import annotations

import itertools

import pytest
import torch

from grokscope.errors import ConfigError
from grokscope.models import build_model
from grokscope.models.linear import DiagonalLinearSpec, LinearNetworkSpec
from grokscope.tasks import build_task
from grokscope.tasks.regression import TeacherStudentSpec


def teacher(input_dim: int = 6, output_dim: int = 4):
    return build_task(TeacherStudentSpec(input_dim=input_dim, output_dim=output_dim, scales=[3.0, 1.0], n_train=20))


@pytest.mark.parametrize("widths", [[], [8], [12, 6, 3], [3, 6, 12]])  # linear model, funnel, anti-funnel
def test_trace_layers_shapes_and_output(widths):
    torch.manual_seed(0)
    task = teacher()
    model = build_model(LinearNetworkSpec(widths=widths, output_scale=0.5), task)
    x = task.x_train
    trace = model.trace(x)
    assert torch.equal(trace.output, model(x))
    assert [tuple(r.h.shape) for r in trace.layers] == [(20, w) for w in [*widths, 4]]
    for record in trace.layers:
        assert torch.allclose(record.h, record.input @ record.weight.T, atol=1e-5)
        assert torch.equal(record.x, record.h)
    assert torch.allclose(model(x), x @ model.end_to_end().T, atol=1e-5)


@pytest.mark.parametrize(
    ("n_in", "hidden", "n_out", "lam"), [(6, 3, 4, 0.5), (6, 3, 2, -0.7), (3, 5, 8, 1.0), (4, 7, 2, 0.0)]
)
def test_lambda_balanced_init_satisfies_its_identity(n_in, hidden, n_out, lam):
    torch.manual_seed(1)
    model = build_model(
        LinearNetworkSpec(widths=[hidden], init="lambda_balanced", lam=lam, init_scale=0.3), teacher(n_in, n_out)
    )
    w1, w2 = (linear.weight.detach().double() for linear in model.linears)
    assert (w2.T @ w2 - w1 @ w1.T - lam * torch.eye(hidden, dtype=torch.float64)).abs().max() < 1e-5
    assert w1.abs().max() > 0.1  # not a trivial zero solution


@pytest.mark.parametrize(("hidden", "lam", "needs"), [(5, 0.5, "output width"), (7, -0.5, "input width")])
def test_lambda_balanced_impossible_widths_are_config_errors(hidden, lam, needs):
    with pytest.raises(ConfigError, match=needs):
        build_model(LinearNetworkSpec(widths=[hidden], init="lambda_balanced", lam=lam), teacher(6, 4))
    with pytest.raises(ValueError, match="exactly one hidden layer"):
        LinearNetworkSpec(widths=[3, 3], init="lambda_balanced")


def test_balanced_init_of_a_deep_funnel():
    torch.manual_seed(2)
    model = build_model(LinearNetworkSpec(widths=[10, 5, 3], init="balanced", init_scale=0.2), teacher(8, 2))
    weights = [linear.weight.detach().double() for linear in model.linears]
    for lower, upper in itertools.pairwise(weights):
        assert (upper.T @ upper - lower @ lower.T).abs().max() < 1e-6
    # every layer's nonzero singular values equal the scale
    assert torch.allclose(torch.linalg.svdvals(weights[1])[:2], torch.full((2,), 0.2, dtype=torch.float64), atol=1e-6)


def test_gaussian_init_scale():
    torch.manual_seed(3)
    model = build_model(LinearNetworkSpec(widths=[4000], init_scale=0.1), teacher(100, 1))
    std = float(model.linears[0].weight.detach().std())
    assert abs(std - 0.1 / 10) < 0.02 * 0.01


def test_diagonal_network_product_trace_and_conserved_imbalance():
    task = build_task(TeacherStudentSpec(input_dim=5, n_train=16))
    model = build_model(DiagonalLinearSpec(init_scale=0.5, lam=0.3, output_scale=2.0), task)
    a, b = model.a.detach(), model.b.detach()
    assert torch.allclose(a**2 - b**2, torch.full((5,), 0.3), atol=1e-6)
    x = task.x_train
    assert torch.allclose(model(x)[:, 0], 2.0 * (x * a * b).sum(1), atol=1e-6)
    trace = model.trace(x)
    assert torch.equal(trace.output, model(x))
    for record in trace.layers:
        assert torch.allclose(record.h, record.input @ record.weight.T, atol=1e-6)
    with pytest.raises(ConfigError, match="one output"):
        build_model(DiagonalLinearSpec(), teacher(6, 4))
