"""The sub-network masks: silenced neurons are exactly zero and stay zero through training."""

from __future__ import annotations

import pytest
import torch

import grokscope
from grokscope.config import parse_config
from grokscope.errors import ConfigError
from grokscope.experiments.oinfo import condition_of
from grokscope.experiments.oinfo_subnetwork import keep_hidden_neurons, replay
from grokscope.runner import Experiment
from tests.conftest import tiny_config_data


def test_masked_neurons_are_silent_and_stay_frozen_while_the_others_train():
    experiment = Experiment(parse_config(tiny_config_data(model={"name": "mlp", "width": 12})), device="cpu")
    model, task = experiment.model, experiment.task
    keep = torch.zeros(12, dtype=torch.bool)
    keep[[1, 4, 5, 9]] = True
    # the reference: the same network with the other neurons' weights zeroed by hand
    first, last = model.linears
    expected_hidden = torch.relu(task.x_train @ (first.weight * keep[:, None]).T + first.bias * keep)
    expected = expected_hidden @ (last.weight * keep[None, :]).T + last.bias
    keep_hidden_neurons(model, 0, keep, task.x_train[:2])
    assert torch.allclose(model(task.x_train), expected, atol=1e-6)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    experiment.trainer(callbacks=[]).fit()
    hidden = model.trace(task.x_train).layers[0].x
    assert torch.all(hidden[:, ~keep] == 0)
    assert torch.all(model.linears[1].weight[:, ~keep] == 0)
    trained = dict(model.named_parameters())
    original = "linears.0.parametrizations.weight.original"
    assert torch.all(trained[original][~keep] == 0)  # the stored weights themselves stay zero
    assert not torch.equal(trained[original][keep], before[original][keep])  # the kept ones learn


def test_residual_models_are_refused():
    experiment = Experiment(
        parse_config(tiny_config_data(model={"name": "mlp", "depth": 4, "width": 8, "residual": True})), device="cpu"
    )
    with pytest.raises(ConfigError, match="residual"):
        keep_hidden_neurons(experiment.model, 0, torch.ones(8, dtype=torch.bool), experiment.task.x_train[:2])


def test_replay_reproduces_a_run_bitwise(tmp_path):
    config = parse_config(tiny_config_data(training={"steps": 30}, output={"checkpoint_every": 10}))
    run = grokscope.run(config, out=tmp_path / "run", progress=False)
    weights, _ = run.store.load_checkpoint(20, torch.device("cpu"))
    replayed = replay(run.config, 20).model.state_dict()
    for key, value in weights.items():
        assert torch.equal(value, replayed[key]), key


def test_condition_of_strips_the_seed_suffix():
    assert condition_of("wd2_s13") == "wd2" and condition_of("alpha8") == "alpha8"
