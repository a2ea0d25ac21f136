"""Batch-norm recalibration: moving statistics measured on clean faces, as the model runs at inference.

During training, batch normalisation's moving means and variances follow augmented batches (erased
rectangles, jittered contrast and brightness) and, for a weight average, weights the average
never had. Neither matches the un-augmented faces a model is validated and deployed on, so they
are measured again on a sample of clean training images. Dropout is off while measuring: on, it
would inflate each channel's variance beyond what the exported model sees (Li et al., 2019,
"Understanding the Disharmony between Dropout and Batch Normalization").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# Enough images to estimate each channel's mean and variance closely; a full pass adds minutes per epoch.
RECALIBRATION_IMAGES = 8192
RECALIBRATION_BATCH = 256


def _layers_of(model: Any, kind: type) -> list[Any]:
    """Every layer of ``kind``, nested models (backbones) included."""
    return [layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, kind)]


def batch_norm_layers(model: Any) -> list[Any]:
    import keras

    return _layers_of(model, keras.layers.BatchNormalization)


def recalibrate_batch_norm(model: Any, images: np.ndarray, batch_size: int = RECALIBRATION_BATCH) -> None:
    """Set every batch-norm layer's moving statistics to their mean over ``images``.

    Momentum (k-1)/k on the k-th batch makes Keras's exponential update an exact running mean.
    The forward passes run eagerly so each batch sees the momentum set for it, and with every
    dropout rate at zero so the statistics are those of the inference-time activations.
    """
    layers = batch_norm_layers(model)
    if not layers:
        return
    import keras

    saved = [layer.momentum for layer in layers]
    dropouts = _layers_of(model, keras.layers.Dropout)
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


def calibration_images(train_images: np.ndarray, seed: int) -> np.ndarray:
    """A seeded sample of un-augmented training images, (N, H, W, 1) float32, to measure statistics on."""
    rng = np.random.default_rng(seed)
    take = min(RECALIBRATION_IMAGES, len(train_images))
    index = np.sort(rng.choice(len(train_images), take, replace=False))
    return train_images[index][..., None].astype(np.float32)


def recalibrate_model(model_path: Path, data: str | Path, out: Path) -> int:
    """Write ``model_path`` with statistics measured on its run's clean training images to ``out``.

    The images are the same seeded sample training draws (the run's config beside the model
    re-draws its training split), so a recalibrated checkpoint matches what ``train.recalibrate_bn``
    would have saved. Returns how many batch-norm layers were measured.
    """
    import shutil

    from train.config import load_config
    from train.errors import TrainError
    from train.keras_io import load_keras_model
    from train.run_info import run_file
    from train.run_data import prepare_data
    from train.run_files import atomic_save_model

    model_path, out = Path(model_path), Path(out)
    if out.exists():
        raise TrainError(f"{out} already exists; give a new file (the original's statistics are kept)")
    if out.suffix != ".keras":
        raise TrainError(f"--out must be a .keras file, not {out}")
    model = load_keras_model(model_path)  # names a missing or unreadable file
    config_path = run_file(model_path, "config.toml")
    if config_path is None:
        raise TrainError(f"recalibrating needs the run's config beside {model_path} (config.toml or "
                         f"{model_path.stem}.config.toml) to re-draw its training images")
    layers = batch_norm_layers(model)
    if not layers:
        raise TrainError(f"{model_path} has no batch-norm layers to recalibrate")
    config = load_config(config_path, [f"data.dir={data}"])
    recalibrate_batch_norm(model, calibration_images(prepare_data(config)[0].images, config.train.seed))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_save_model(model, out)
    # evaluate --split val and convert find the run's files beside the model
    for name in ("config.toml", "dataset.json"):
        source = run_file(model_path, name)
        if source is not None and run_file(out, name) is None:
            shutil.copyfile(source, out.with_suffix(f".{name}"))
    return len(layers)
