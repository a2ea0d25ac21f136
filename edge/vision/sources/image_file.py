"""An image file's bytes checked before they are decoded: complete, and not too many pixels.

Images given to ``fer-edge detect`` or an image-folder source may come from anywhere. A decoder
given a truncated JPEG fills the missing part with grey, prints a warning of its own and returns
a picture the classifier then labels; a PNG of a few hundred bytes can claim 20000x20000 pixels
and make the decoder allocate gigabytes, which kills a Pi. So the header is read first: its
dimensions must be within ``max_pixels``, and JPEG, PNG and WebP files must reach their end marker.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from edge.errors import EdgeError

__all__ = ["MAX_PIXELS", "ImageFileError", "decode_image", "image_size", "is_truncated"]

# 40 MP: a 48 MP phone photo is refused, the 12 MP of a Pi camera module 3 full frame is 4x under
# it; decoding 40 MP as BGR takes 120 MB, which a Pi with 1 GB still has.
MAX_PIXELS = 40_000_000

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageFileError(EdgeError):
    """An image file refused before decoding; the message is the reason, without the path."""


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a JPEG, PNG, WebP, BMP, TIFF or PNM file; None if unknown."""
    try:
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:2] == b"BM":
            if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 header: 16-bit sizes
                return struct.unpack("<HH", data[18:22])
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:4] in (b"II*\0", b"MM\0*"):
            return _tiff_size(data)
        if data[:1] == b"P" and data[1:2] in b"123456":
            return _pnm_size(data)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def is_truncated(data: bytes) -> bool:
    """Whether a JPEG, PNG or WebP file ends before its image data does (other formats: False)."""
    if data[:2] == b"\xff\xd8":
        scan = _jpeg_first_scan(data)
        # Entropy-coded data escapes 0xFF, so the end-of-image marker cannot occur inside it.
        return scan is None or data.find(b"\xff\xd9", scan) < 0
    if data[:8] == PNG_SIGNATURE:
        return not _png_complete(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return len(data) < 8 + struct.unpack("<I", data[4:8])[0]
    return False


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """BGR uint8, once the header says the file is complete and within ``max_pixels``."""
    import cv2

    size = image_size(data)
    if size is None:
        raise ImageFileError("not a readable image")
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageFileError(f"not a readable image (its header says {width}x{height} pixels)")
    if width * height > max_pixels:
        raise ImageFileError(f"{width}x{height} pixels ({width * height / 1e6:.1f} MP) is past the limit of "
                             f"{max_pixels / 1e6:g} MP")
    if is_truncated(data):
        raise ImageFileError("truncated (the file ends before its image data)")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or not image.size:
        raise ImageFileError("not a readable image")
    return image


def read_image_file(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """``decode_image`` of a file; ImageFileError for a missing or unreadable one too."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageFileError("no such file") from None
    except OSError as exc:
        raise ImageFileError(exc.strerror or str(exc)) from None
    if not data:
        raise ImageFileError("empty file")
    return decode_image(data, max_pixels)


def _jpeg_segments(data: bytes) -> tuple[tuple[int, int] | None, int | None]:
    """(size from the first SOF marker, offset of the first SOS marker), walking the markers."""
    i, size = 2, None
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return size, None  # not a marker where one must be: corrupt
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker == 0xDA:
            return size, i
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in _JPEG_SOF and size is None:
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            size = (width, height)
        i += 2 + length
    return size, None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    return _jpeg_segments(data)[0]


def _jpeg_first_scan(data: bytes) -> int | None:
    return _jpeg_segments(data)[1]


def _png_complete(data: bytes) -> bool:
    i = len(PNG_SIGNATURE)
    while i + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[i:i + 8])
        end = i + 12 + length
        if end > len(data):
            return False
        if kind == b"IEND":
            return True
        i = end
    return False


def _webp_size(data: bytes) -> tuple[int, int] | None:
    kind = data[12:16]
    if kind == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L":
        b0, b1, b2, b3 = data[21:25]
        return 1 + (((b1 & 0x3F) << 8) | b0), 1 + (((b3 & 0x0F) << 10) | (b2 << 2) | ((b1 & 0xC0) >> 6))
    if kind == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    offset = struct.unpack(order + "I", data[4:8])[0]
    count = struct.unpack(order + "H", data[offset:offset + 2])[0]
    found: dict[int, int] = {}
    for k in range(count):
        entry = data[offset + 2 + 12 * k: offset + 14 + 12 * k]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])[0]
    return (found[256], found[257]) if len(found) == 2 else None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    tokens: list[int] = []
    for line in data[2:256].split(b"\n"):
        for word in line.split(b"#")[0].split():
            tokens.append(int(word))
            if len(tokens) == 2:
                return tokens[0], tokens[1]
    return None
