"""The neural-collapse probe reads the output layer's input, weight and predictions."""

from __future__ import annotations

import pytest

from grokscope.config import parse_config
from grokscope.errors import ConfigError
from grokscope.measures.collapse import neural_collapse
from tests.conftest import tiny_config_data
from tests.probes.helpers import assert_training_unchanged, measure, tiny_experiment


def test_probe_measures_the_last_hidden_layer():
    experiment = tiny_experiment(model={"name": "mlp", "depth": 3, "width": 12})
    out = measure(experiment, {"name": "collapse"})
    trace = experiment.model.trace(experiment.task.x_train)
    expected = neural_collapse(
        trace.layers[1].x, experiment.task.y_train, trace.layers[2].weight, trace.output.argmax(dim=1), n_classes=11
    )
    for key, value in expected.as_dict().items():
        assert out[f"collapse/{key}"] == pytest.approx(value)


def test_regression_task_is_a_config_error():
    experiment = tiny_experiment(task={"name": "modular_arithmetic", "p": 11})
    experiment.task.kind = "regression"
    with pytest.raises(ConfigError, match=r"probes\.collapse"):
        measure(experiment, {"name": "collapse"})


def test_collapse_in_a_run_leaves_training_bitwise_equal(tmp_path):
    config = parse_config(tiny_config_data(training={"steps": 20}, probes=[{"name": "collapse", "cadence": "every"}]))
    run = assert_training_unchanged(tmp_path, config)
    assert run.metrics["collapse/nc1"].notna().sum() >= 10
