"""Tiny models, tasks and contexts for probe tests, and the probes-on/off bitwise check."""

from __future__ import annotations

import torch

import grokscope
from grokscope.config import RunConfig, parse_config
from grokscope.probes.base import ProbeContext, build_probe, untouched
from grokscope.runner import Experiment
from tests.conftest import tiny_config_data


def tiny_experiment(**overrides) -> Experiment:
    return Experiment(parse_config(tiny_config_data(**overrides)), device="cpu")


def measure(experiment: Experiment, probe_data: dict, step: int = 0) -> dict:
    """Build a probe from its config data, set it up and call it once, as the trainer does."""
    config = parse_config({**experiment.config.to_dict(), "probes": [probe_data]})
    probe = build_probe(config.probes[-1])
    model, task, objective = experiment.model, experiment.task, experiment.objective
    with untouched(model, snapshot_weights=True):
        probe.setup(model, task, objective)
    with untouched(model, snapshot_weights=probe.touches_weights):
        return probe(ProbeContext(model, task, objective, step, experiment.config.seed))


def assert_training_unchanged(tmp_path, config: RunConfig) -> grokscope.Run:
    """Train ``config`` with its probes and without any; the final weights must be bitwise equal."""
    bare = Experiment(config, device="cpu")
    bare.trainer(callbacks=[]).fit()
    run = grokscope.run(config, out=tmp_path / "probed", progress=False)
    probed = run.load_model().state_dict()
    for key, value in bare.model.state_dict().items():
        assert torch.equal(value, probed[key]), key
    return run
