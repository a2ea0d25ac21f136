"""Still images as a frame source: one file, a folder, or a glob pattern.

Useful for checking a model on a folder of photos with the same pipeline the camera uses.
A dataset folder often holds a few broken files; by default they are skipped and counted so one
bad JPEG does not stop a run of thousands, and ``strict=True`` turns them into errors instead.
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.errors import SourceError
from edge.vision.sources.base import Frame, FrameSource
from edge.vision.sources.image_file import MAX_PIXELS, ImageFileError, read_image_file

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm"})
GLOB_CHARS = ("*", "?", "[")


def is_glob(pattern: str) -> bool:
    return any(char in pattern for char in GLOB_CHARS)


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(target: str | Path | Sequence[str | Path]) -> list[Path]:
    """The files a target names, in a stable order; raises SourceError if there are none."""
    if isinstance(target, (list, tuple)):
        paths = [Path(item) for item in target]
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise SourceError(f"no such image file: {missing[0]}")
        if not paths:
            raise SourceError("no images given")
        return paths
    text = str(target)
    path = Path(text).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        paths = sorted(item for item in path.iterdir() if item.is_file() and is_image_path(item))
        if not paths:
            hint = ""
            if any(item.is_dir() for item in path.iterdir()):
                hint = f"; subfolders are not searched, use a glob such as '{path}/*/*.jpg'"
            raise SourceError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {path}{hint}")
        return paths
    if is_glob(text):
        paths = sorted(Path(item) for item in glob.glob(str(Path(text).expanduser()))
                       if Path(item).is_file() and is_image_path(Path(item)))
        if not paths:
            raise SourceError(f"no images match {text}")
        return paths
    raise SourceError(f"no such file or folder: {text}")


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray | None:
    """BGR uint8, or None if the file cannot be read, is truncated, too large or does not decode.

    Decoding from bytes rather than ``cv2.imread`` keeps I/O errors and non-ASCII paths on
    every platform in the same None-or-image contract.
    """
    try:
        return read_image_file(path, max_pixels)
    except ImageFileError:
        return None


class ImageSource(FrameSource):
    """Frames from image files, one per file, then the end of the stream.

    ``skipped`` counts unreadable files (truncated ones and those past ``max_pixels`` included) in
    non-strict mode; they are dropped from ``paths``. ``loop`` starts over after the last
    file, for demos; a pass that yields no frame at all still ends the stream.
    """

    live = False

    def __init__(self, target: str | Path | Sequence[str | Path], width: int | None = None,
                 height: int | None = None, strict: bool = False, loop: bool = False,
                 max_pixels: int = MAX_PIXELS) -> None:
        self.target = target
        self.max_pixels = max_pixels
        self.width = width
        self.height = height
        self.strict = strict
        self.loop = loop
        self.description = (f"{len(target)} images" if isinstance(target, (list, tuple))
                            else f"images {target}")
        self.paths: list[Path] = []
        self.skipped = 0
        self._position = 0
        self._index = 0
        self._yielded_this_pass = 0
        self._open = False

    def open(self) -> None:
        self.paths = list_images(self.target)
        self.skipped = 0
        self._position = 0
        self._index = 0
        self._yielded_this_pass = 0
        self._open = True

    def read(self) -> Frame | None:
        if not self._open:
            raise SourceError(f"{self.description} is not open")
        while True:
            if self._position >= len(self.paths):
                if not (self.loop and self._yielded_this_pass):
                    return None
                self._position, self._yielded_this_pass = 0, 0
            path = self.paths[self._position]
            try:
                image = read_image_file(path, self.max_pixels)
                self._position += 1
                break
            except ImageFileError as exc:
                if self.strict:
                    raise SourceError(f"cannot read image {path}: {exc}") from None
                reason = str(exc)
            del self.paths[self._position]  # so a looping source warns about it once
            self.skipped += 1
            log.warning("skipping unreadable image %s: %s", path, reason)
        if self.width and self.height and image.shape[:2] != (self.height, self.width):
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        frame = Frame(image=image, gray=None, index=self._index, timestamp=time.time(), name=str(path))
        self._index += 1
        self._yielded_this_pass += 1
        return frame

    def close(self) -> None:
        self._open = False
