"""Model builders. Rescaling lives inside every model, so exported models take raw 0-255 pixels."""

from __future__ import annotations

from typing import Any

from train.config import ModelConfig
from train.labels import IMAGE_SIZE


def _conv_block(keras: Any, x: Any, filters: int, dropout: float, name: str) -> Any:
    layers = keras.layers
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_drop")(x)
    return x


def build_vgg(config: ModelConfig, num_classes: int) -> Any:
    """VGG-style: four double-conv blocks (w, 2w, 4w, 8w), global pooling, one dense layer.

    With width 32 that is ~1.2M parameters and ~117M multiply-accumulates per face: int8 on a
    Pi-class core runs it in a few milliseconds, and it is the size that reaches the mid-60s
    to 70% on FER2013 when trained long enough.

    ``model.upscale`` resizes the face inside the model, so the exported model still takes 48x48
    pixels: the same parameters then work on larger feature maps (at 64, 1.8 times the
    multiply-accumulates and a 4x4 map before pooling instead of 3x3). Extra compute was the one
    lever that moved validation (the width-64 teacher); this buys it without extra parameters.
    """
    import keras

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
    x = inputs
    if config.upscale:
        x = keras.layers.Resizing(config.upscale, config.upscale, interpolation="bilinear", name="upscale")(x)
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(x)
    for i, multiple in enumerate((1, 2, 4, 8), start=1):
        x = _conv_block(keras, x, config.width * multiple, config.dropout, f"block{i}")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    if config.head_dropout > 0:
        x = keras.layers.Dropout(config.head_dropout, name="head_drop")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="fer_vgg")


def _basic_block(keras: Any, x: Any, filters: int, stride: int, name: str) -> Any:
    layers = keras.layers
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        # Subsample, then a 1x1 convolution: exactly a 1x1 convolution with that stride, with the same
        # weights, but TensorFlow 2.21's oneDNN kernels for the strided 1x1 one corrupt the heap while
        # training on AVX-512 CPUs at narrow widths (a crash at width 4 and 8, not at 16 or 32).
        if stride != 1:
            shortcut = layers.MaxPooling2D(1, strides=stride, name=f"{name}_subsample")(shortcut)
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(shortcut)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def build_resnet(config: ModelConfig, num_classes: int) -> Any:
    """ResNet-18-style: four stages (w, 2w, 4w, 8w) of two residual blocks, no stem downsampling.

    A teacher that differs in kind from the VGG generations, whose ensemble has stopped improving:
    students of VGGs taught by VGGs mostly copy them. At width 32 it has 2.8M parameters and 312M
    multiply-accumulates per face (the VGG: 117.5M), too big to ship. 48x48 faces are already small, so the
    stem keeps full resolution and stages 2-4 halve it (48, 24, 12, 6), as FER2013 ResNets do.
    """
    import keras

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    x = keras.layers.Conv2D(config.width, 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage, multiple in enumerate((1, 2, 4, 8), start=1):
        for block in (1, 2):
            stride = 2 if stage > 1 and block == 1 else 1
            x = _basic_block(keras, x, config.width * multiple, stride, f"stage{stage}_block{block}")
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, name=f"stage{stage}_drop")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    if config.head_dropout > 0:
        x = keras.layers.Dropout(config.head_dropout, name="head_drop")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="fer_resnet")


def build_tiny(config: ModelConfig, num_classes: int) -> Any:
    """A few thousand parameters: trains in seconds, for tests and smoke runs."""
    import keras

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    for i, filters in enumerate((8, 16), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="fer_tiny")


def build_backbone(config: ModelConfig, num_classes: int) -> Any:
    """A keras.applications backbone behind the same 48x48x1 raw-pixel input (see ``backbones``)."""
    from train.backbones import build_backbone_model

    return build_backbone_model(config, num_classes)


BUILDERS = {"vgg": build_vgg, "resnet": build_resnet, "tiny": build_tiny, "mobilenetv2": build_backbone,
            "efficientnetb0": build_backbone}


def build_model(config: ModelConfig, num_classes: int) -> Any:
    return BUILDERS[config.arch](config, num_classes)
