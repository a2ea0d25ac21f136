"""Optional face cropping of training photos with the edge's own Haar detector and crop.

A model trained on whole photos would meet tight face crops on the device. Running
``edge.vision.faces`` (the same cascade, detector settings, margin and resize rule) on each
full-size image before the 48x48 conversion makes training see what the device will see.
Images where no face is found are kept whole or skipped (``data.no_face``), and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.packaged import shipped_cascade
from train.errors import DataError
from train.labels import DEFAULT_CROP_MARGIN, IMAGE_SIZE

SHIPPED_CASCADE = shipped_cascade()
NO_FACE_ACTIONS = ("keep", "skip")


class FaceCropper:
    """Largest detected face, grown by ``margin`` per side, as a 48x48 grey crop."""

    def __init__(self, cascade: str | Path = SHIPPED_CASCADE, margin: float = DEFAULT_CROP_MARGIN,
                 no_face: str = "keep") -> None:
        from edge.errors import EdgeError
        from edge.vision.faces import FaceDetector

        if no_face not in NO_FACE_ACTIONS:
            raise DataError(f"no_face must be one of {', '.join(NO_FACE_ACTIONS)}, not {no_face!r}")
        try:
            self.detector = FaceDetector(cascade)
        except EdgeError as exc:
            raise DataError(f"face cropping: {exc}") from None
        self.cascade = Path(cascade)
        self.margin = margin
        self.no_face = no_face
        self.found = 0
        self.missing = 0

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """The face crop, the whole image when no face is found (``keep``), or None (``skip``)."""
        from edge.vision.faces import crop_face, to_gray
        from train.image_io import to_8bit, to_face_array

        gray = to_gray(to_8bit(image))
        boxes = self.detector.detect(gray)
        if not boxes:
            self.missing += 1
            return None if self.no_face == "skip" else to_face_array(gray)
        self.found += 1
        return crop_face(gray, boxes[0], (IMAGE_SIZE, IMAGE_SIZE), self.margin, "area")

    def summary(self) -> dict[str, Any]:
        """What dataset.json records: how many images had a face, and what happened to the rest."""
        return {"faces_found": self.found, "no_face": self.missing, "no_face_action": self.no_face,
                "margin": self.margin, "cascade": self.cascade.name}
