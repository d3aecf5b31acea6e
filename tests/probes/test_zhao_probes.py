"""The Zhao-framework probes (lmap, rpd, basins, batchnorm, geometry) on real models and runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import grokscope
from grokscope.config import parse_config
from grokscope.errors import ConfigError
from grokscope.measures.lmap import lmap_matrix, run_chain
from grokscope.probes.base import ProbeContext, build_probe, eval_mode
from grokscope.probes.batchnorm import batch_norm_modules
from grokscope.probes.chain import chain_layers
from grokscope.runner import Experiment
from tests.conftest import tiny_config_data

ZHAO_PROBES = [
    {"name": "lmap"},
    {"name": "rpd"},
    {"name": "basins", "amplitudes": 6, "trials": 2, "max_samples": 100},
    {"name": "batchnorm", "projections": True},
    {"name": "geometry", "max_samples": 100},
]


def digits_config(**overrides):
    base = {
        "name": "zhao",
        "device": "cpu",
        "task": {"name": "digits", "n_train": 200, "n_test": 100},
        "model": {"name": "mlp", "depth": 4, "width": 12, "batch_norm": True, "activation": "tanh"},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"steps": 20, "batch_size": 50},
        "schedule": {"log_points_per_decade": 3, "linear_points": 4},
    }
    return grokscope.config.merge(base, overrides)


def trained_experiment(model: dict, steps: int = 15) -> Experiment:
    """A digits experiment whose batch-norm running statistics have moved away from (0, 1)."""
    experiment = Experiment(parse_config(digits_config(model=model)))
    optimizer = torch.optim.Adam(experiment.model.parameters(), lr=0.01)
    for _ in range(steps):
        optimizer.zero_grad()
        experiment.objective.loss(experiment.model(experiment.task.x_train), experiment.task.y_train).backward()
        optimizer.step()
    return experiment


@pytest.mark.parametrize("residual", [False, True])
def test_the_chain_of_a_trace_reproduces_the_model_in_eval_mode(residual):
    experiment = trained_experiment({"depth": 6, "residual": residual})
    model, x = experiment.model, experiment.task.x_test
    with torch.no_grad(), eval_mode(model):
        trace = model.trace(x)
        torch.testing.assert_close(run_chain(chain_layers(trace, "test"), trace.layers[0].input), model(x))


def test_identity_batch_norm_network_equals_its_lmap():
    # biases off, beta = 0, running mean 0 and running variances unlike the batch's: the network
    # in eval mode is the linear map M = W3 D2 W2 D1 W1, D = diag(gamma / sqrt(var + eps))
    spec = {"depth": 3, "width": 7, "activation": "identity", "bias": False, "output_bias": False}
    experiment = Experiment(parse_config(digits_config(model={**spec, "batch_norm": True})))
    model, x = experiment.model, experiment.task.x_train
    norms = batch_norm_modules(model, experiment.task)
    with torch.no_grad():
        for norm in norms:
            norm.running_var.uniform_(0.2, 5.0)
            norm.weight.uniform_(-2.0, 2.0)
    with torch.no_grad(), eval_mode(model):
        trace = model.trace(x)
        lmap = lmap_matrix(chain_layers(trace, "test"), -1)
        torch.testing.assert_close(model(x), x @ lmap.T)
        w = [linear.weight for linear in model.linears]
        d = [torch.diag(n.weight / torch.sqrt(n.running_var + n.eps)) for n in norms]
        torch.testing.assert_close(lmap, w[2] @ d[1] @ w[1] @ d[0] @ w[0])
        model.norms.train()  # the batch's own statistics give another map
        assert not torch.allclose(model(x), x @ lmap.T, atol=1e-3)
    with torch.no_grad(), eval_mode(model):
        for norm in norms:  # a non-zero running mean adds a constant: the map becomes affine
            norm.running_mean.normal_()
        lmap = lmap_matrix(chain_layers(model.trace(x), "test"), -1)
        torch.testing.assert_close(model(x), x @ lmap.T + model(torch.zeros_like(x[:1])))


def run_all(tmp_path, probes):
    config = digits_config(probes=probes)
    return grokscope.run(config, out=tmp_path / "run", progress=False)


def test_zhao_probes_never_change_training(tmp_path):
    plain = grokscope.run(digits_config(), out=tmp_path / "plain", progress=False)
    probed = grokscope.run(digits_config(probes=ZHAO_PROBES), out=tmp_path / "probed", progress=False)
    for key, value in plain.load_model().state_dict().items():
        assert torch.equal(value, probed.load_model().state_dict()[key]), key
    columns = ["step", "train/loss", "test/acc"]
    assert plain.metrics[columns].equals(probed.metrics[columns])


def test_zhao_probes_write_their_columns_and_arrays(tmp_path):
    run = run_all(tmp_path, ZHAO_PROBES)
    last = run.metrics.iloc[-1]
    hidden = 3
    for layer in range(1, hidden + 1):
        assert 0 <= last[f"lmap/prune_acc/train/layer{layer}"] <= 1
        assert np.isfinite(last[f"rpd/grad/layer{layer}"])
        assert -1 <= last[f"geometry/cos_centre/layer{layer}"] <= 1
    assert 0 <= last[f"lmap/lp_acc/test/layer{hidden + 1}"] <= 1
    assert "lmap/prune_acc/test/layer4" not in run.metrics  # start layer L is the network itself
    assert last["bn/runstat/test/acc"] == last["test/acc"]
    assert {"bn/batchstat/test/acc", "basins/sample/size50", "basins/weight/size_half"} <= set(run.metrics)
    step, rpd = list(run.arrays("rpd").items())[-1]
    assert rpd["layer1"].shape == (20,) and rpd["layer1_per_class"].shape == (10, 20)
    assert rpd["layer1"].mean() == pytest.approx(1.0)
    basins = run.arrays("basins")[step]
    assert basins["sample_per_sample"].shape == (6, len(basins["sample_index"]))
    assert basins["weight_per_class"].shape == (10, 6)
    geometry = run.arrays("geometry")[step]
    assert geometry["proj_train"].shape == (100, 2) and geometry["y_test"].shape == (100,)
    assert run.arrays("batchnorm")[step]["proj_test"].shape == (100, 2)


def test_batchnorm_probe_restores_running_statistics_itself():
    experiment = trained_experiment({})
    norms = batch_norm_modules(experiment.model, experiment.task)
    before = [norm.running_var.clone() for norm in norms]
    probe = build_probe(parse_config(digits_config(probes=[{"name": "batchnorm"}])).probes[-1])
    context = ProbeContext(experiment.model, experiment.task, experiment.objective, step=1, seed=0)
    output = probe(context)
    assert output["bn/batchstat/train/acc"] != output["bn/runstat/train/acc"] or output[
        "bn/batchstat/train/loss"
    ] != pytest.approx(output["bn/runstat/train/loss"])
    for norm, var in zip(norms, before):
        assert torch.equal(norm.running_var, var)


def test_batchnorm_probe_needs_batch_norm(tmp_path):
    config = digits_config(model={"batch_norm": False}, probes=[{"name": "batchnorm"}])
    with pytest.raises(ConfigError, match=r"probes\.batchnorm"):
        grokscope.run(config, out=tmp_path / "run", progress=False)


def test_basins_amplitude_range_is_checked():
    with pytest.raises(ConfigError, match="amplitude_max"):
        parse_config(digits_config(probes=[{"name": "basins", "amplitude_min": 1.0, "amplitude_max": 0.1}]))


def test_lmap_and_rpd_run_on_modular_arithmetic(tmp_path):
    config = tiny_config_data(probes=[{"name": "lmap"}, {"name": "rpd"}], training={"steps": 10})
    run = grokscope.run(config, out=tmp_path / "run", progress=False)
    assert {"lmap/prune_acc/test/layer1", "rpd/grad/layer1"} <= set(run.metrics)
