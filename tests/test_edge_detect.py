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
