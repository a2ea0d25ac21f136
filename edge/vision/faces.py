"""Face detection (OpenCV Haar) and the crop that turns a face box into the model's input.

The crop must match how training saw faces: FER2013's 48x48 faces are framed a little wider
than Haar's box (Haar's box is ~0.96x FER's crop, same centre), so the box is grown by the
manifest's ``crop_margin`` on each side, converted to grey, and resized with the same
interpolation rule training uses (area when shrinking, bilinear when enlarging).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from edge.errors import EdgeError
from edge.packaged import installed_layout_hint

if TYPE_CHECKING:
    from edge.config import DetectorSection


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int
    # BlazeFace's six keypoints in frame pixels (eyes first) and its score; Haar gives neither
    keypoints: tuple[tuple[float, float], ...] | None = field(default=None, compare=False, repr=False)
    score: float | None = field(default=None, compare=False, repr=False)

    def to_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    def iou(self, other: "Box") -> float:
        x1, y1 = max(self.x, other.x), max(self.y, other.y)
        x2, y2 = min(self.x + self.w, other.x + other.w), min(self.y + self.h, other.y + other.h)
        inter = max(0, x2 - x1) * max(0, y2 - y1)
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0


def to_gray(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)


def resize_face(region: np.ndarray, size: tuple[int, int], interpolation: str = "area") -> np.ndarray:
    """Resize to ``size`` (width, height) with training's rule: area when shrinking, bilinear when enlarging."""
    import cv2

    width, height = size
    if region.shape[:2] == (height, width):
        return region
    flags = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST, "cubic": cv2.INTER_CUBIC}
    if interpolation == "area":
        flag = cv2.INTER_AREA if min(region.shape[:2]) > min(width, height) else cv2.INTER_LINEAR
    else:
        flag = flags[interpolation]
    return cv2.resize(region, (width, height), interpolation=flag)


