"""Turn a ``--source`` string into the right adapter, so the CLI and config share one rule."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import SourceError
from edge.vision.sources.base import FrameSource
from edge.vision.sources.images import ImageSource, is_glob, is_image_path
from edge.vision.sources.opencv import OpenCVSource, is_stream_url
from edge.vision.sources.picamera import PiCameraSource, lores_size

if TYPE_CHECKING:
    from edge.config import EdgeConfig

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mjpeg"})
PICAMERA = re.compile(r"picamera2(?::(\d+))?")


def source_from_config(config: EdgeConfig) -> FrameSource:
    """The source a config's ``[source]`` section names, not yet opened; the Pi camera's greyscale
    stream is sized for ``[detector] detect_width``."""
    s = config.source
    return open_source(s.uri, s.width, s.height, s.fps, loop=s.loop, realtime=s.realtime,
                       detect_width=config.detector.detect_width)


def open_source(spec: str, width: int | None = None, height: int | None = None, fps: float | None = None,
                loop: bool = False, realtime: bool = False, detect_width: int = 320) -> FrameSource:
    """A source for ``spec``, not yet opened (use it as a context manager).

    ``picamera2[:N]`` → Pi camera N; ``0`` or ``/dev/videoN`` → V4L2 device; ``rtsp://``,
    ``http(s)://`` → network stream; a video file; an image file, folder or glob → images.
    ``detect_width`` sizes the Pi camera's greyscale stream, the face detector's input.
    Paths are checked here so a typo fails at startup, not on the first frame.
    """
    spec = spec.strip()
    if not spec:
        raise SourceError("empty source: give a camera, a stream URL, a video, or an image path")
    picamera = PICAMERA.fullmatch(spec.lower())
    if picamera:
        width, height = width or 640, height or 480
        return PiCameraSource(width, height, fps, lores=lores_size(width, height, detect_width),
                              camera_num=int(picamera.group(1) or 0))
    if spec.isdigit() or spec.startswith("/dev/video"):
        return OpenCVSource(int(spec) if spec.isdigit() else spec, width, height, fps)
    if is_stream_url(spec):
        return OpenCVSource(spec, width, height, fps)
    path = Path(spec).expanduser()
    if path.is_dir() or (path.is_file() and is_image_path(path)):
        return ImageSource(path, width, height, loop=loop)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise SourceError(f"unsupported file type {path.suffix or '(none)'}: {spec} "
                              f"(videos: {' '.join(sorted(VIDEO_SUFFIXES))}; or an image)")
        return OpenCVSource(str(path), width, height, fps, loop=loop, realtime=realtime)
    if is_glob(spec):
        return ImageSource(spec, width, height, loop=loop)
    raise SourceError(f"no such file or folder: {spec}")
