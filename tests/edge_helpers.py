"""Frames built from real FER2013 faces, shared by the edge tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "fer2013_sample"
MANIFEST = ROOT / "models" / "manifest.json"
CASCADE = ROOT / "models" / "haarcascade_frontalface_default.xml"

def face_frame(face_paths: list[Path], size: int = 160, shape: tuple[int, int] = (480, 640),
               seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A BGR frame with each face upscaled to ``size`` px on a smooth, noisy background; returns the boxes."""
    rng = np.random.default_rng(seed)
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width]
    background = 90 + 40 * np.sin(xx / 170.0) + 30 * np.cos(yy / 120.0) + rng.normal(0, 3, (height, width))
    frame = np.clip(background, 0, 255).astype(np.uint8)
    boxes = []
    for i, path in enumerate(face_paths):
        face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        big = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
        x = 40 + i * (size + 60)
        y = (height - size) // 2
        frame[y:y + size, x:x + size] = big
        boxes.append((x, y, size, size))
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), boxes


def write_face_video(path: Path, frames: int = 40) -> Path:
    """A clip of two real FER2013 faces drifting on a 640x480 background (15 FPS), for daemon tests."""
    faces = [sorted((SAMPLE / "test" / label).glob("*.jpg"))[index] for label, index in (("happy", 0), ("surprise", 2))]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, (640, 480))
    for i in range(frames):
        writer.write(face_frame(faces, size=160, seed=i)[0])
    writer.release()
    return path
