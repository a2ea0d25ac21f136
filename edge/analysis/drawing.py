"""Boxes, emotion labels and track ids drawn on a frame: the annotated video, the live view and
the README picture are all drawn here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from edge.analysis.palette import colour

if TYPE_CHECKING:
    from edge.vision.pipeline import FrameResult

FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_faces(image: np.ndarray, result: FrameResult, labels: tuple[str, ...] = (),
               caption: str = "") -> np.ndarray:
    """A copy of ``image`` with each face boxed in its emotion's colour, ``label score #id`` on a
    filled tab above the box (readable on any background), and an optional caption at the bottom left."""
    canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    scale = max(0.4, canvas.shape[0] / 960)
    thickness = max(1, round(scale * 2))
    for face in result.faces:
        b = face.box
        tint = colour(face.label, labels)
        cv2.rectangle(canvas, (b.x, b.y), (b.x + b.w, b.y + b.h), tint, thickness + 1)
        text = f"{face.label} {face.score:.2f}" + (f"  #{face.track_id}" if face.track_id is not None else "")
        (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
        top = b.y - th - base - 6
        top = top if top >= 0 else b.y + b.h  # no room above: put the tab under the box
        cv2.rectangle(canvas, (b.x, top), (b.x + tw + 8, top + th + base + 6), tint, cv2.FILLED)
        cv2.putText(canvas, text, (b.x + 4, top + th + 3), FONT, scale, _ink(tint), thickness, cv2.LINE_AA)
    if caption:
        (tw, th), base = cv2.getTextSize(caption, FONT, scale, thickness)
        height = canvas.shape[0]
        cv2.rectangle(canvas, (0, height - th - base - 10), (tw + 12, height), (0, 0, 0), cv2.FILLED)
        cv2.putText(canvas, caption, (6, height - base - 5), FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return canvas


def _ink(tint: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black text on light colours, white on dark ones."""
    b, g, r = tint
    return (0, 0, 0) if 0.114 * b + 0.587 * g + 0.299 * r > 140 else (255, 255, 255)
