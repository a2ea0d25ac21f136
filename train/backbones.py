"""Transfer-learning backbones that ``keras.applications`` builds (MobileNetV2, EfficientNetB0).

The exported model still takes what the compact CNN takes, raw 0..255 pixels of a 48x48x1
face, so the manifest and the device code need no change. Inside it, the face is upscaled to
``model.input_size``, the grey channel is copied to three, and the backbone's own
preprocessing is applied.

Weights come only from a file the user gives (``--weights``: the no-top ImageNet file
``keras.applications`` would download) or from nothing (training from scratch). Nothing is
downloaded at run time: this machine cannot reach those files, and many Pis' networks cannot
either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from train.config import ModelConfig
from train.errors import TrainError
from train.labels import IMAGE_SIZE


SCRATCH_BN_MOMENTUM = 0.99


def _constructor(keras: Any, config: ModelConfig) -> tuple[Any, dict[str, Any], bool]:
    """The keras.applications class, its keyword arguments, and whether it needs [-1, 1] input."""
    shape = (config.input_size, config.input_size, 3)
    if config.arch == "mobilenetv2":
        return keras.applications.MobileNetV2, {"input_shape": shape, "alpha": config.alpha}, True
    if config.arch == "efficientnetb0":
        # EfficientNet normalises 0..255 input itself (include_preprocessing)
        return keras.applications.EfficientNetB0, {"input_shape": shape}, False
    raise TrainError(f"model.arch {config.arch!r} is not a backbone")


def describe(config: ModelConfig) -> str:
    extra = f", alpha {config.alpha:g}" if config.arch == "mobilenetv2" else ""
    return f"{config.arch} (include_top=False, input {config.input_size}x{config.input_size}x3{extra})"


def build_base(config: ModelConfig) -> Any:
    """The backbone alone, with ``config.weights`` loaded (or from scratch); a misfit file is a TrainError."""
    import keras

    cls, kwargs, _ = _constructor(keras, config)
    weights: str | None = config.weights or None
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise TrainError(f"--weights {weights} does not exist")
        weights = str(path)
    try:
        return cls(include_top=False, weights=weights, **kwargs)
    except Exception as exc:  # keras raises ValueError, OSError (h5py), KeyError... for a file that does not fit
        if weights is None:
            raise
        reason = " ".join(str(exc).split())[:240] or type(exc).__name__
        raise TrainError(f"--weights {weights} does not fit {describe(config)}: {reason}") from None


def build_backbone_model(config: ModelConfig, num_classes: int) -> Any:
    """48x48x1 raw pixels -> upscale -> grey to RGB -> backbone -> pooled features -> softmax."""
    import keras

    layers = keras.layers
    _, _, minus_one_to_one = _constructor(keras, config)
    base = build_base(config)
    if not config.weights:
        # keras.applications uses BN momentum 0.999, made for fine-tuning ImageNet statistics; from
        # scratch the moving averages then lag the weights for epochs and validation reads as chance.
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = SCRATCH_BN_MOMENTUM
    if config.freeze_backbone:
        base.trainable = False
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
    x = layers.Resizing(config.input_size, config.input_size, interpolation="bilinear", name="upscale")(inputs)
    x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
    if minus_one_to_one:
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(x)  # mobilenet_v2.preprocess_input
    x = base(x, training=False) if config.freeze_backbone else base(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if config.head_dropout > 0:
        x = layers.Dropout(config.head_dropout, name="head_drop")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name=f"fer_{config.arch}")
