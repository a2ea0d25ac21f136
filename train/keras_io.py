"""Saved Keras models read back as float32 models, and model file lists (``a.keras,b.keras``).

Evaluation, distillation, combining and training load models the same way through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from train.errors import TrainError


def load_keras_model(path: Path) -> Any:
    """Load a .keras file as a float32 model, whatever precision it was trained in."""
    path = Path(path)
    if not path.is_file():
        raise TrainError(f"model file {path} does not exist")
    import keras

    # the caller's policy comes back afterwards: a training process that loads a teacher or initial
    # weights must go on building its own layers in the precision it chose
    caller_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        model = _float32_model(keras, path)
    finally:
        keras.mixed_precision.set_global_policy(caller_policy)
    return model


def _float32_model(keras: Any, path: Path) -> Any:
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a bad file
        import zipfile

        # keras says "File not found" for a .keras file that exists but is no zip (empty, truncated, text)
        reason = ("not a .keras archive (empty, truncated or another kind of file)"
                  if path.suffix == ".keras" and not zipfile.is_zipfile(path) else str(exc).splitlines()[0][:200])
        raise TrainError(f"{path} is not a readable Keras model: {reason}") from None
    if any(getattr(layer, "dtype_policy", None) is not None and layer.dtype_policy.name != "float32"
           for layer in model.layers):
        model = with_policy(model, "float32")
    return model


def with_policy(model: Any, policy: str) -> Any:
    """``model`` rebuilt with every layer computing under ``policy`` ("float32", "mixed_bfloat16"), same weights."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer":  # its dtype is the input tensor's, not a policy
            layer["config"]["dtype"] = policy
    clone = model.__class__.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


def predict_probs(model: Any, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    batch = images[..., None].astype(np.float32)
    return np.asarray(model.predict(batch, batch_size=batch_size, verbose=0), dtype=np.float64)


def teacher_paths(spec: str) -> list[Path]:
    """The teacher files named by ``train.teacher``: one path, or several separated by commas."""
    paths = [Path(part.strip()) for part in spec.split(",") if part.strip()]
    if not paths:
        raise TrainError("train.teacher names no model file")
    return paths
