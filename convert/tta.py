"""Horizontal-flip test-time averaging baked into the exported graph.

Faces are left-right symmetric in meaning, so averaging a face with its mirror image is a
cheap, well-known gain on FER2013 (about a point). Baking it into the model keeps the edge
unchanged: it still feeds one face and reads one probability vector, at twice the compute.
"""

from __future__ import annotations

from typing import Any


def with_flip_tta(model: Any) -> Any:
    import keras

    class HorizontalFlip(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            return keras.ops.flip(x, axis=2)

    inputs = keras.Input(model.input_shape[1:], name="pixels")
    mirrored = HorizontalFlip(name="hflip")(inputs)
    outputs = keras.layers.Average(name="probs_tta")([model(inputs), model(mirrored)])
    return keras.Model(inputs, outputs, name=f"{model.name}_fliptta")
