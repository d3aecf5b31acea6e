"""Every preset in experiments/configs/ validates and trains a few steps at tiny size."""

from __future__ import annotations

from typing import Any

import pytest

import grokscope
from grokscope.config import merge, parse_config
from grokscope.experiments.catalog import load_preset, preset_names, preset_path
from tests.tasks.test_images import fake_mnist

# Shrinks that keep each setup's structure (model family, task family, options) but train in
# about a second; anything not listed only gets a 3-step budget.
TINY: dict[str, dict[str, Any]] = {
    "liu_fig7_transformer_modadd": {"task": {"p": 11}, "model": {"d_model": 16}, "training": {"batch_size": 16}},
    "layerwise_fig4_sparse_parity": {"task": {"n_train": 200, "n_test": 100}, "model": {"width": 32}},
    "layerwise_eq11_skills_diagonal": {"task": {"n_train": 200, "n_test": 100}},
    "layerwise_h3_digits_tanh": {"model": {"widths": [32, 32, 32]}},
    "zhao_a_fig3_deep_residual": {"model": {"depth": 7, "width": 16}},
    "zhao_b_fig3_deep_sgd": {"model": {"width": 32}},
    "zhao_b_fig6_batchnorm_grokking": {"model": {"depth": 5, "width": 16}},
    "oinfo_fig4_alpha_init": {"task": {"p": 13}, "model": {"width": 32}},
    "modadd": {"task": {"p": 13}, "model": {"width": 32}},
    "mnist1d_mlp": {"task": {"num_samples": 200}},
}


def test_every_preset_has_a_one_line_description():
    for name in preset_names():
        first = preset_path(name).read_text().splitlines()[0]
        assert first.startswith("# ") and len(first) > 20, name


@pytest.mark.parametrize("name", preset_names())
def test_preset_trains_at_tiny_size(name, tmp_path):
    if name == "mnist1d_mlp":
        pytest.importorskip("mnist1d")
    data = merge(load_preset(name), TINY.get(name, {}))
    data = merge(data, {"device": "cpu", "training": {"steps": 3}, "output": {"checkpoint_every": 3}})
    if data["task"]["name"] == "mnist":
        fake_mnist(tmp_path / "mnist", compress=True)
        data["task"] = {**data["task"], "folder": str(tmp_path / "mnist"), "n_train": 20, "n_test": 12}
    config = parse_config(data, source=name)
    run = grokscope.run(config, out=tmp_path / "run", progress=False)
    assert run.summary["status"] == "finished"
    assert len(run.metrics) >= 2 and run.metrics["train/loss"].notna().all()
