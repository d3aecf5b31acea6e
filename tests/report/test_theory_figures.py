"""The ``theory`` run figure: a linear network's modes beside the gradient flow of its own start."""

from __future__ import annotations

import numpy as np

import grokscope
from grokscope.config import parse_config
from grokscope.experiments.layerwise import measured_modes, predicted_modes
from grokscope.report import RUN_FIGURES


def diagonal_config(**overrides):
    data = {
        "name": "diag",
        "device": "cpu",
        "task": {"name": "teacher_student", "input_dim": 3, "scales": [3.0, 1.5, 0.75], "n_train": 200, "whiten": True},
        "model": {"name": "diagonal_linear", "init": "constant", "init_scale": 0.01},
        "optimizer": {"name": "sgd", "lr": 0.002},
        "training": {"steps": 1500, "loss": "mse"},
        "schedule": {"linear_points": 30, "log_points_per_decade": 5},
        "probes": [{"name": "linear_modes"}],
    }
    data.update(overrides)
    return parse_config(data)


def test_theory_figure_lays_the_flow_of_the_runs_own_start_over_its_modes(tmp_path):
    run = grokscope.run(diagonal_config(), out=tmp_path / "run", progress=False)
    steps, modes = measured_modes(run)
    predicted = predicted_modes(run, steps)
    # t = 2 lr step (mse is twice the theory's loss): the run saturates mode 0 and follows its flow
    assert modes[-1, 0] > 0.99 * 3.0
    assert np.max(np.abs(modes - predicted)) < 0.02 * 3.0
    written = RUN_FIGURES["theory"](run, tmp_path / "figures")
    assert tmp_path / "figures" / "theory.png" in written


def test_theory_figure_draws_nothing_without_modes_and_no_flow_for_adam(tmp_path):
    plain = grokscope.run(diagonal_config(probes=[{"name": "loss_accuracy"}]), out=tmp_path / "plain", progress=False)
    assert RUN_FIGURES["theory"](plain, tmp_path / "figures") == []
    adam = grokscope.run(
        diagonal_config(optimizer={"name": "adam", "lr": 0.01}, training={"steps": 50, "loss": "mse"}),
        out=tmp_path / "adam",
        progress=False,
    )
    steps, _ = measured_modes(adam)
    assert predicted_modes(adam, steps) is None  # Adam has no gradient-flow time
    assert tmp_path / "figures-adam" / "theory.png" in RUN_FIGURES["theory"](adam, tmp_path / "figures-adam")
