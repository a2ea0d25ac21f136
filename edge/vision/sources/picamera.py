"""Raspberry Pi cameras through picamera2 (libcamera), the only supported path on Bookworm.

Two streams are configured: ``main`` for the image that is annotated and published, and a small
``lores`` YUV420 stream whose Y plane is a greyscale image the ISP scaled for free, so face
detection on a Pi needs neither a colour conversion nor a resize.

picamera2 is imported inside ``open`` so this module (and the rest of ``edge``) imports on any
machine; it is installed with apt on Raspberry Pi OS, not pip.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from edge.errors import SourceError, SourceNotInstalled
from edge.vision.sources.base import Frame, FrameSource

log = logging.getLogger(__name__)

# picamera2/libcamera name formats by their 32-bit little-endian word, so "RGB888" is stored as
# B, G, R bytes: exactly OpenCV's BGR. The main stream needs no colour conversion.
MAIN_FORMAT = "RGB888"
LORES_FORMAT = "YUV420"
# the default source.uri, so this is also what `fer-edge run` on a laptop meets first
NOT_INSTALLED = "picamera2 is not installed (apt install python3-picamera2 on Raspberry Pi OS), or pass --source FILE|N"


def lores_size(width: int, height: int, detect_width: int = 320) -> tuple[int, int]:
    """The greyscale stream at the detector's width and the main stream's aspect ratio, even-sized
    for YUV420: a fixed 320x240 would not fit a smaller main stream and would squash a 16:9 one."""
    lores_width = max(2, min(detect_width, width) // 2 * 2)
    lores_height = max(2, min(height, round(lores_width * height / width)) // 2 * 2)
    return lores_width, lores_height


class PiCameraSource(FrameSource):
    """A CSI camera. ``lores=None`` skips the greyscale stream and leaves ``Frame.gray`` None."""

    live = True

    def __init__(self, width: int = 640, height: int = 480, fps: float | None = None,
                 lores: tuple[int, int] | None = (320, 240), camera_num: int = 0) -> None:
        if width <= 0 or height <= 0:
            raise SourceError(f"Pi camera size must be positive, got {width}x{height}")
        if lores is not None:
            lores_width, lores_height = lores
            if not (0 < lores_width <= width and 0 < lores_height <= height):
                raise SourceError(f"lores size {lores_width}x{lores_height} must fit in the main size "
                                  f"{width}x{height}")
            if lores_width % 2 or lores_height % 2:
                raise SourceError(f"lores size {lores_width}x{lores_height} must be even for YUV420")
        self.width = width
        self.height = height
        self.fps = fps
        self.lores = lores
        self.camera_num = camera_num
        self.description = f"picamera2 camera {camera_num} {width}x{height}" + (f"@{fps:g}" if fps else "")
        self._camera: Any = None
        self._index = 0

    def configuration_kwargs(self) -> dict[str, Any]:
        """The arguments for ``create_video_configuration``; a video configuration keeps the
        frame rate steady and lets the ISP produce both streams from one sensor mode."""
        kwargs: dict[str, Any] = {
            "main": {"size": (self.width, self.height), "format": MAIN_FORMAT},
            "controls": {"FrameRate": float(self.fps)} if self.fps else {},
        }
        if self.lores is not None:
            kwargs["lores"] = {"size": tuple(self.lores), "format": LORES_FORMAT}
        return kwargs

    def open(self) -> None:
        if self._camera is not None:
            return
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise SourceNotInstalled(NOT_INSTALLED) from None
        try:
            camera = Picamera2(self.camera_num)
        except Exception as exc:  # IndexError with no camera, RuntimeError when another process has it
            raise SourceError(f"cannot open Pi camera {self.camera_num}: {_reason(exc)}") from None
        try:
            camera.configure(camera.create_video_configuration(**self.configuration_kwargs()))
            camera.start()
        except Exception as exc:
            _shutdown(camera, self.description)
            raise SourceError(f"cannot start Pi camera {self.camera_num}: {_reason(exc)}") from None
        self._camera = camera

    def read(self) -> Frame | None:
        if self._camera is None:
            raise SourceError(f"{self.description} is not open")
        try:
            # captured_request releases the buffer back to libcamera in a finally, so a failing
            # make_array cannot starve the camera of buffers.
            with self._camera.captured_request() as request:
                timestamp = time.time()
                image = request.make_array("main")
                yuv = request.make_array("lores") if self.lores is not None else None
        except Exception as exc:
            raise SourceError(f"{self.description} failed: {_reason(exc)}") from None
        frame = Frame(image=image, gray=self._y_plane(yuv), index=self._index, timestamp=timestamp)
        self._index += 1
        return frame

    def _y_plane(self, yuv: np.ndarray | None) -> np.ndarray | None:
        """The first ``h`` rows of a YUV420 array, cropped to the width (rows may be padded to
        the stride). ``h`` comes from the array because libcamera may round the requested size."""
        if yuv is None or self.lores is None:
            return None
        rows = yuv.shape[0] * 2 // 3
        return np.ascontiguousarray(yuv[:rows, : min(self.lores[0], yuv.shape[1])])

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            _shutdown(camera, self.description)


def _shutdown(camera: Any, description: str) -> None:
    """stop() then close(), each attempted even if the other fails, so the device is freed for
    the next open after a crash."""
    for method in ("stop", "close"):
        try:
            getattr(camera, method)()
        except Exception as exc:
            log.warning("%s: %s() failed: %s", description, method, _reason(exc))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__
