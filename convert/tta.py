"""Test-time views baked into the exported graph.

Faces are left-right symmetric in meaning and Haar boxes wobble by a pixel or two, so averaging a
face over its mirror image and small shifts is a cheap, well-known gain on FER2013. Baking it into
the model keeps the edge unchanged: it still feeds one face and reads one probability vector, at
``views`` times the classifier's compute.

The views are exactly those ``fer-train evaluate --views N`` scores (train.distill.VIEW_OFFSETS:
mirrored or not, times 2-px shifts with the uncovered border reflected in), read from the same
table, so the figure chosen on validation there is the figure the artifact reproduces.
"""

from __future__ import annotations

from typing import Any

from train.distill import TEACHER_VIEWS as VIEW_COUNTS
from train.distill import VIEW_OFFSETS

# how the manifest records the views an artifact averages (info.test_time_augmentation)
_MANIFEST_NAMES = {1: "none", 2: "hflip", 6: "views6", 10: "views10"}


def manifest_name(views: int) -> str:
    return _MANIFEST_NAMES[views]


def views_from_manifest(value: object) -> int:
    """The view count a manifest's ``test_time_augmentation`` names (1 for none or an unknown value)."""
    for count, name in _MANIFEST_NAMES.items():
        if value == name:
            return count
    return 1


def with_views(model: Any, views: int) -> Any:
    """``model`` wrapped to average its probabilities over ``views`` views of each input face.

    The views go through the model as one batch (views x faces), so the exported graph holds the
    classifier once and runs it once per call.
    """
    if views == 1:
        return model
    if views not in VIEW_COUNTS:
        raise ValueError(f"views must be one of {', '.join(map(str, VIEW_COUNTS))}, not {views}")
    import keras

    offsets = VIEW_OFFSETS[views]
    pad = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    height, width = model.input_shape[1:3]

    class FaceViews(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            padded = keras.ops.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="reflect") if pad else x
            stacked = []
            for dy, dx in offsets:
                top, left = pad - dy, pad - dx
                view = padded[:, top:top + height, left:left + width, :]
                stacked += [view, keras.ops.flip(view, axis=2)]
            return keras.ops.concatenate(stacked, axis=0)

    class MeanOverViews(keras.layers.Layer):
        def call(self, probs: Any) -> Any:
            return keras.ops.mean(keras.ops.reshape(probs, (views, -1, probs.shape[-1])), axis=0)

    inputs = keras.Input(model.input_shape[1:], name="pixels")
    outputs = MeanOverViews(name=f"probs_views{views}")(model(FaceViews(name=f"views{views}")(inputs)))
    return keras.Model(inputs, outputs, name=f"{model.name}_views{views}")
