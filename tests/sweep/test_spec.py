"""Sweep specs: axes expand into the cells they describe, and invalid axes get one clear line."""

import math
import sys

import pytest
import yaml

from grokscope.cli import main
from grokscope.errors import ConfigError
from grokscope.sweep.spec import SweepSpec, expand, load_sweep
from tests.conftest import tiny_config_data


def spec(**fields) -> SweepSpec:
    return SweepSpec.model_validate({"name": "s", "base": tiny_config_data(), **fields})


def test_grid_is_the_product_of_the_axes_last_axis_fastest_with_seeds_last():
    cells = expand(spec(axes={"optimizer.lr": [0.01, 0.1], "optimizer.weight_decay": {"values": [0, 1, 2]}}, seeds=2))
    assert len(cells) == 12
    assert [c.id for c in cells[:4]] == [
        "lr=0.01_weight_decay=0_seed=0",
        "lr=0.01_weight_decay=0_seed=1",
        "lr=0.01_weight_decay=1_seed=0",
        "lr=0.01_weight_decay=1_seed=1",
    ]
    last = cells[-1]
    assert last.values == {"optimizer.lr": 0.1, "optimizer.weight_decay": 2, "seed": 1}
    assert (last.config.optimizer.lr, last.config.optimizer.weight_decay, last.config.seed) == (0.1, 2, 1)
    assert last.config.name == "s/lr=0.1_weight_decay=2_seed=1"
    assert last.config.model.width == 16  # the base is kept


def test_log_linear_and_range_axes_give_their_values():
    cells = expand(
        spec(
            axes={
                "optimizer.lr": {"log": [1e-4, 1e-1], "num": 4},
                "optimizer.weight_decay": {"linear": [0, 1], "num": 3},
                "model.width": {"range": [8, 20, 4]},
            }
        )
    )
    lrs = sorted({c.values["optimizer.lr"] for c in cells})
    assert lrs == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1], rel=1e-12)
    assert sorted({c.values["optimizer.weight_decay"] for c in cells}) == [0.0, 0.5, 1.0]
    assert sorted({c.values["model.width"] for c in cells}) == [8, 12, 16]
    assert len(cells) == 4 * 3 * 3


def test_nested_group_keys_and_seed_list():
    cells = expand(spec(axes={"optimizer.groups.decoder.lr": [1e-3]}, seeds=[5, 7]))
    assert [c.config.seed for c in cells] == [5, 7]
    assert cells[0].config.optimizer.groups["decoder"].lr == 1e-3


def test_random_samples_are_reproducible_within_bounds_and_crossed_with_seeds():
    fields = {
        "axes": {"optimizer.lr": {"log": [1e-4, 1e-1]}, "optimizer.weight_decay": {"linear": [0, 2]}},
        "samples": 5,
        "seeds": 2,
        "sample_seed": 3,
    }
    cells = expand(spec(**fields))
    again = expand(spec(**fields))
    assert [c.values for c in cells] == [c.values for c in again]
    assert len(cells) == 10
    lrs = [c.values["optimizer.lr"] for c in cells]
    assert all(1e-4 <= v <= 1e-1 for v in lrs)
    assert lrs[0::2] == lrs[1::2]  # each drawn point once per seed
    assert len(set(lrs)) == 5
    # log-uniform: the draws spread over decades, not bunched at the top as a uniform draw would be
    assert min(math.log10(v) for v in lrs) < -2
    other = expand(spec(**{**fields, "sample_seed": 4}))
    assert [c.values for c in other] != [c.values for c in cells]


@pytest.mark.parametrize(
    ("axes", "expected"),
    [
        ({"optimizer.lrr": [0.1]}, "axes.optimizer.lrr = 0.1: optimizer: unknown key 'lrr'"),
        ({"model.width": {"range": [5, 5]}}, "axes.model.width"),
        ({"model.width": []}, "the axis has no values"),
        ({"optimizer.lr": {"log": [0, 1], "num": 3}}, "axes.optimizer.lr.log = [0.0, 1.0]: bounds must be > 0"),
        ({"optimizer.lr": {"linear": [0.1, 1]}}, "needs num"),
        ({"optimizer.lr": [-1.0]}, "axes.optimizer.lr = -1.0"),
    ],
)
def test_invalid_axes_raise_one_line_naming_the_axis(axes, expected):
    with pytest.raises(ConfigError) as error:
        expand(spec(axes=axes))
    message = str(error.value)
    assert expected in message
    assert len(message.splitlines()) == 1


def test_spec_errors_name_the_key(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump({"base": tiny_config_data(), "axes": {"optimizer.lr": {"log": [1, 2], "values": [1]}}})
    )
    with pytest.raises(ConfigError, match=r"axes\.optimizer\.lr"):
        load_sweep(path)
    with pytest.raises(ConfigError, match="seeds given twice"):
        load_sweep({"base": tiny_config_data(), "axes": {"seed": [0]}, "seeds": 2})
    with pytest.raises(ConfigError, match="neither a preset"):
        expand(SweepSpec.model_validate({"base": "no_such_preset", "seeds": 1}))


def test_cli_exits_2_with_one_line_on_an_unknown_axis_key(tmp_path, monkeypatch, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"base": tiny_config_data(), "axes": {"model.widht": [8, 16]}}))
    monkeypatch.setattr(sys, "argv", ["grokscope", "sweep", str(path), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: axes.model.widht = 8: model: unknown key 'widht'")
    assert "allowed:" in err[0]
    assert not (tmp_path / "out").exists()
