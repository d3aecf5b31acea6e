"""NTK probe: kernel distance from initialization, known answers and resumable state."""

import pytest
import torch

from grokscope.models.base import Trace, TracedModel
from grokscope.probes.base import ProbeContext
from grokscope.probes.ntk import NTKProbe, NTKSpec
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective


class Sequential(TracedModel):
    def __init__(self, *layers: torch.nn.Module) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)

    def trace(self, x):
        return Trace(layers=[], output=self(x))


def regression_task() -> Task:
    x = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    return Task(x_train=x, y_train=y, x_test=x, y_test=y, kind="regression")


def train(model, task, steps=200, lr=0.05):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(task.x_train), task.y_train).backward()
        optimizer.step()


def distance_after_training(model, task, spec=None):
    probe = NTKProbe(spec or NTKSpec(samples=8))
    objective = Objective(task, "mse")
    probe.setup(model, task, objective)
    start = probe(ProbeContext(model, task, objective, step=0, seed=0))
    assert start["ntk/kernel_distance"] == pytest.approx(0.0, abs=1e-12)
    train(model, task)
    return probe, probe(ProbeContext(model, task, objective, step=1, seed=0))


def test_linear_model_kernel_never_moves_but_a_two_layer_network_does():
    task = regression_task()
    torch.manual_seed(0)
    _, linear = distance_after_training(Sequential(torch.nn.Linear(3, 1)), task)
    assert linear["ntk/kernel_distance"] == pytest.approx(0.0, abs=1e-9)  # the NTK of w.x + b is X X^T + 1
    assert linear["ntk/relative_change"] == pytest.approx(0.0, abs=1e-6)
    small = Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        for p in small.parameters():
            p.mul_(0.05)  # small start: rich, the kernel changes
    _, deep = distance_after_training(small, task)
    assert deep["ntk/kernel_distance"] > 0.05


def test_state_dict_keeps_the_initial_kernel_for_resumed_runs():
    task = regression_task()
    torch.manual_seed(1)
    model = Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    probe, measured = distance_after_training(model, task, NTKSpec(samples=6, mode="full", store_kernel=True))
    resumed = NTKProbe(NTKSpec(samples=6, mode="full", store_kernel=True))
    resumed.load_state_dict(probe.state_dict())
    again = resumed(ProbeContext(model, task, Objective(task, "mse"), step=1, seed=0))
    assert again["ntk/kernel_distance"] == pytest.approx(measured["ntk/kernel_distance"], rel=1e-9)
    assert again["kernel"].shape == (6, 6)
