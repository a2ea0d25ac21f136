"""Frames built from real FER2013 faces, and the daemon as a subprocess, shared by the edge tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


class DaemonProcess:
    """`python -m edge run --config CONFIG` in the background, its stdout and stderr appended to
    stdout.txt and stderr.txt in ``tmp``. ``env`` is added to this process's environment."""

    def __init__(self, config: Path, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.stdout = tmp / "stdout.txt"
        self.stderr = tmp / "stderr.txt"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen[bytes] = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        with self.stdout.open("ab") as out, self.stderr.open("ab") as err:
            return subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(self.config)], cwd=ROOT,
                                    stdout=out, stderr=err, env=self.env)

    def restart(self) -> None:
        self.process = self._start()

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` (if still running) and return the exit code; killed if it outlives ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
