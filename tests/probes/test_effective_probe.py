"""class_effective probe: Liu's class effective loss of a hidden representation (appendix I)."""

from __future__ import annotations

import numpy as np
import pytest

from grokscope.config import parse_config
from grokscope.errors import ConfigError
from grokscope.probes.base import ProbeContext
from grokscope.probes.effective import ClassEffective, ClassEffectiveSpec
from grokscope.runner import Experiment
from grokscope.theory.effective import class_effective_loss


def config(**model):
    return parse_config(
        {
            "name": "eff",
            "device": "cpu",
            "task": {"name": "digits", "n_train": 200, "n_test": 100},
            "model": {"name": "mlp", "depth": 3, "width": 12, "activation": "tanh", **model},
            "optimizer": {"name": "adam", "lr": 0.01},
            "training": {"steps": 5, "loss": "mse"},
        }
    )


def test_probe_reads_the_last_hidden_layer_and_a_collapsed_layer_reads_zero():
    experiment = Experiment(config())
    model, task = experiment.model, experiment.task
    context = ProbeContext(model, task, experiment.objective, step=0, seed=0)
    output = ClassEffective(ClassEffectiveSpec())(context)
    features = model.trace(task.x_test).layers[-2].x.detach().double().numpy()
    loss, _, _ = class_effective_loss(features, task.y_test.numpy())
    assert output["effective/loss"] == pytest.approx(loss / len(features), rel=1e-9)
    assert 0.3 < output["effective/within_class"] <= 1.0  # random features: little class structure
    # the one-hot targets of each sample's class are a perfectly collapsed "representation"
    centred = np.eye(10)[task.y_test.numpy()]
    assert class_effective_loss(centred, task.y_test.numpy())[0] == 0.0


def test_probe_refuses_regression_tasks():
    experiment = Experiment(
        parse_config(
            {
                "name": "reg",
                "device": "cpu",
                "task": {"name": "teacher_student", "input_dim": 3, "scales": [1.0, 0.5, 0.2], "n_train": 20},
                "model": {"name": "mlp", "depth": 2, "width": 4},
                "optimizer": {"name": "sgd", "lr": 0.01},
                "training": {"steps": 1, "loss": "mse"},
            }
        )
    )
    context = ProbeContext(experiment.model, experiment.task, experiment.objective, step=0, seed=0)
    with pytest.raises(ConfigError, match="classification"):
        ClassEffective(ClassEffectiveSpec())(context)
