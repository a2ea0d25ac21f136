"""Image files and the 48x48 greyscale face every loader turns them into: decoding, conversion, and
reading members of zips and rows of CSVs with their failures as one-line ``DataError``s.

The lowest layer of data loading: ``data`` and the loaders beside it (``csv_data``, ``folders``,
``face_crop``) all build on it, and it imports none of them.
"""

from __future__ import annotations

import csv
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from train.errors import DataError
from train.labels import IMAGE_SIZE


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm"}


def to_8bit(image: np.ndarray) -> np.ndarray:
    """uint8 pixels: a 16-bit PNG/TIFF's high byte, as cv2.IMREAD_COLOR gives the edge; other depths clipped."""
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype != np.uint8:
        return np.clip(image, 0, 255).astype(np.uint8)
    return image


def to_face_array(image: np.ndarray) -> np.ndarray:
    """Any size or colour to 48x48 greyscale uint8, the one transform training and the edge share."""
    import cv2

    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code) if image.shape[2] in (3, 4) else image[:, :, 0]
    image = to_8bit(image)
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        interpolation = cv2.INTER_AREA if min(image.shape) > IMAGE_SIZE else cv2.INTER_LINEAR
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=interpolation)
    return image


def read_image(data: bytes, name: str) -> np.ndarray:
    """An encoded image file at full size, grey or BGR at its own bit depth, turned upright by its EXIF
    orientation as the edge's ``cv2.IMREAD_COLOR`` turns it (``IMREAD_UNCHANGED`` would not)."""
    import cv2

    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH) if buffer.size else None
    except cv2.error:  # OpenCV's own checks, such as a header claiming more than 2**30 pixels
        image = None
    if image is None:
        raise DataError(f"cannot decode image {name}: corrupt or not an image")
    return image


def decode_image(data: bytes, name: str) -> np.ndarray:
    return to_face_array(read_image(data, name))


Decode = Callable[[bytes, str], "np.ndarray | None"]


class ImageDecoder:
    """Decodes to 48x48 grey like ``decode_image``, remembering each image's original size and
    optionally cropping the face first (``face_crop.FaceCropper``); None means "skip this image"."""

    def __init__(self, cropper: Callable[[np.ndarray], np.ndarray | None] | None = None) -> None:
        self.cropper = cropper
        self.sizes: list[tuple[int, int]] = []

    def convert(self, image: np.ndarray) -> np.ndarray | None:
        face = self.cropper(image) if self.cropper is not None else to_face_array(image)
        if face is not None:
            self.sizes.append((int(image.shape[0]), int(image.shape[1])))
        return face

    def __call__(self, data: bytes, name: str) -> np.ndarray | None:
        return self.convert(read_image(data, name))


def zip_images(archive: zipfile.ZipFile) -> list[tuple[str, tuple[str, ...]]]:
    """Image members as (name, path parts), each inside at least one folder: no folders themselves,
    no macOS ``__MACOSX`` copies or ``._`` resource forks, no other hidden files."""
    images = []
    for info in archive.infolist():
        parts = Path(info.filename).parts
        if info.is_dir() or "__MACOSX" in parts or len(parts) < 2:
            continue
        if Path(parts[-1]).suffix.lower() in IMAGE_SUFFIXES and not parts[-1].startswith("."):
            images.append((info.filename, parts))
    return images


def read_member(archive: zipfile.ZipFile, name: str, path: Path) -> bytes:
    """One member's bytes; a damaged member (a bad CRC, torn compressed data) is a DataError naming it."""
    try:
        return archive.read(name)
    # RuntimeError: an encrypted member; NotImplementedError: a compression zipfile cannot read
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        raise DataError(f"cannot read {name} from zip {path}: {exc}") from None


def csv_rows(handle: Any, path: Path) -> Iterator[list[str]]:
    """``csv.reader``'s rows, with a file that is not UTF-8 text or a malformed line as a DataError."""
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # a pixel row of a large image is one long field
    reader = csv.reader(handle)
    try:
        yield from reader
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 text CSV (a binary file, or text in another encoding)") from None
    except csv.Error as exc:
        raise DataError(f"{path} line {reader.line_num}: {exc}") from None
