"""Training configuration as validated data: a TOML file plus ``section.key=value`` overrides.

Unknown keys and wrong types are errors, not silently ignored: a typo in a 3-hour run's config
should fail in the first second.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from train.errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    dir: str = "../shared/data/fer2013"
    split: str = "train"
    val_fraction: float = 0.1
    limit: int = 0  # use at most this many training images (0 = all); for smoke runs


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "vgg"  # vgg (shipped, ~1.2M params) or tiny (tests)
    width: int = 32
    dropout: float = 0.1  # after each conv block
    head_dropout: float = 0.3


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True
    shift: float = 0.1
    rotation_deg: float = 10.0
    zoom: float = 0.1
    brightness: float = 0.2
    contrast: float = 0.2
    erasing: float = 0.25  # probability of erasing one random rectangle


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 3
    class_weight: str = "sqrt"  # none, sqrt or balanced
    patience: int = 30  # early stopping on validation accuracy
    seed: int = 1337
    precision: str = "float32"  # or mixed_bfloat16 (fast on CPUs with AMX or AVX512-BF16)


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        lines: list[str] = []
        for section, values in self.to_dict().items():
            lines.append(f"[{section}]")
            lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
            lines.append("")
        return "\n".join(lines)


ARCHS = ("vgg", "tiny")
CLASS_WEIGHTS = ("none", "sqrt", "balanced")
PRECISIONS = ("float32", "mixed_bfloat16")


def _coerce(value: Any, kind: type, where: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")


def _build(cls: type, values: dict[str, Any], section: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown config key {section}.{unknown[0]} (known: {', '.join(known)})")
    kinds = {name: {"bool": bool, "int": int, "float": float, "str": str}[str(f.type)] for name, f in known.items()}
    return cls(**{k: _coerce(v, kinds[k], f"{section}.{k}") for k, v in values.items()})


SECTIONS = {f.name: f.default_factory for f in fields(Config)}  # type: ignore[misc]


def build_config(raw: dict[str, Any]) -> Config:
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown config section [{unknown[0]}] (known: {', '.join(SECTIONS)})")
    parts = {}
    for name, factory in SECTIONS.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"config section [{name}] must be a table")
        parts[name] = _build(type(factory()), values, name)
    config = Config(**parts)
    validate(config)
    return config


def validate(config: Config) -> None:
    checks = [
        (0.0 <= config.data.val_fraction < 0.5, "data.val_fraction must be in [0, 0.5)"),
        (config.data.limit >= 0, "data.limit must be >= 0"),
        (config.model.arch in ARCHS, f"model.arch must be one of {', '.join(ARCHS)}"),
        (config.model.width >= 4, "model.width must be >= 4"),
        (0.0 <= config.model.dropout < 1.0, "model.dropout must be in [0, 1)"),
        (0.0 <= config.model.head_dropout < 1.0, "model.head_dropout must be in [0, 1)"),
        (0.0 <= config.augment.shift < 0.5, "augment.shift must be in [0, 0.5)"),
        (0.0 <= config.augment.zoom < 0.5, "augment.zoom must be in [0, 0.5)"),
        (0.0 <= config.augment.rotation_deg <= 45, "augment.rotation_deg must be in [0, 45]"),
        (0.0 <= config.augment.erasing <= 1.0, "augment.erasing must be in [0, 1]"),
        (config.train.epochs >= 1, "train.epochs must be >= 1"),
        (config.train.batch_size >= 1, "train.batch_size must be >= 1"),
        (config.train.learning_rate > 0, "train.learning_rate must be > 0"),
        (config.train.weight_decay >= 0, "train.weight_decay must be >= 0"),
        (0 <= config.train.warmup_epochs < config.train.epochs, "train.warmup_epochs must be in [0, epochs)"),
        (config.train.class_weight in CLASS_WEIGHTS, f"train.class_weight must be one of {', '.join(CLASS_WEIGHTS)}"),
        (config.train.precision in PRECISIONS, f"train.precision must be one of {', '.join(PRECISIONS)}"),
        (config.train.patience >= 1, "train.patience must be >= 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def parse_override(text: str) -> tuple[str, str, str]:
    key, sep, value = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not name:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    return section, name, value.strip()


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for text in overrides or []:
        section, name, value = parse_override(text)
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ConfigError(f"config section [{section}] must be a table")
        raw[section][name] = value
    return build_config(raw)
