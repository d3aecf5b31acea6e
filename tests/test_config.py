from pathlib import Path

import pytest
import yaml

from grokscope.config import RunConfig, load_config, parse_config
from grokscope.errors import ConfigError
from grokscope.experiments import preset_names, preset_path
from tests.conftest import tiny_config_data


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"model": {"widht": 3}}, "model: unknown key 'widht' (did you mean 'width'?); allowed:"),
        ({"optimizer": {"lr": -0.1}}, "optimizer.lr = -0.1: Input should be greater than 0"),
        ({"task": {"p": 1}}, "task.p = 1: must be a prime number >= 2"),
        ({"model": {"activation": "swish"}}, "model.activation = 'swish': Input should be 'relu', 'tanh'"),
        ({"model": {"name": "resnet"}}, "model.name = 'resnet': unknown model; allowed:"),
        ({"optimizer": {"name": "lion"}}, "optimizer.name = 'lion': Input should be 'adamw', 'adam' or 'sgd'"),
        ({"training": {"steps": "many"}}, "training.steps = 'many': Input should be a valid integer"),
        ({"trainig": {}}, "config: unknown key 'trainig' (did you mean 'training'?)"),
        ({"device": "tpu"}, "device 'tpu' unknown; allowed: auto, cpu, cuda, cuda:N, mps"),
    ],
)
def test_invalid_config_names_key_value_and_what_is_allowed(override, message):
    with pytest.raises(ConfigError) as raised:
        parse_config(tiny_config_data(**override), source="run.yaml")
    lines = str(raised.value).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("run.yaml: ") and message in lines[0]


def test_configs_round_trip_through_yaml(tmp_path: Path):
    config = parse_config(tiny_config_data())
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert load_config(path) == config
    assert config.probes[0].name == "loss_accuracy"


def test_shorthand_names_and_python_construction():
    config = RunConfig.model_validate({"task": "modular_arithmetic", "model": "mlp"})
    assert config.task.p == 97 and config.model.width == 250


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_is_a_valid_config(name):
    load_config(preset_path(name))


def test_missing_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("task: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_dotted_overrides_apply_before_validation(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(tiny_config_data()))
    config = load_config(path, ["optimizer.lr=0.5", "seed=3", "model.activation=tanh"])
    assert (config.optimizer.lr, config.seed, config.model.activation) == (0.5, 3, "tanh")
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(path, ["optimizer.lr"])
    with pytest.raises(ConfigError, match=r"optimizer\.lr = -1"):
        load_config(path, ["optimizer.lr=-1"])
