"""Detection finds real FER2013 faces in camera-sized frames, and the crop equals training's input."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import EdgeError
from edge.vision.faces import Box, FaceDetector, crop_face, to_gray
from tests.edge_helpers import CASCADE, SAMPLE, face_frame
from train.data import to_face_array


def test_edge_crop_equals_training_input() -> None:
    """The tensor the edge feeds the model for a face is exactly what training built from that face."""
    path = sorted((SAMPLE / "test" / "happy").glob("*.jpg"))[0]
    frame, [(x, y, w, h)] = face_frame([path], size=150)
    for margin in (0.0, 0.02, 0.1):
        edge_tensor = crop_face(to_gray(frame), Box(x, y, w, h), (48, 48), margin, "area")
        d = int(round(w * margin))
        training_tensor = to_face_array(frame[y - d:y + h + d, x - d:x + w + d])
        assert edge_tensor.dtype == np.uint8 and edge_tensor.shape == (48, 48)
        assert np.array_equal(edge_tensor, training_tensor), margin


def test_crop_at_the_border_is_padded_not_shifted() -> None:
    gray = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    crop = crop_face(gray, Box(-10, -10, 48, 48), (48, 48), 0.0)
    assert crop.shape == (48, 48)
    assert (crop[:10, :10] == gray[0, 0]).all()


def test_haar_finds_fer_faces_in_a_640x480_frame() -> None:
    """All 70 bundled test faces at three sizes; the default settings found 71% when chosen."""
    detector = FaceDetector(CASCADE)
    found, total = 0, 0
    for i, path in enumerate(sorted((SAMPLE / "test").glob("*/*.jpg"))):
        for size in (100, 160, 220):
            frame, [truth] = face_frame([path], size=size, seed=i)
            total += 1
            found += any(box.iou(Box(*truth)) >= 0.5 for box in detector.detect(to_gray(frame)))
    assert found / total >= 0.65, f"Haar found {found}/{total} faces"


def test_boxes_map_back_from_a_smaller_detection_plane() -> None:
    """picamera2's lores plane is half size: boxes found there are reported in main-frame pixels."""
    import cv2

    path = sorted((SAMPLE / "test" / "happy").glob("*.jpg"))[0]
    frame, [truth] = face_frame([path], size=160)
    gray = to_gray(frame)
    lores = cv2.resize(gray, (320, 240), interpolation=cv2.INTER_AREA)
    detector = FaceDetector(CASCADE, detect_width=320)
    full = detector.detect(gray)
    mapped = detector.detect(lores, gray.shape[:2])
    assert full and mapped
    assert mapped[0].iou(Box(*truth)) > 0.6


def test_box_iou() -> None:
    assert Box(0, 0, 10, 10).iou(Box(0, 0, 10, 10)) == 1.0
    assert Box(0, 0, 10, 10).iou(Box(20, 20, 5, 5)) == 0.0
    assert Box(0, 0, 10, 10).iou(Box(5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_bad_cascade_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(EdgeError, match="does not exist"):
        FaceDetector(tmp_path / "missing.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(EdgeError, match="could not be loaded"):
        FaceDetector(bad)


def test_detect_near_refinds_a_moved_face_and_not_a_vanished_one() -> None:
    path = sorted((SAMPLE / "test" / "happy").glob("*.jpg"))[0]
    detector = FaceDetector(CASCADE)
    frame, [(x, y, w, h)] = face_frame([path], size=160)
    [first] = detector.detect(to_gray(frame))
    moved = np.roll(frame, (6, 9), axis=(0, 1))  # the face drifts between frames
    again = detector.detect_near(to_gray(moved), first)
    assert again is not None and again.iou(Box(x + 9, y + 6, w, h)) > 0.6
    empty, _ = face_frame([], size=160)
    assert detector.detect_near(to_gray(empty), first) is None
