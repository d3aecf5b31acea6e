"""The O-info probe: the pipeline on the traced layer, wiring to the store, training untouched."""

from __future__ import annotations

import numpy as np
import pytest

from grokscope.config import parse_config
from grokscope.errors import ConfigError
from grokscope.measures.oinfo import layer_oinfo
from tests.conftest import tiny_config_data
from tests.probes.helpers import assert_training_unchanged, measure, tiny_experiment


def test_probe_reports_the_pipeline_on_the_first_hidden_layer():
    experiment = tiny_experiment(model={"name": "mlp", "width": 24})
    out = measure(experiment, {"name": "oinfo", "bins": 5})
    activations = experiment.model.trace(experiment.task.x_train).layers[0].x.detach().double().numpy()
    expected = layer_oinfo(activations, n_bins=5)
    assert out["oinfo/synergy"] == pytest.approx(-expected.synergy)
    assert out["oinfo/redundancy"] == pytest.approx(expected.redundancy)
    assert out["oinfo/synergy_neurons"] == expected.synergy_neurons
    assert np.array_equal(out["labels"], expected.labels)
    assert out["oinfo/active_neurons"] == expected.n_active
    assert len(out["synergy_by_order"]) == 5 - 2  # orders 3, 4, 5


def test_layer_out_of_range_is_a_config_error():
    experiment = tiny_experiment()
    with pytest.raises(ConfigError, match=r"probes.oinfo.layer = 2: .*allowed -1..0"):
        measure(experiment, {"name": "oinfo", "layer": 2})


def test_probe_in_a_run_stores_metrics_and_arrays_and_leaves_training_bitwise_equal(tmp_path):
    config = parse_config(
        tiny_config_data(training={"steps": 30}, probes=[{"name": "oinfo", "bins": 4, "cadence": [0, 10, 30]}])
    )
    run = assert_training_unchanged(tmp_path, config)
    rows = run.metrics.dropna(subset=["oinfo/synergy"])
    assert rows["step"].tolist() == [0, 10, 30]
    arrays = run.arrays("oinfo")
    assert sorted(arrays) == [0, 10, 30]
    assert arrays[30]["labels"].shape == (16,)
