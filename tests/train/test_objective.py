"""Objective.losses: each model's loss of stacked outputs, bitwise its loss alone for MSE."""

from functools import partial
from types import SimpleNamespace

import pytest
import torch

from grokscope.train.objective import Objective


def objective(loss: str, kind: str = "classification", n_classes: int = 5, target_vectors=None) -> Objective:
    task = SimpleNamespace(kind=kind, n_classes=n_classes, target_vectors=target_vectors)
    return Objective(task, loss, target_scale=2.0)


CASES = {
    # name: (objective, per-model output shape, labels for N samples)
    "mse to target vectors (Liu)": (
        lambda g: objective("mse", target_vectors=torch.randn(7, 30, generator=g)),
        (45, 30),
        lambda g: torch.randint(0, 7, (45,), generator=g),
    ),
    "mse to scaled one-hots": (lambda g: objective("mse"), (33, 5), lambda g: torch.randint(0, 5, (33,), generator=g)),
    "mse regression": (
        lambda g: objective("mse", kind="regression"),
        (1000, 3),
        lambda g: torch.randn(1000, 3, generator=g),
    ),
    "mse regression that broadcasts": (
        lambda g: objective("mse", kind="regression"),
        (9, 1),
        lambda g: torch.randn(9, generator=g),
    ),
    "cross-entropy": (lambda g: objective("cross_entropy"), (45, 5), lambda g: torch.randint(0, 5, (45,), generator=g)),
}


@pytest.mark.filterwarnings("ignore:Using a target size")  # the broadcasting case, as F.mse_loss warns alone
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("case", CASES)
def test_each_models_loss_and_its_gradient_are_its_own(case, shared, dtype):
    generator = torch.Generator().manual_seed(0)
    make_objective, shape, make_labels = CASES[case]
    obj = make_objective(generator)
    if obj.target_vectors is not None:
        obj.target_vectors = obj.target_vectors.to(dtype)
    models = 6
    outputs = torch.randn(models, *shape, generator=generator, dtype=dtype, requires_grad=True)
    labels = [make_labels(generator) for _ in range(1 if shared else models)]
    y = labels[0] if shared else torch.stack(labels)
    if y.is_floating_point():
        y = y.to(dtype)
    losses = obj.losses(outputs, y, shared=shared)
    (grads,) = torch.autograd.grad(losses.sum(), outputs)
    # cross-entropy is vmapped, and vmap's reduction rounds otherwise than nll_loss's own
    same = torch.equal if obj.loss_name == "mse" else partial(torch.allclose, rtol=1e-6, atol=0)
    for i in range(models):
        alone = outputs[i].detach().clone().requires_grad_()
        loss = obj.loss(alone, y if shared else y[i])
        (grad,) = torch.autograd.grad(loss, alone)
        assert same(losses[i], loss.detach())
        assert same(grads[i], grad)
    assert len(set(losses.tolist())) == models  # distinct models: the comparison could fail
