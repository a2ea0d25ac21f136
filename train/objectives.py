"""What a model is trained against: the loss and metric for integer or soft targets, and class weights.

Below training, weight averaging and the prior correction, which all need the same ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def class_weights(targets: np.ndarray, num_classes: int, mode: str) -> dict[int, float] | None:
    """Answer to the 436-image 'disgust' class without wrecking overall accuracy.

    'balanced' weights by inverse frequency; 'sqrt' by its square root, which lifts the rare
    classes' recall while costing less overall accuracy than full balancing.
    """
    if mode == "none":
        return None
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    counts[counts == 0] = 1.0
    weights = len(targets) / (num_classes * counts)
    if mode == "sqrt":
        weights = np.sqrt(weights)
    weights = weights / np.average(weights, weights=counts)  # mean weight per sample stays 1
    return {i: float(w) for i, w in enumerate(weights)}


def loss_and_metrics(keras: Any, soft: bool) -> tuple[Any, list[Any]]:
    """Cross-entropy against integer labels, or against probability vectors when distilling.

    The accuracy metric is named ``accuracy`` either way, so history columns stay the same.
    """
    if soft:
        return keras.losses.CategoricalCrossentropy(), [keras.metrics.CategoricalAccuracy(name="accuracy")]
    return keras.losses.SparseCategoricalCrossentropy(), ["accuracy"]
