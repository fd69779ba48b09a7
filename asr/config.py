"""Configs are plain dataclasses loaded from YAML; unknown keys are refused.

    features: {n_mels: 80, ...}   -> FeatureConfig
    augment:  {freq_masks: 2, ...} -> AugmentConfig
    model:    {hidden: 320, ...}  -> ModelConfig
    train:    {lr: 0.001, ...}    -> TrainConfig
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field

import yaml

from asr.augment import AugmentConfig
from asr.features import FeatureConfig
from asr.model import ModelConfig


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class ConfigError(Exception):
    """A config that cannot be used; the message names the file or key."""


@dataclass
class TrainConfig:
    train_manifest: str = ""
    dev_manifest: str = ""
    # A pronunciation lexicon ('WORD PH PH ...', CMUdict's form): the model's units are its phones
    # and transcripts are spelt through it (tools/lexicon.py makes one); empty: letters
    lexicon: str = ""
    # Fine-tuning: start from this model file or training checkpoint ('default': the packaged
    # model): its weights, units, lexicon and normalisation statistics, this config's schedule
    init: str = ""
    epochs: int = 20
    # Wall-time budget of one run (0: none): after each epoch, the learning-rate schedule is refitted to
    # end with the last epoch that fits at the speed so far, and no epoch starts that would end past it.
    max_minutes: float = 0
    max_steps: int = 0  # stop after this many optimizer steps (0: run all epochs)
    lr: float = 1e-3
    min_lr_ratio: float = 0.05  # cosine decay ends at lr * min_lr_ratio
    warmup_steps: int = 200
    weight_decay: float = 1e-2
    grad_clip: float = 5.0
    batch_seconds: float = 200.0  # padded audio seconds per batch (the frame budget)
    max_batch_size: int = 0  # 0: no cap besides the budget
    cache_audio: bool = False  # keep decoded audio in memory (small corpora)
    skip_bad: bool = False  # leave out bad manifest lines and unreadable audio (counted) instead of stopping
    stats_utterances: int = 2000  # normalisation statistics from a random sample this large
    num_workers: int = 0
    seed: int = 0
    device: str = "auto"
    # auto: bf16 autocast on a GPU that has it, else fp32. Both bf16 and fp16 use a gradient
    # scaler: under autocast, torch runs the cuDNN LSTM in fp16 either way (see train.py).
    precision: str = "auto"
    log_every: int = 10  # steps per log line; also how often DDP ranks agree on stopping
    checkpoint_every: int = 0  # steps between checkpoints of OUT/last.pt (0: at each epoch only)
    keep_best: int = 3  # epoch checkpoints kept, the best by dev WER: inputs for `asr average`

    def __post_init__(self):
        positive = ("epochs", "lr", "batch_seconds", "log_every", "stats_utterances", "keep_best")
        not_negative = ("max_steps", "max_minutes", "warmup_steps", "weight_decay", "grad_clip",
                        "max_batch_size", "num_workers", "min_lr_ratio", "checkpoint_every")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in not_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")


@dataclass
class Config:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def from_dict(cls, data):
    """Build dataclass `cls` from nested dicts, refusing unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in data.items():
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            kwargs[key] = from_dict(kind, value)
        else:
            kwargs[key] = _coerce(f"{cls.__name__}.{key}", kind, value)
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ConfigError(f"{cls.__name__}: {e}") from None


def _coerce(name: str, kind, value):
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if kind is bool and not isinstance(value, bool) or kind is not bool and isinstance(value, bool):
        raise ConfigError(f"{name}: expected {kind.__name__}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{name}: expected {kind.__name__}, got {value!r}")
    if kind is float and not math.isfinite(value):  # nan slips past every range check
        raise ConfigError(f"{name}: expected a finite number, got {value!r}")
    return value


def load_config(path: str | os.PathLike | None, overrides: list[str] = ()) -> Config:
    """Load YAML from `path` (defaults if None), then apply 'section.key=value' overrides."""
    data: dict = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: cannot read config ({' '.join(str(e).split())})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config must be a mapping of sections")
    return config_from_dict(data, overrides, str(path or "defaults"))


def config_from_dict(data: dict, overrides: list[str] = (), source: str = "defaults") -> Config:
    """A Config from nested dicts (a YAML file's, a checkpoint's), after the overrides."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}  # the caller's stays as it was
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. train.lr=0.001")
        data.setdefault(parts[0], {})
        if not isinstance(data[parts[0]], dict):
            raise ConfigError(f"--set {item!r}: section {parts[0]!r} is not a mapping")
        data[parts[0]][parts[1]] = yaml.safe_load(raw)
    try:
        return from_dict(Config, data)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)
