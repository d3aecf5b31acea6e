"""Gradient descent with a small step on the catalogue's torch linear networks, on exactly
whitened data, follows the gradient-flow theory at t = learning rate x step to within 2 % of
the target scale over the whole trajectory (issue 6 acceptance)."""

import numpy as np
import pytest
import torch

from grokscope.models.base import build_model
from grokscope.models.linear import DiagonalLinearSpec, LinearNetworkSpec
from grokscope.tasks.base import build_task
from grokscope.tasks.regression import TeacherStudentSpec
from grokscope.theory.layerwise import diagonal_solution, integrate_two_layer, linear_model_solution


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny tensors: a second intra-op thread only adds synchronization (and stalls on a busy machine)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def descend(model, task, lr: float, steps: int, every: int, read):
    """Plain gradient descent on the theory's loss 1/2 mean_n |y - f(x)|^2; read(model) every
    ``every`` steps. Returns the times t = lr x step and the readings."""
    x, y = task.x_train.double(), task.y_train.double()
    model = model.double()
    times, readings = [], []
    for step in range(steps + 1):
        if step % every == 0:
            times.append(lr * step)
            readings.append(read(model))
        loss = 0.5 * ((y - model(x)) ** 2).sum(dim=1).mean()
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
    return np.array(times), np.array(readings)


def whitened_teacher(scales, input_dim, output_dim=1):
    spec = TeacherStudentSpec(
        input_dim=input_dim, output_dim=output_dim, scales=scales, rotate=output_dim > 1, n_train=200, whiten=True
    )
    return build_task(spec)


def test_diagonal_network_follows_the_sigmoid_closed_form():
    S = np.array([3.0, 1.5, 0.75])
    task = whitened_teacher(list(S), 3)
    torch.manual_seed(0)
    model = build_model(DiagonalLinearSpec(init="constant", init_scale=0.01), task)
    times, u = descend(model, task, lr=2e-3, steps=6_000, every=50, read=lambda m: (m.a * m.b).detach().numpy().copy())
    assert u[-1] @ np.ones(3) > 0.99 * S.sum()  # the whole trajectory, saturation included
    assert np.max(np.abs(u - diagonal_solution(S, 1e-4, times))) < 0.02 * S.max()


def test_linear_model_follows_the_exponential_closed_form():
    S = np.array([2.0, -1.0, 0.5])
    task = whitened_teacher(list(S), 3)
    torch.manual_seed(0)
    model = build_model(LinearNetworkSpec(widths=[], init="gaussian", init_scale=1e-9), task)
    times, theta = descend(
        model, task, lr=1e-2, steps=800, every=20, read=lambda m: m.end_to_end().detach().numpy()[0].copy()
    )
    assert np.max(np.abs(theta - linear_model_solution(S, times))) < 0.02 * np.abs(S).max()


def test_two_layer_network_follows_the_integrated_gradient_flow_of_its_own_start():
    task = whitened_teacher([2.0, 1.0], input_dim=4, output_dim=3)
    torch.manual_seed(0)
    model = build_model(LinearNetworkSpec(widths=[3], init="lambda_balanced", init_scale=0.05, lam=0.0), task)
    W1, W2 = (layer.weight.detach().double().numpy().copy() for layer in model.linears)
    times, product = descend(
        model, task, lr=1e-2, steps=1_500, every=25, read=lambda m: m.end_to_end().detach().numpy().copy()
    )
    teacher = task.metadata["teacher"]
    W1t, W2t = integrate_two_layer(teacher, W1, W2, times)
    assert np.max(np.abs(product - W2t @ W1t)) < 0.02 * 2.0
    assert np.abs(product[-1] - teacher).max() < 0.02 * 2.0
