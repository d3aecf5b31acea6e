"""The basic probes: loss and accuracy of a model with known outputs, and each probe's stacked
measure (what the batched ensemble records) equal to the probe called on each model alone."""

import math

import pytest
import torch
from torch import nn

from grokscope.config import parse_config
from grokscope.probes.base import PROBES, ProbeContext, StackedContext, build_probe
from grokscope.runner import Experiment
from tests.conftest import tiny_config_data
from tests.probes.helpers import tiny_experiment


class FixedOutputs(nn.Module):
    """Ignores its input: every sample gets the same logits (a known cross-entropy)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1)


def test_loss_and_accuracy_of_a_model_that_always_predicts_class_0():
    experiment = tiny_experiment()  # modular addition mod 11: 11 classes
    logits = torch.zeros(11)
    logits[0] = math.log(10.0)  # softmax: p(0) = 10 / 20, p(other) = 1 / 20
    model = FixedOutputs(logits)
    task = experiment.task
    probe = build_probe(PROBES.spec("loss_accuracy")())
    result = probe(ProbeContext(model, task, experiment.objective, 0, 0))
    for split, y in (("train", task.y_train), ("test", task.y_test)):
        share_of_0 = float((y == 0).double().mean())
        expected_loss = share_of_0 * math.log(2) + (1 - share_of_0) * math.log(20)
        assert result[f"{split}/loss"] == pytest.approx(expected_loss, rel=1e-6)
        assert result[f"{split}/acc"] == pytest.approx(share_of_0, abs=1e-12)


LIU_TOY = {  # Liu's regression to target vectors, accuracy by the nearest vector
    "name": "liu",
    "device": "cpu",
    "task": {"name": "addition", "p": 10, "train_size": 45, "targets": "vectors", "target_dim": 6},
    "model": {"name": "liu_toy", "embedding_dim": 2, "decoder_widths": [8]},
    "training": {"loss": "mse"},
}


@pytest.mark.parametrize("data", [tiny_config_data(), LIU_TOY], ids=["cross_entropy", "target_vectors"])
def test_stacked_measures_equal_each_model_alone(data):
    experiments = [Experiment(parse_config({**data, "seed": seed}), device="cpu") for seed in range(3)]
    task, objective = experiments[0].task, experiments[0].objective
    models = [e.model for e in experiments]
    named = [dict(m.named_parameters()) for m in models]
    parameters = {name: torch.stack([n[name].detach() for n in named]) for name in named[0]}
    alone = [ProbeContext(m, task, objective, 5, 0) for m in models]
    outputs = {split: torch.stack([c.outputs(split) for c in alone]) for split in ("train", "test")}
    stacked = StackedContext(parameters, outputs, task, objective, 5)
    for name in ("loss_accuracy", "weight_norm"):
        probe = build_probe(PROBES.spec(name)())
        assert probe.measures_stacks
        results = probe.measure_stack(stacked)
        assert len(results) == 3
        for context, result in zip(alone, results, strict=True):
            expected = probe(context)
            assert result.keys() == expected.keys()
            for key, value in expected.items():
                assert result[key] == pytest.approx(value, rel=1e-6, abs=1e-9), (name, key)
    # the models differ, so equal results above are not one model's results repeated
    norms = build_probe(PROBES.spec("weight_norm")()).measure_stack(stacked)
    assert len({round(r["norm/total"], 6) for r in norms}) == 3
