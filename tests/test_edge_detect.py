"""`fer-edge detect` on real faces with the shipped int8 model: one JSON object per image."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from edge.__main__ import main
from tests.edge_helpers import MANIFEST, SAMPLE, face_frame

pytestmark = pytest.mark.skipif(not MANIFEST.is_file(), reason="shipped model not converted yet")


def test_detect_prints_faces_with_labels_from_the_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = json.loads(MANIFEST.read_text())
    # two sample faces the shipped detector settings find side by side (Haar misses some faces)
    paths = [sorted((SAMPLE / "test" / label).glob("*.jpg"))[index] for label, index in (("happy", 0), ("surprise", 2))]
    frame, boxes = face_frame(paths, size=160)
    image = tmp_path / "two_faces.jpg"
    cv2.imwrite(str(image), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    annotated = tmp_path / "annotated"
    assert main(["detect", str(image), "--annotate", str(annotated)]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["image"] == str(image)
    assert len(line["faces"]) == 2
    for face in line["faces"]:
        assert len(face["box"]) == 4 and face["label"] in manifest["labels"]
        assert set(face["probs"]) == set(manifest["labels"])
        assert abs(sum(face["probs"].values()) - 1.0) < 0.02
        assert face["score"] == max(face["probs"].values())
    assert (annotated / "two_faces.jpg").is_file()


def test_unreadable_images_are_reported_and_the_rest_still_run(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really")
    good = sorted((SAMPLE / "test" / "happy").glob("*.jpg"))[0]
    assert main(["detect", str(broken), str(good), str(tmp_path / "missing.png")]) == 2
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 1 and json.loads(out)["image"] == str(good)
    assert "broken.jpg: not a readable image" in err and "missing.png: no such file" in err


def test_a_video_given_to_detect_points_at_analyze(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.edge_helpers import ROOT

    clip = ROOT / "models" / "demo" / "demo_clip.mp4"
    if not clip.is_file():
        pytest.skip("demo clip missing")
    assert main(["detect", str(clip)]) == 2
    assert capsys.readouterr().err == \
        f"fer-edge: error: cannot read {clip}: not a readable image (use fer-edge analyze for videos)\n"


def test_a_corrupt_model_is_refused_at_start_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    models = tmp_path / "models"
    shutil.copytree(MANIFEST.parent, models, ignore=shutil.ignore_patterns("*.keras", "*.onnx", "demo"))
    (models / json.loads(MANIFEST.read_text())["artifacts"]["int8"]["path"]).write_bytes(b"garbage")
    good = sorted((SAMPLE / "test" / "happy").glob("*.jpg"))[0]
    assert main(["detect", str(good), "--manifest", str(models / "manifest.json")]) == 2
    assert "does not match the manifest" in capsys.readouterr().err


def test_an_annotate_folder_that_cannot_be_made_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    good = sorted((SAMPLE / "test" / "happy").glob("*.jpg"))[0]
    assert main(["detect", str(good), "--annotate", str(blocker / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fer-edge: error: cannot create --annotate folder") and "\n" not in err


def detect_process(*args: str) -> "subprocess.CompletedProcess[str]":
    """`fer-edge detect` in its own process, so what C decoders print on stderr is seen too."""
    import os
    import subprocess
    import sys

    from tests.edge_helpers import ROOT

    return subprocess.run([sys.executable, "-m", "edge", "detect", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def decoder_noise(stderr: str) -> list[str]:
    """stderr lines that are not ours (the TFLite runtime's start-up notice is filtered out, so it counts)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("fer-edge:")]


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_truncated_image_is_refused_in_one_line(suffix: str, tmp_path: Path) -> None:
    paths = [sorted((SAMPLE / "test" / label).glob("*.jpg"))[index] for label, index in (("happy", 0), ("surprise", 2))]
    frame, _ = face_frame(paths, size=160)
    whole = tmp_path / f"whole{suffix}"
    cv2.imwrite(str(whole), frame)
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    result = detect_process(str(truncated))
    assert result.returncode == 2, result.stdout
    assert result.stdout == ""
    assert result.stderr.count("fer-edge: error:") == 1 and "truncated" in result.stderr, result.stderr
    assert decoder_noise(result.stderr) == []


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` RGB pixels: what an attacker sends (a few hundred
    bytes that decode to gigabytes); refusing it must not depend on the pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def test_an_image_past_the_pixel_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    import struct
    import zlib

    # a real, complete 8000x6000 PNG (48 MP, 150 KB on disk) is past the 40 MP default
    width, height = 8000, 6000
    row = b"\0" + b"\x80" * (width * 3)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                    + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(20000, 20000))
    for path, pixels in ((big, "48.0 MP"), (bomb, "400.0 MP")):
        result = detect_process(str(path))
        assert result.returncode == 2 and result.stdout == "", result.stderr
        line = [line for line in result.stderr.splitlines() if line.startswith("fer-edge: error:")]
        assert len(line) == 1 and pixels in line[0] and "--max-pixels" in line[0], result.stderr
        assert decoder_noise(result.stderr) == []
    raised = detect_process(str(big), "--max-pixels", "50000000")  # the limit is the user's to raise
    assert raised.returncode == 0, raised.stderr
    assert json.loads(raised.stdout)["faces"] == []
