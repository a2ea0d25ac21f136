"""A stand-in for picamera2 with the documented surface ``PiCameraSource`` uses.

It produces synthetic frames in the layouts the Picamera2 manual documents for ``make_array``
(appendix A, "Pixel and image formats"; picamera2's request.py does the same reshapes):

    RGB888    (h, w, 3), each pixel [B, G, R]        BGR888    (h, w, 3), [R, G, B]
    XBGR8888  (h, w, 4), [R, G, B, 255]              XRGB8888  (h, w, 4), [B, G, R, 255]
    YUV420    (h * 3 // 2, stride): h rows of Y, then h/2 rows of half-width U and h/2 of V,
              two of those half rows side by side on each array row; row padding is left in

tests/test_edge_picamera.py checks these against OpenCV's conversions. It records every call in order,
and can be told to fail, so the adapter's lifecycle and error handling are testable off a Pi.

    module = make_module(fail_after=2)
    monkeypatch.setitem(sys.modules, "picamera2", module)
    ... PiCameraSource(...) ...
    module.Picamera2.instances[0].calls
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

import numpy as np

MAIN_BGR = (10, 20, 30)  # the colour of every main-stream pixel, as B, G, R
# U and V of MAIN_BGR (BT.601, as OpenCV's I420 conversion): distinct, so a swapped plane shows
UV_VALUES = (122, 133)
PAD_VALUE = 7


def y_value(frame: int) -> int:
    """The Y plane's value for a frame, so tests can tell frames apart."""
    return 50 + frame % 100


def yuv_stride(width: int) -> int:
    """Rows padded to 64 bytes, as libcamera does, so the adapter must crop the padding."""
    return (width + 63) // 64 * 64


class FakeRequest:
    def __init__(self, camera: "FakePicamera2", frame: int) -> None:
        self.camera = camera
        self.frame = frame
        self.released = False

    def make_array(self, name: str) -> np.ndarray:
        self.camera.calls.append(f"make_array:{name}")
        if self.camera.fail_after is not None and self.frame >= self.camera.fail_after:
            raise RuntimeError("Camera frontend has timed out!")
        stream = self.camera.camera_config[name]
        width, height = stream["size"]
        fmt = stream["format"]
        b, g, r = MAIN_BGR
        pixel = {"RGB888": (b, g, r), "BGR888": (r, g, b), "XBGR8888": (r, g, b, 255),
                 "XRGB8888": (b, g, r, 255)}.get(fmt)
        if pixel is not None:
            image = np.empty((height, width, len(pixel)), dtype=np.uint8)
            image[:] = pixel
            image[0, 0, 0] = self.frame % 256
            return image
        if fmt == "YUV420":
            stride = yuv_stride(width)
            array = np.full((height * 3 // 2, stride), PAD_VALUE, dtype=np.uint8)
            array[:height, :width] = y_value(self.frame)
            quarter = height // 4  # h/2 half-width rows of a chroma plane make h/4 array rows
            for plane, value in enumerate(UV_VALUES):
                rows = slice(height + plane * quarter, height + (plane + 1) * quarter)
                array[rows, : width // 2] = value
                array[rows, stride // 2: stride // 2 + width // 2] = value
            return array
        raise RuntimeError(f"Format {stream['format']} not supported")

    def release(self) -> None:
        if self.released:
            raise RuntimeError("CompletedRequest: lock now has negative ref_count")
        self.released = True
        self.camera.outstanding -= 1
        self.camera.calls.append("release")


class FakePicamera2:
    """Class attributes are set per module by ``make_module``; instances record their calls."""

    cameras = 1
    fail_after: int | None = None
    fail_on: frozenset[str] = frozenset()
    instances: list["FakePicamera2"] = []

    def __init__(self, camera_num: int = 0) -> None:
        if camera_num >= self.cameras:
            raise IndexError("list index out of range")
        self.camera_num = camera_num
        self.calls: list[str] = ["init"]
        self.camera_config: dict[str, Any] | None = None
        self.started = False
        self.closed = False
        self.frames = 0
        self.outstanding = 0
        self.config_kwargs: dict[str, Any] = {}
        type(self).instances.append(self)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail_on:
            raise RuntimeError(f"fake {name} failure")

    def create_video_configuration(self, main: dict | None = None, lores: dict | None = None,
                                   controls: dict | None = None, **others: Any) -> dict[str, Any]:
        self._call("create_video_configuration")
        self.config_kwargs = {"main": main, "lores": lores, "controls": controls, **others}
        config: dict[str, Any] = {"use_case": "video", "main": dict(main or {"size": (1280, 720), "format": "XBGR8888"}),
                                  "lores": dict(lores) if lores else None, "controls": dict(controls or {})}
        return config

    def configure(self, config: dict[str, Any]) -> None:
        self._call("configure")
        self.camera_config = config

    def start(self) -> None:
        self._call("start")
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True

    def stop(self) -> None:
        self._call("stop")
        self.started = False

    def close(self) -> None:
        self._call("close")
        self.closed = True

    def capture_request(self) -> FakeRequest:
        self.calls.append("capture_request")
        if not self.started:
            raise RuntimeError("Camera must be started before capturing")
        request = FakeRequest(self, self.frames)
        self.frames += 1
        self.outstanding += 1
        return request

    @contextlib.contextmanager
    def captured_request(self) -> Iterator[FakeRequest]:
        request = self.capture_request()
        try:
            yield request
        finally:
            request.release()


def make_module(cameras: int = 1, fail_after: int | None = None, fail_on: set[str] | None = None) -> types.ModuleType:
    """A fresh ``picamera2`` module whose camera class has its own settings and instance list.

    ``fail_after=N``: make_array raises from frame N on (0-based), like a camera timeout.
    ``fail_on={"start"}``: those methods raise.
    """
    camera_class = type("Picamera2", (FakePicamera2,), {
        "cameras": cameras, "fail_after": fail_after, "fail_on": frozenset(fail_on or ()), "instances": [],
    })
    module = types.ModuleType("picamera2")
    module.Picamera2 = camera_class  # type: ignore[attr-defined]
    return module
