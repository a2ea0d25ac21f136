"""Stochastic weight averaging: the mean of the weights a held learning rate visits.

A cosine schedule that has decayed to zero leaves the model at one point on the edge of a wide
basin; holding the learning rate and averaging every epoch's weights lands nearer its centre, which
generalises better (Izmailov et al., 2018, "Averaging Weights Leads to Wider Optima") and costs
nothing at inference time: the average is one model of the same size.

The average's batch-norm statistics are measured afresh (``train.recalibrate``): the moving means
and variances describe the activations of weights the average never had.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from train.recalibrate import calibration_images, recalibrate_batch_norm

SWA_FILE = "swa.keras"


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
    def start(cls, model: Any, run_dir: Path, count: int, train_images: np.ndarray, seed: int,
              soft: bool = False) -> "WeightAverage":
        """``soft``: validate against probability vectors (a distillation run's one-hot labels)."""
        import keras

        from train.objectives import loss_and_metrics

        path = Path(run_dir) / SWA_FILE
        if count > 0 and path.is_file():
            average_model = keras.saving.load_model(path, compile=False)
        else:
            count = 0
            average_model = keras.models.clone_model(model)
            average_model.set_weights(model.get_weights())
        loss, metrics = loss_and_metrics(keras, soft)
        average_model.compile(loss=loss, metrics=metrics)
        return cls(average_model, count, calibration_images(train_images, seed))

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
