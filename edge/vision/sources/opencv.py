"""Cameras, network streams and video files through ``cv2.VideoCapture``.

One adapter covers all three because OpenCV already does; what differs is what a failed read
means. A file that stops returning frames has ended; a camera or stream that does has failed, and
the daemon needs an exception to reconnect rather than a quiet end of stream.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edge.errors import SourceError
from edge.vision.sources.base import Frame, FrameSource

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")


def is_stream_url(target: str) -> bool:
    return target.lower().startswith(STREAM_SCHEMES)


def redact(target: str) -> str:
    """The target with any URL password hidden, because descriptions end up in logs and MQTT."""
    return re.sub(r"(://[^/:@]+):[^/@]*@", r"\1:***@", target)


def to_bgr(image: np.ndarray) -> np.ndarray:
    """BGR uint8 from whatever a decoder produced (greyscale videos, BGRA captures)."""
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


@contextlib.contextmanager
def opencv_log_silenced() -> Iterator[None]:
    """OpenCV's own log off meanwhile. A camera that is not there makes V4L2, FFmpeg and the other
    backends each print "[ WARN:0@0.1] global cap_v4l.cpp:914 open VIDEOIO(V4L2:/dev/video0): can't
    open camera by index" on every reopen; the SourceError raised instead is the one line that says so."""
    logs = getattr(getattr(cv2, "utils", None), "logging", None)
    if logs is None:  # a build without cv2.utils.logging: its lines stay
        yield
        return
    previous = logs.getLogLevel()
    logs.setLogLevel(logs.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logs.setLogLevel(previous)


class OpenCVSource(FrameSource):
    """A device index, ``/dev/videoN``, an rtsp/http(s) URL, or a video file.

    ``width``/``height``/``fps`` are requests to a live device (it may pick the nearest mode it
    has); for a file, frames are resized only when both ``width`` and ``height`` are given, since
    a file cannot be asked to decode at another size. ``loop`` replays a file forever for demos.
    ``realtime`` delivers a file's frames at its own frame rate, as a camera would, so a rehearsal
    of a deployment on a recorded clip costs what the camera will, not a core decoding flat out.
    """

    def __init__(self, target: int | str, width: int | None = None, height: int | None = None,
                 fps: float | None = None, loop: bool = False, realtime: bool = False) -> None:
        if isinstance(target, str) and target.strip().isdigit():
            target = int(target.strip())
        self.target: int | str = target
        self.width = width
        self.height = height
        self.fps = fps
        self.loop = loop
        self.realtime = realtime
        self._interval = 0.0
        self._due = 0.0
        if isinstance(target, int):
            self.live, self.description = True, f"camera {target}"
        elif target.startswith("/dev/video"):
            self.live, self.description = True, target
        elif is_stream_url(target):
            self.live, self.description = True, redact(target)
        else:
            self.live, self.description = False, str(target)
        self._capture: cv2.VideoCapture | None = None
        self._index = 0
        self._frames_since_open = 0

    def open(self) -> None:
        if self._capture is not None:
            return
        if not self.live and not Path(self.target).is_file():
            raise SourceError(f"cannot open video source {self.description}: no such file")
        self._capture = self._open_capture()
        if self.live:
            self._request_mode(self._capture)
        elif self.realtime:
            rate = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
            rate = rate if 0 < rate <= 240 else float(self.fps or 15.0)  # containers without a rate
            self._interval, self._due = 1.0 / rate, time.monotonic()

    def _open_capture(self) -> cv2.VideoCapture:
        try:
            with opencv_log_silenced():
                capture = cv2.VideoCapture(self.target)
                opened = capture.isOpened()
        except cv2.error as exc:
            raise SourceError(f"cannot open video source {self.description}: {str(exc).strip()[:120]}") from None
        if not opened:
            capture.release()
            raise SourceError(f"cannot open video source {self.description}")
        self._frames_since_open = 0
        return capture

    def _request_mode(self, capture: cv2.VideoCapture) -> None:
        """Ask the device for a mode; drivers round to what they support, so log what we got."""
        if self.width:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, float(self.width))
        if self.height:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, float(self.height))
        if self.fps:
            capture.set(cv2.CAP_PROP_FPS, float(self.fps))
        if self.width or self.height or self.fps:
            log.info("%s: asked for %sx%s@%s, got %dx%d@%.1f", self.description, self.width, self.height,
                     self.fps, int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), capture.get(cv2.CAP_PROP_FPS))

    def read(self) -> Frame | None:
        if self._capture is None:
            raise SourceError(f"video source {self.description} is not open")
        image = self._grab()
        if image is None and not self.live and self.loop and self._frames_since_open > 0:
            # Reopening is slower than seeking to frame 0 but works for every container and backend.
            self._capture.release()
            self._capture = self._open_capture()
            image = self._grab()
        if image is None:
            if self.live:
                raise SourceError(f"video source {self.description} stopped delivering frames")
            return None
        if self._interval:
            self._due = max(self._due + self._interval, time.monotonic() - self._interval)  # no catch-up bursts
            delay = self._due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        image = to_bgr(image)
        if not self.live and self.width and self.height and image.shape[:2] != (self.height, self.width):
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        frame = Frame(image=image, gray=None, index=self._index, timestamp=time.time())
        self._index += 1
        self._frames_since_open += 1
        return frame

    def _grab(self) -> np.ndarray | None:
        assert self._capture is not None
        try:
            ok, image = self._capture.read()
        except cv2.error as exc:
            if self.live:
                raise SourceError(f"video source {self.description} failed: {str(exc).strip()[:120]}") from None
            return None
        return image if ok and image is not None and image.size else None

    def close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()
