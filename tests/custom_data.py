"""A small generated data set of the user's own classes: colour images of varying sizes and formats.

Each class has its own pattern (horizontal stripes, vertical stripes, a checkerboard) under
random colours, frequencies, phases and noise, so a tiny model learns it in a few epochs and
its int8 conversion agrees with the float model.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

CLASSES = ("engaged", "bored", "confused")


def pattern(label: str, rng: np.random.Generator) -> np.ndarray:
    """One BGR image of ``label``'s pattern, 40 to 120 px on a side, not square."""
    height, width = (int(v) for v in rng.integers(40, 121, 2))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    period = rng.uniform(6, 12) * max(height, width) / 60
    phase = rng.uniform(0, 2 * np.pi)
    if label == "engaged":
        wave = np.sin(2 * np.pi * yy / period + phase)
    elif label == "bored":
        wave = np.sin(2 * np.pi * xx / period + phase)
    else:
        wave = np.sign(np.sin(2 * np.pi * xx / period + phase) * np.sin(2 * np.pi * yy / period))
    low, high = rng.uniform(0, 90, 3), rng.uniform(160, 255, 3)
    image = low + (high - low) * (wave[..., None] + 1) / 2 + rng.normal(0, 8, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_dataset(root: Path, per_class: int = 40, layout: str = "flat", seed: int = 0,
                  classes: tuple[str, ...] = CLASSES) -> Path:
    """``root/<class>/`` (layout "flat") or ``root/train/<class>/`` + ``root/test/<class>/`` ("splits")."""
    rng = np.random.default_rng(seed)
    for label in classes:
        for i in range(per_class):
            if layout == "flat":
                folder = root / label
            else:
                folder = root / ("test" if i % 5 == 0 else "train") / label
            folder.mkdir(parents=True, exist_ok=True)
            suffix = ".png" if i % 2 else ".jpg"
            cv2.imwrite(str(folder / f"{label}_{i:03d}{suffix}"), pattern(label, rng))
    return root
