"""Training configuration as validated data: a TOML file plus ``section.key=value`` overrides.

Unknown keys and wrong types are errors, not silently ignored: a typo in a 3-hour run's config
should fail in the first second.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edge.typed_config import Sections, build_section
from train.errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    dir: str = ""  # empty: FER2013_DIR, else data/fer2013/ in the working directory (train.data_location)
    split: str = "train"
    val_fraction: float = 0.1
    # seeds the validation split (-1: train.seed). Set it to train several models from different starts
    # on one split, so their ensemble can be scored on faces none of them trained on
    val_seed: int = -1
    limit: int = 0  # use at most this many training images (0 = all); for smoke runs
    labels: str = "fer2013"  # fer2013 (fixed order), auto (sorted class names in the data) or "a,b,c"
    test_fraction: float = 0.1  # held out per class when the data has no test split (not for fer2013)
    crop_faces: bool = False  # crop the largest Haar face (the edge's detector) before the 48x48 conversion
    no_face: str = "keep"  # with crop_faces, an image without a face is kept whole or skipped (counted)
    csv_label_column: str = ""  # empty: emotion, label, class or expression
    csv_pixels_column: str = ""  # empty: pixels
    csv_path_column: str = ""  # empty: path, file, filename, image or image_path (relative to the CSV)
    csv_split_column: str = ""  # empty: Usage or split; without one a test split is generated
    # FER+ votes for the training split's images (train.ferplus: a CSV of file,neutral,...,NF, matched by
    # file name); empty = the original labels alone. Not-a-face images (FER+'s majority) leave training.
    # $VARIABLES are filled in from the environment (a shipped config says "$FERPLUS_DIR/train.csv")
    votes: str = ""


@dataclass(frozen=True)
class ModelConfig:
    # vgg (shipped, ~1.2M params), resnet (ResNet-18-style, a teacher), tiny (tests), or a backbone:
    # mobilenetv2, efficientnetb0
    arch: str = "vgg"
    width: int = 32
    dropout: float = 0.1  # after each conv block
    head_dropout: float = 0.3
    input_size: int = 96  # backbones only: the 48x48 face is upscaled to this inside the model
    upscale: int = 0  # vgg only: upscale the 48x48 face to this inside the model (0 = keep 48)
    alpha: float = 1.0  # mobilenetv2 only: width multiplier (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
    weights: str = ""  # backbones only: ImageNet weights file without top (.h5); empty = from scratch
    freeze_backbone: bool = False  # train only the head (the backbone as a fixed feature extractor)


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True
    shift: float = 0.1
    rotation_deg: float = 10.0
    zoom: float = 0.1
    brightness: float = 0.2
    contrast: float = 0.2
    erasing: float = 0.25  # probability of erasing one random rectangle
    # mixup's Beta(a, a) concentration (0 = off): each face blended with another from its batch, the
    # consistent teachers judging the blend ("function matching", Beyer et al. 2022); needs consistent teaching
    mixup: float = 0.0


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
    # or mixed_bfloat16 (fast on CPUs with AMX or AVX512-BF16, emulated and several times slower
    # elsewhere), or auto: bfloat16 where the CPU computes it, float32 elsewhere, decided on each resume
    precision: str = "float32"
    schedule: str = "cosine"  # cosine (warm-up, then decay to zero) or constant (held, for swa)
    swa: bool = False  # average every epoch's weights (stochastic weight averaging), best with constant
    # measure batch-norm statistics on clean training images before each validation: the moving
    # statistics gathered under augmentation do not match un-augmented faces
    recalibrate_bn: bool = False
    # adamw, or sgd (momentum 0.9, Nesterov) as in the long VGG recipes that reach 73% on FER2013;
    # weight_decay is decoupled either way (shrinks weights by learning_rate * weight_decay per step)
    optimizer: str = "adamw"
    # start a new run from this model's weights (same architecture) instead of from scratch
    init: str = ""
    # distil from this model: the targets become its predictions averaged over teacher_views mirrored
    # and shifted views of each clean training face, mixed with the true label (train.distill);
    # "a.keras,b.keras" averages several teachers' predictions (an ensemble)
    teacher: str = ""
    teacher_views: int = 6  # 1, 2 (mirror), 6 (mirror x 2-px horizontal shifts) or 10 (and vertical)
    teacher_weight: float = 0.7  # share of the target from the teacher; the rest is the one-hot label
    # fixed: the teachers judge clean training faces once (cached); consistent: they judge each augmented
    # batch the student sees, in every step (teacher_views 1, or 2 with its mirror image)
    teacher_mode: str = "fixed"
    # with data.votes: the label part of each target is this share of the annotators' vote distribution,
    # the rest the original one-hot label (0 = original labels only, 1 = votes only)
    votes_mix: float = 0.5


@dataclass(frozen=True)
class Config(Sections):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


ARCHS = ("vgg", "resnet", "tiny", "mobilenetv2", "efficientnetb0")
BACKBONES = ("mobilenetv2", "efficientnetb0")
MOBILENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
CLASS_WEIGHTS = ("none", "sqrt", "balanced")
PRECISIONS = ("float32", "mixed_bfloat16", "auto")
SCHEDULES = ("cosine", "constant")
OPTIMIZERS = ("adamw", "sgd")
TEACHER_VIEWS = (1, 2, 6, 10)  # train.distill.VIEW_OFFSETS's keys, kept here so config needs no numpy
TEACHER_MODES = ("fixed", "consistent")
CONSISTENT_VIEWS = (1, 2)  # consistent teaching: the augmented batch, and its mirror image too
MAX_EPOCHS = 100_000  # far beyond any schedule; larger ones overflow the optimizer's step count


def _build(cls: type, values: dict[str, Any], section: str) -> Any:
    try:
        return build_section(cls, values, section)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


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
    from train.face_crop import NO_FACE_ACTIONS
    from train.labels import is_fer2013, parse_label_spec

    parse_label_spec(config.data.labels)
    checks = [
        (0.0 <= config.data.val_fraction < 0.5, "data.val_fraction must be in [0, 0.5)"),
        (config.data.val_seed >= -1, "data.val_seed must be -1 (train.seed) or a seed >= 0"),
        (0.0 <= config.data.test_fraction < 0.5, "data.test_fraction must be in [0, 0.5)"),
        (config.data.no_face in NO_FACE_ACTIONS, f"data.no_face must be one of {', '.join(NO_FACE_ACTIONS)}"),
        (32 <= config.model.input_size <= 512, "model.input_size must be in [32, 512]"),
        (config.model.upscale == 0 or 48 < config.model.upscale <= 192, "model.upscale must be 0 or in (48, 192]"),
        (config.model.upscale == 0 or config.model.arch == "vgg", "model.upscale needs model.arch = vgg"),
        (config.model.alpha in MOBILENET_ALPHAS,
         f"model.alpha must be one of {', '.join(map(str, MOBILENET_ALPHAS))}"),
        (not config.model.weights or config.model.arch in BACKBONES,
         f"model.weights needs a backbone arch ({', '.join(BACKBONES)})"),
        (not config.model.freeze_backbone or config.model.arch in BACKBONES,
         f"model.freeze_backbone needs a backbone arch ({', '.join(BACKBONES)})"),
        (config.data.limit >= 0, "data.limit must be >= 0"),
        (config.model.arch in ARCHS, f"model.arch must be one of {', '.join(ARCHS)}"),
        (config.model.width >= 4, "model.width must be >= 4"),
        (0.0 <= config.model.dropout < 1.0, "model.dropout must be in [0, 1)"),
        (0.0 <= config.model.head_dropout < 1.0, "model.head_dropout must be in [0, 1)"),
        (0.0 <= config.augment.shift < 0.5, "augment.shift must be in [0, 0.5)"),
        (0.0 <= config.augment.zoom < 0.5, "augment.zoom must be in [0, 0.5)"),
        (0.0 <= config.augment.rotation_deg <= 45, "augment.rotation_deg must be in [0, 45]"),
        (0.0 <= config.augment.erasing <= 1.0, "augment.erasing must be in [0, 1]"),
        (0.0 <= config.augment.mixup <= 10.0, "augment.mixup must be in [0, 10] (0 = off)"),
        (config.augment.mixup == 0 or (bool(config.train.teacher) and config.train.teacher_mode == "consistent"),
         "augment.mixup needs consistent teaching (train.teacher and train.teacher_mode=consistent): "
         "the teachers label the blended faces"),
        (config.train.epochs >= 1, "train.epochs must be >= 1"),
        (config.train.batch_size >= 1, "train.batch_size must be >= 1"),
        (0 < config.train.learning_rate < math.inf, "train.learning_rate must be > 0 and finite"),
        (0 <= config.train.weight_decay < math.inf, "train.weight_decay must be >= 0 and finite"),
        (0 <= config.train.seed < 2**32, "train.seed must be in [0, 2**32)"),
        (config.train.epochs <= MAX_EPOCHS, f"train.epochs must be at most {MAX_EPOCHS}"),
        (0 <= config.train.warmup_epochs < config.train.epochs,
         f"train.warmup_epochs ({config.train.warmup_epochs}) must be at least 0 and less than train.epochs "
         f"({config.train.epochs}); for a short run add --set train.warmup_epochs=0"),
        (config.train.class_weight in CLASS_WEIGHTS, f"train.class_weight must be one of {', '.join(CLASS_WEIGHTS)}"),
        (config.train.precision in PRECISIONS, f"train.precision must be one of {', '.join(PRECISIONS)}"),
        (config.train.patience >= 1, "train.patience must be >= 1"),
        (config.train.schedule in SCHEDULES, f"train.schedule must be one of {', '.join(SCHEDULES)}"),
        (config.train.optimizer in OPTIMIZERS, f"train.optimizer must be one of {', '.join(OPTIMIZERS)}"),
        (config.train.teacher_views in TEACHER_VIEWS,
         f"train.teacher_views must be one of {', '.join(map(str, TEACHER_VIEWS))}"),
        (0.0 <= config.train.teacher_weight <= 1.0, "train.teacher_weight must be in [0, 1]"),
        (0.0 <= config.train.votes_mix <= 1.0, "train.votes_mix must be in [0, 1]"),
        (not config.data.votes or is_fer2013(parse_label_spec(config.data.labels)),
         "data.votes (FER+ votes) needs data.labels = fer2013"),
        (config.train.teacher_mode in TEACHER_MODES,
         f"train.teacher_mode must be one of {', '.join(TEACHER_MODES)}"),
        (config.train.teacher_mode != "consistent" or config.train.teacher_views in CONSISTENT_VIEWS,
         f"train.teacher_mode=consistent takes train.teacher_views "
         f"{' or '.join(map(str, CONSISTENT_VIEWS))} (the batch, and its mirror), not {config.train.teacher_views}"),
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
        except (OSError, UnicodeDecodeError) as exc:  # a folder, unreadable, or not text
            raise ConfigError(f"cannot read config file {path}: {getattr(exc, 'strerror', None) or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for text in overrides or []:
        section, name, value = parse_override(text)
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ConfigError(f"config section [{section}] must be a table")
        raw[section][name] = value
    return build_config(raw)
