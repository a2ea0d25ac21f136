"""Image headers read before decoding: the size of every format the sources accept, and truncation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.vision.sources.image_file import ImageFileError, decode_image, image_size, is_truncated


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".bmp", ".tif", ".pgm", ".ppm"])
def test_the_header_gives_the_size_the_decoder_finds(suffix: str) -> None:
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    if suffix == ".pgm":
        image = image[:, :, 0]
    ok, encoded = cv2.imencode(suffix, image)
    assert ok
    data = encoded.tobytes()
    assert image_size(data) == (53, 37)
    assert not is_truncated(data)
    assert decode_image(data).shape[:2] == (37, 53)


def test_a_progressive_jpeg_with_an_exif_thumbnail_is_complete_until_cut() -> None:
    image = np.random.default_rng(1).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    thumbnail = cv2.imencode(".jpg", image[:8, :8])[1].tobytes()  # its own SOS and EOI, inside APP1
    app1 = b"\xff\xe1" + (len(thumbnail) + 2).to_bytes(2, "big") + thumbnail
    with_exif = data[:2] + app1 + data[2:]
    assert image_size(with_exif) == (80, 64) and not is_truncated(with_exif)
    for cut in (len(with_exif) - 2, len(with_exif) * 3 // 4, len(app1) + 40):
        assert is_truncated(with_exif[:cut]), cut


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_truncated_png_and_webp_are_found(suffix: str) -> None:
    image = np.random.default_rng(2).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    data = cv2.imencode(suffix, image)[1].tobytes()
    assert not is_truncated(data) and is_truncated(data[:-5])
    with pytest.raises(ImageFileError, match="truncated"):
        decode_image(data[:-5])


def test_the_pixel_limit_is_checked_on_the_header() -> None:
    data = cv2.imencode(".png", np.zeros((100, 200, 3), np.uint8))[1].tobytes()
    with pytest.raises(ImageFileError, match=r"200x100 pixels \(0.0 MP\) is past the limit"):
        decode_image(data, max_pixels=19_999)
    assert decode_image(data, max_pixels=20_000).shape == (100, 200, 3)


@pytest.mark.parametrize("data", [b"", b"\xff\xd8 not really", b"GIF89a....", b"\x89PNG\r\n\x1a\n", b"P5\nxx yy\n"])
def test_unknown_or_broken_headers_are_not_readable(data: bytes) -> None:
    assert image_size(data) is None
    with pytest.raises(ImageFileError, match="not a readable image"):
        decode_image(data)
