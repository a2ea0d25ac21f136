"""The representative set that calibrates full-integer quantization.

It comes from the training split, never the test split, stratified so every class's
activation range is seen. Too few images is an error; fewer than a few hundred a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from convert.errors import ConvertError

log = logging.getLogger("fer-convert")
MIN_IMAGES = 16
WARN_IMAGES = 300


def load_calibration(data: str | Path, count: int = 500, seed: int = 0, split: str = "train",
                     labels: tuple[str, ...] | None = None, load_options: dict | None = None,
                     warn_few: bool = True) -> tuple[np.ndarray, str]:
    """(N, 48, 48) uint8 faces drawn evenly across classes from ``split`` of ``data``, and the split's
    fingerprint (``Dataset.fingerprint``: the manifest names the data by it, not by a path).

    ``labels`` are the model's (default FER2013's), so a model trained on its own classes is
    calibrated on its own data set. ``load_options`` are the run's (face crops, CSV columns), so
    calibration sees the faces the model was trained on. ``warn_few`` False: the caller has already
    said these are few (the bundled sample), so one line, not two.
    """
    from train.data import load_dataset
    from train.errors import DataError

    try:
        from train.labels import FER2013_LABELS

        dataset = load_dataset(data, split, labels or FER2013_LABELS, **(load_options or {}))
    except DataError as exc:
        raise ConvertError(f"calibration data: {exc}") from None
    rng = np.random.default_rng(seed)
    classes = np.unique(dataset.targets)
    per_class = max(1, count // len(classes))
    chosen: list[np.ndarray] = []
    for cls in classes:
        members = np.flatnonzero(dataset.targets == cls)
        chosen.append(rng.choice(members, min(per_class, len(members)), replace=False))
    index = np.concatenate(chosen)
    if len(index) < count:  # small classes left room: fill from the rest
        rest = np.setdiff1d(np.arange(len(dataset)), index)
        index = np.concatenate([index, rng.choice(rest, min(count - len(index), len(rest)), replace=False)])
    images = dataset.images[np.sort(index)]
    if len(images) < MIN_IMAGES:
        raise ConvertError(f"calibration data {data} has {len(images)} images; int8 needs at least {MIN_IMAGES}")
    if len(images) < WARN_IMAGES and warn_few:
        log.warning("calibrating int8 on only %d images (fewer than %d may skew activation ranges)",
                    len(images), WARN_IMAGES)
    return images, dataset.fingerprint()