def crop_face(gray: np.ndarray, box: Box, size: tuple[int, int] = (48, 48), margin: float = 0.0,
              interpolation: str = "area", angle: float | None = None) -> np.ndarray:
    """The model input for one face: the box grown by ``margin`` per side, edge-padded at borders.

    ``angle`` (degrees, from the eye keypoints) turns the face upright about the box's centre
    first: FER2013's faces are roughly upright, so a tilted face is classified as the model
    learnt faces. The turn is done at the frame's resolution and only then shrunk, with the same
    interpolation rule as the plain crop.
    """
    import cv2

    if angle:
        dx, dy = box.w * (0.5 + margin), box.h * (0.5 + margin)
        out_w, out_h = max(1, int(round(2 * dx))), max(1, int(round(2 * dy)))
        matrix = cv2.getRotationMatrix2D((box.x + box.w / 2, box.y + box.h / 2), angle, 1.0)
        matrix[0, 2] += dx - (box.x + box.w / 2)
        matrix[1, 2] += dy - (box.y + box.h / 2)
        upright = cv2.warpAffine(gray, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        return resize_face(upright, size, interpolation)
    dx, dy = int(round(box.w * margin)), int(round(box.h * margin))
    x0, y0, x1, y1 = box.x - dx, box.y - dy, box.x + box.w + dx, box.y + box.h + dy
    height, width = gray.shape[:2]
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return resize_face(gray[y0:y1, x0:x1], size, interpolation)


NEAR_FACE_PIXELS = 48


class Detector(Protocol):
    """What the pipeline needs of a face detector; Haar (here) and BlazeFace (blazeface.py) have it,
    and detectors.py builds the one a config names."""

    def detect(self, gray: np.ndarray, frame_shape: tuple[int, int] | None = None) -> list[Box]: ...

    def detect_near(self, gray: np.ndarray, box: Box, frame_shape: tuple[int, int] | None = None) -> Box | None: ...


class FaceDetector:
    """Haar cascade on a downscaled grey frame; boxes come back in full-frame coordinates."""

    def __init__(self, cascade: str | Path, scale_factor: float = 1.15, min_neighbors: int = 4,
                 min_size: int = 48, detect_width: int = 320, max_faces: int = 8) -> None:
        import cv2

        path = Path(cascade)
        if not path.is_file():
            raise EdgeError(f"Haar cascade {path} does not exist{installed_layout_hint(path)}")
        if not hasattr(cv2, "CascadeClassifier"):
            raise EdgeError("this OpenCV build has no CascadeClassifier: install opencv-python-headless>=4.8,<5")
        try:
            self.cascade = cv2.CascadeClassifier(str(path))
        except (cv2.error, SystemError):
            self.cascade = None
        if self.cascade is None or self.cascade.empty():
            raise EdgeError(f"Haar cascade {path} could not be loaded (corrupt or not a cascade XML)")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.detect_width = detect_width
        self.max_faces = max_faces

    @classmethod
    def from_config(cls, d: DetectorSection) -> FaceDetector:
        """The detector a config's ``[detector]`` section describes: the daemon, ``detect``,
        ``validate-config`` and fer-bench all build it here, so they cannot drift apart."""
        return cls(d.cascade, d.scale_factor, d.min_neighbors, d.min_size, d.detect_width, d.max_faces)

    def detect(self, gray: np.ndarray, frame_shape: tuple[int, int] | None = None) -> list[Box]:
        """Faces in ``gray``; ``frame_shape`` (h, w) when ``gray`` is a smaller plane (picamera2's lores)."""
        frame_h, frame_w = frame_shape or gray.shape[:2]
        scale = min(1.0, self.detect_width / gray.shape[1])
        found = self._detect_scaled(gray, scale, frame_w / gray.shape[1])
        to_full_x, to_full_y = frame_w / gray.shape[1], frame_h / gray.shape[0]
        boxes = [Box(int(round(x * to_full_x)), int(round(y * to_full_y)), int(round(w * to_full_x)),
                     int(round(h * to_full_y))) for x, y, w, h in found]
        boxes.sort(key=lambda b: b.w * b.h, reverse=True)
        return boxes[: self.max_faces]

    def detect_near(self, gray: np.ndarray, box: Box, frame_shape: tuple[int, int] | None = None,
                    grow: float = 0.25, size_change: float = 1.3) -> Box | None:
        """The face closest to ``box``: searched within the box grown by ``grow`` per side, at sizes
        within ``size_change`` of it.

        A tracked face moves and changes size little between frames, so searching a few scales in a
        small window costs a fraction of a full-frame pass; that is what lets the pipeline refresh
        every tracked face on every frame and run the full detector only every N frames.
        """
        frame_h, frame_w = frame_shape or gray.shape[:2]
        sx, sy = gray.shape[1] / frame_w, gray.shape[0] / frame_h
        dx, dy = box.w * grow, box.h * grow
        x0, y0 = max(0, int((box.x - dx) * sx)), max(0, int((box.y - dy) * sy))
        x1 = min(gray.shape[1], int(np.ceil((box.x + box.w + dx) * sx)))
        y1 = min(gray.shape[0], int(np.ceil((box.y + box.h + dy) * sy)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        # a known face needs no more than ~2x Haar's 24-px window to be found again
        scale = min(1.0, self.detect_width / gray.shape[1], NEAR_FACE_PIXELS / max(1.0, box.w * sx))
        side = box.w * sx * scale  # the face's size in the detector's pixels
        found = self._detect_scaled(gray[y0:y1, x0:x1], scale, 1 / sx,
                                    (int(side / size_change), int(np.ceil(side * size_change))))
        candidates = [Box(int(round((x + x0) / sx)), int(round((y + y0) / sy)), int(round(w / sx)),
                          int(round(h / sy))) for x, y, w, h in found]
        best = max(candidates, key=box.iou, default=None)
        return best if best is not None and best.iou(box) > 0 else None

    def _detect_scaled(self, gray: np.ndarray, scale: float, frame_per_plane: float,
                       sizes: tuple[int, int] | None = None) -> list[tuple[float, float, float, float]]:
        """Haar on ``gray`` shrunk by ``scale``; boxes in ``gray``'s pixels. ``min_size`` is in frame pixels."""
        import cv2

        small = gray if scale == 1.0 else cv2.resize(
            gray, (max(1, int(round(gray.shape[1] * scale))), max(1, int(round(gray.shape[0] * scale)))),
            interpolation=cv2.INTER_AREA)
        to_gray_x, to_gray_y = gray.shape[1] / small.shape[1], gray.shape[0] / small.shape[0]
        min_side = max(8, int(round(self.min_size * scale / frame_per_plane)))
        max_side = min(small.shape[:2])
        if sizes is not None:
            min_side, max_side = max(min_side, sizes[0]), min(max_side, sizes[1])
        if max_side < min_side:
            return []
        found = self.cascade.detectMultiScale(small, scaleFactor=self.scale_factor,
                                              minNeighbors=self.min_neighbors,
                                              minSize=(min_side, min_side), maxSize=(max_side, max_side))
        return [(x * to_gray_x, y * to_gray_y, w * to_gray_x, h * to_gray_y) for (x, y, w, h) in
                (found if len(found) else [])]
