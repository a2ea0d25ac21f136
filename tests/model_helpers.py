"""Small Keras models for tests where a model must exist but what it learned does not matter."""

from __future__ import annotations

from pathlib import Path


def untrained_classifier(path: Path) -> Path:
    """An untrained 48x48 greyscale, seven-class classifier saved at ``path``: small enough that
    converting it takes seconds, shaped like the real one where conversion and data loading look."""
    import keras

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(4, 3, strides=4)(keras.layers.Rescaling(1 / 255)(inputs))
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x)).save(path)
    return path
