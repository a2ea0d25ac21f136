"""Mirrored and shifted views of faces, and a model's predictions averaged over them.

Test-time averaging (``fer-train evaluate --views``) and distillation's teachers share these views.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.errors import TrainError


# The views averaged for each allowed count: mirrored or not, times pixel offsets (dy, dx).
VIEW_OFFSETS = {
    1: [(0, 0)],
    2: [(0, 0)],
    6: [(0, 0), (0, 2), (0, -2)],
    10: [(0, 0), (0, 2), (0, -2), (2, 0), (-2, 0)],
}


TEACHER_VIEWS = tuple(VIEW_OFFSETS)


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``images`` (N, H, W) moved by (dy, dx) pixels, the uncovered border mirrored in."""
    if dy == 0 and dx == 0:
        return images
    pad = max(abs(dy), abs(dx))
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    height, width = images.shape[1:3]
    top, left = pad - dy, pad - dx
    return padded[:, top:top + height, left:left + width]


def views(images: np.ndarray, count: int) -> list[np.ndarray]:
    """The ``count`` views of ``images`` (N, H, W) a teacher averages over."""
    if count not in VIEW_OFFSETS:
        raise TrainError(f"teacher views must be one of {', '.join(map(str, TEACHER_VIEWS))}, not {count}")
    result = []
    for dy, dx in VIEW_OFFSETS[count]:
        view = shifted(images, dy, dx)
        result.append(view)
        if count > 1:
            result.append(view[:, :, ::-1])
    return result


def averaged_predictions(model: Any, images: np.ndarray, count: int, batch_size: int = 256) -> np.ndarray:
    """The mean of ``model``'s class probabilities over ``count`` views of each image in ``images``."""
    total = None
    for view in views(images, count):
        batch = np.ascontiguousarray(view[..., None], dtype=np.float32)
        probabilities = np.asarray(model.predict(batch, batch_size=batch_size, verbose=0), dtype=np.float64)
        total = probabilities if total is None else total + probabilities
    assert total is not None
    return (total / len(VIEW_OFFSETS[count]) / (2 if count > 1 else 1)).astype(np.float32)
