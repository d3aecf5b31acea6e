"""The embedding probe on a model whose embeddings lie on an ellipse in a plane."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from grokscope.errors import ConfigError
from grokscope.models.base import LayerRecord, Trace, TracedModel
from grokscope.probes.base import ProbeContext, untouched
from grokscope.probes.embedding import Embedding, EmbeddingSpec
from grokscope.tasks.arithmetic import ModularArithmeticSpec, build_modular_arithmetic
from grokscope.train.objective import Objective
from tests.probes.helpers import measure, tiny_experiment


class EllipseAdder(TracedModel):
    """Logits = decoder(E_a + E_b) with E_k on an ellipse (radii 1 and 1/2) in a random plane of R^d:
    PCA variance ratios 0.8 and 0.2."""

    def __init__(self, p: int, d: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        plane, _ = torch.linalg.qr(torch.randn(d, 2, generator=generator))
        angles = 2 * math.pi * torch.arange(p) / p
        self.embedding = nn.Parameter(torch.stack([angles.cos(), 0.5 * angles.sin()], dim=1) @ plane.T + 0.5)
        self.decoder = nn.Linear(d, p)

    def trace(self, x: torch.Tensor) -> Trace:
        summed = self.embedding[x[:, 0]] + self.embedding[x[:, 1]]
        logits = self.decoder(summed)
        layer = LayerRecord("output", self.decoder.weight, self.decoder.bias, None, "identity", summed, logits, logits)
        return Trace([layer], logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trace(x).output

    def embeddings(self) -> torch.Tensor:
        return self.embedding


def test_ellipse_embeddings_and_truncated_accuracies():
    p, d = 7, 6
    task = build_modular_arithmetic(ModularArithmeticSpec(p=p, encoding="tokens", train_fraction=0.5))
    model = EllipseAdder(p, d)
    objective = Objective(task, "cross_entropy")
    probe = Embedding(EmbeddingSpec(components=[1, 2]))
    with untouched(model, snapshot_weights=True):
        probe.setup(model, task, objective)
    before = model.embedding.detach().clone()
    with untouched(model, snapshot_weights=probe.touches_weights):
        out = probe(ProbeContext(model, task, objective, step=0, seed=0))
    assert torch.equal(model.embedding, before)  # the truncated tables were written back
    entropy = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2))
    assert out["embedding/entropy"] == pytest.approx(entropy, rel=1e-6)
    assert out["embedding/effective_dim"] == pytest.approx(math.exp(entropy), rel=1e-6)
    assert out["embedding/pc1_ratio"] == pytest.approx(0.8, rel=1e-6)
    assert out["embedding/initial_top2"] == pytest.approx(1.0, rel=1e-6)
    full = {
        split: float(objective.correct(model(x), y).float().mean())
        for split, (x, y) in {"train": (task.x_train, task.y_train), "test": (task.x_test, task.y_test)}.items()
    }
    assert out["embedding/train_acc_pc2"] == pytest.approx(full["train"])
    assert out["embedding/test_acc_pc2"] == pytest.approx(full["test"])
    assert out["table"].shape == (p, d)

    # the one-component table is the ellipse flattened onto its major axis
    with torch.no_grad():
        centred = model.embedding - model.embedding.mean(dim=0)
        axis = torch.linalg.svd(centred.double(), full_matrices=False)[2][0].float()
        model.embedding.copy_(model.embedding.mean(dim=0) + (centred @ axis)[:, None] * axis)
    line = float(objective.correct(model(task.x_train), task.y_train).float().mean())
    assert out["embedding/train_acc_pc1"] == pytest.approx(line)


def test_model_without_embeddings_is_a_config_error():
    with pytest.raises(ConfigError, match="has no embedding table"):
        measure(tiny_experiment(), {"name": "embedding"})
