"""The LLC probe: devinterp's estimate on a regular model, and one clear line without devinterp."""

from __future__ import annotations

import sys

import pytest
import torch

from grokscope.config import parse_config
from grokscope.errors import ConfigError
from grokscope.runner import Experiment


@pytest.mark.slow
def test_llc_of_full_rank_linear_regression_is_half_the_parameter_count():
    pytest.importorskip("devinterp")
    from grokscope.probes.llc import estimate_llc

    d, n = 4, 500
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=generator)
    y = x @ torch.randn(d, generator=generator) + 0.3 * torch.randn(n, generator=generator)
    model = torch.nn.Linear(d, 1, bias=False)
    with torch.no_grad():  # at the least-squares minimum: a regular point, lambda = d / 2
        model.weight.copy_(torch.linalg.lstsq(x, y[:, None]).solution.T)
    before = model.weight.detach().clone()
    mean, std = estimate_llc(
        model, x, y, lambda out, t: (out[:, 0] - t) ** 2, lr=1e-3, localization=1.0, chains=4, draws=800, seed=1
    )
    assert mean == pytest.approx(d / 2, abs=0.3)
    assert std < 0.5
    assert torch.equal(model.weight, before)  # devinterp samples on a copy


def test_llc_without_devinterp_is_one_config_error_line(monkeypatch):
    for name in [m for m in sys.modules if m == "devinterp" or m.startswith("devinterp.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "devinterp", None)  # import devinterp now raises ImportError
    config = parse_config(
        {
            "task": {"name": "modular_arithmetic", "p": 7},
            "model": {"name": "mlp", "width": 8},
            "probes": [{"name": "llc"}],
        }
    )
    with pytest.raises(ConfigError) as error:
        Experiment(config, device="cpu")
    message = str(error.value)
    assert "\n" not in message and "llc" in message and "devinterp" in message
