"""Stochastic weight averaging: the mean of the weights a held learning rate visits.

A cosine schedule that has decayed to zero leaves the model at one point on the edge of a wide
basin; holding the learning rate and averaging every epoch's weights lands nearer its centre, which
generalises better (Izmailov et al., 2018, "Averaging Weights Leads to Wider Optima") and costs
nothing at inference time: the average is one model of the same size.

The average's batch-norm statistics are measured afresh: the moving means and variances describe
the activations of weights the average never had. They are measured with dropout off, as the
model runs at inference: dropout on would inflate each channel's variance beyond what the
exported model sees (Li et al., 2019, "Understanding the Disharmony between Dropout and Batch
Normalization").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SWA_FILE = "swa.keras"
# Enough images to estimate each channel's mean and variance closely; a full pass adds minutes per epoch.
RECALIBRATION_IMAGES = 8192
RECALIBRATION_BATCH = 256


def batch_norm_layers(model: Any) -> list[Any]:
    import keras

    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]


def dropout_layers(model: Any) -> list[Any]:
    import keras

    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.Dropout)]


def recalibrate_batch_norm(model: Any, images: np.ndarray, batch_size: int = RECALIBRATION_BATCH) -> None:
    """Set every batch-norm layer's moving statistics to their mean over ``images``.

    Momentum (k-1)/k on the k-th batch makes Keras's exponential update an exact running mean.
    The forward passes run eagerly so each batch sees the momentum set for it, and with every
    dropout rate at zero so the statistics are those of the inference-time activations.
    """
    layers = batch_norm_layers(model)
    if not layers:
        return
    saved = [layer.momentum for layer in layers]
    dropouts = dropout_layers(model)
    saved_rates = [layer.rate for layer in dropouts]
    for layer in layers:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, dtype="float32"))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, dtype="float32"))
    try:
        for layer in dropouts:
            layer.rate = 0.0
        for k, start in enumerate(range(0, len(images), batch_size), start=1):
            for layer in layers:
                layer.momentum = (k - 1) / k
            model(images[start:start + batch_size], training=True)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
        for layer, rate in zip(dropouts, saved_rates):
            layer.rate = rate


class WeightAverage:
    """The running mean of a training model's weights, kept as a model that can be evaluated and saved.

    ``count`` weights have been averaged so far; a resumed run reloads the average from ``swa.keras``
    and carries on, so splitting the averaging phase across sessions gives the same mean.
    """

    def __init__(self, average_model: Any, count: int, recalibration_images: np.ndarray) -> None:
        self.average_model = average_model
        self.count = count
        self.mean = [np.asarray(w, dtype=np.float64) for w in _trainable_values(average_model)]
        self.images = recalibration_images

    @classmethod
    def start(cls, model: Any, run_dir: Path, count: int, train_images: np.ndarray, seed: int) -> "WeightAverage":
        import keras

        path = Path(run_dir) / SWA_FILE
        if count > 0 and path.is_file():
            average_model = keras.saving.load_model(path, compile=False)
        else:
            count = 0
            average_model = keras.models.clone_model(model)
            average_model.set_weights(model.get_weights())
        average_model.compile(loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
        rng = np.random.default_rng(seed)
        take = min(RECALIBRATION_IMAGES, len(train_images))
        index = np.sort(rng.choice(len(train_images), take, replace=False))
        images = train_images[index][..., None].astype(np.float32)
        return cls(average_model, count, images)

    def update(self, model: Any) -> None:
        """Fold the model's current weights into the mean and refresh the average model from it."""
        self.count += 1
        for mean, value in zip(self.mean, _trainable_values(model)):
            mean += (np.asarray(value, dtype=np.float64) - mean) / self.count
        for variable, mean in zip(self.average_model.trainable_weights, self.mean):
            variable.assign(mean.astype(variable.dtype))
        recalibrate_batch_norm(self.average_model, self.images)

    def evaluate(self, dataset: Any) -> tuple[float, float]:
        """(loss, accuracy) of the average model."""
        result = self.average_model.evaluate(dataset, verbose=0, return_dict=True)
        return float(result["loss"]), float(result["accuracy"])


def _trainable_values(model: Any) -> list[np.ndarray]:
    import keras

    return [keras.ops.convert_to_numpy(v) for v in model.trainable_weights]
