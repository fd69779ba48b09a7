from pathlib import Path

import pytest

from asr.config import Config, ConfigError, load_config

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    assert isinstance(load_config(path), Config)


def test_overrides_and_types(tmp_path):
    config = load_config(CONF / "tiny.yaml", ["train.lr=0.5", "model.layers=2", "train.train_manifest=x.jsonl"])
    assert config.train.lr == 0.5 and config.model.layers == 2 and config.train.train_manifest == "x.jsonl"
    assert load_config(None, ["train.lr=1"]).train.lr == 1.0  # int where a float is expected is fine
    assert load_config(None, ["train.lr=1e-3"]).train.lr == 0.001  # YAML reads 1e-3 as a string


@pytest.mark.parametrize("text,problem", [
    ("model:\n  hiden: 3\n", "unknown key"),
    ("modle:\n  hidden: 3\n", "unknown key"),
    ("model:\n  hidden: big\n", "expected int"),
    ("train:\n  cache_audio: 1\n", "expected bool"),
    ("model:\n  dropout: 1.5\n", "dropout"),
    ("- a list\n", "mapping"),
    ("model: [\n", "cannot read config"),
    ("train:\n  log_every: 0\n", "log_every must be positive"),
    ("train:\n  num_workers: -1\n", "num_workers must not be negative"),
    ("augment:\n  time_ratio: 2\n", "time_ratio"),
    ("features:\n  hop_ms: 0\n", "hop_ms"),
    ("train:\n  lr: fast\n", "expected float"),
    ("train:\n  lr: .nan\n", "expected a finite number"),
    ("train:\n  grad_clip: nan\n", "expected a finite number"),
])
def test_bad_configs_are_refused_with_the_file_named(tmp_path, text, problem):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_bad_override():
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["lr=3"])
