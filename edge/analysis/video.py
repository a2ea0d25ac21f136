"""Frames of one video file, or the images of a folder one after another, with what the file says
about itself (frame rate, frame count) so a run can tell a truncated file from one that ended."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np

from edge.errors import SourceError

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mjpeg"})


class VideoFrames:
    """``with VideoFrames(path) as video: for image in video: ...``; SourceError if it cannot be opened."""

    def __init__(self, path: Path, fallback_fps: float = 15.0) -> None:
        self.path = Path(path)
        self.fps = fallback_fps
        self.expected: int | None = None
        self.size = (0, 0)
        self._capture = None
        self._images: list[Path] | None = None
        self.skipped: list[Path] = []  # images of a folder that could not be read, in the order met

    @property
    def stills(self) -> bool:
        """A folder of images: unrelated photos, not frames of one scene (edge.analysis.run)."""
        return self.path.is_dir()

    def open(self) -> None:
        import cv2

        if self.path.is_dir():
            from edge.vision.sources.images import list_images

            self._images = list_images(self.path)
            self.expected = len(self._images)
            return
        if not self.path.is_file():
            raise SourceError(f"cannot open video {self.path}: no such file")
        # FFmpeg reports a damaged file on stderr by itself ("moov atom not found"); the one line
        # the user gets is ours, so keep FFmpeg quiet unless someone asked for its log.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open video {self.path}: not a video OpenCV can decode, or truncated "
                              "before its index")
        rate = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = rate if 0 < rate <= 240 else self.fps
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.expected = count if count > 0 else None
        self.size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._capture = capture

    def __iter__(self) -> Iterator[np.ndarray]:
        import cv2

        from edge.vision.sources.opencv import to_bgr

        if self._images is not None:
            from edge.vision.sources.images import read_image

            for path in self._images:
                image = read_image(path)
                if image is None:
                    self.skipped.append(path)  # counted, and named in the report, not dropped unseen
                else:
                    yield image
            return
        assert self._capture is not None, "open() first"
        while True:
            try:
                ok, image = self._capture.read()
            except cv2.error:
                return  # a damaged frame ends the file; the caller compares with ``expected``
            if not ok or image is None or not image.size:
                return
            yield to_bgr(image)

    def close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()

    def __enter__(self) -> VideoFrames:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def list_inputs(target: Path) -> list[Path]:
    """What ``analyze TARGET`` covers: a video; a folder's videos (each analysed on its own); or a
    folder of images, analysed as one set of photos."""
    if target.is_file():
        return [target]
    if target.is_dir():
        videos = sorted(p for p in target.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        return videos or [target]
    raise SourceError(f"no such video or folder: {target}")
