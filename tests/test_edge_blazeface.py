"""BlazeFace beside Haar: anchors, decoding, weighted NMS, keypoints, aligned crops, bad models and
configs, and the CLI and daemon running with it. Runs in the edge-only venv (no tensorflow, no train)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import EdgeConfig, build_config, detect_every, load_config
from edge.errors import ConfigError, EdgeError, ModelLoadError
from edge.tilted_clip import paste_tilted
from edge.vision.blazeface import (BlazeFaceDetector, anchors_for, decode, eye_angle, frame_box, letterbox,
                                   weighted_nms)
from edge.vision.detectors import build_detector
from edge.vision.faces import Box, crop_face, to_gray
from tests.edge_helpers import MANIFEST, ROOT, SAMPLE, face_frame

BLAZEFACE = ROOT / "models" / "blazeface" / "face_detection_back.tflite"
SHORT = ROOT / "models" / "blazeface" / "face_detection_short_range.tflite"
PORTRAITS = Path(os.environ.get("PORTRAITS_DIR") or "/nonexistent")  # make and CI export the team's copy


@pytest.fixture(scope="module")
def detector() -> BlazeFaceDetector:
    return BlazeFaceDetector(BLAZEFACE)


def sample_faces(label: str = "happy", count: int = 3) -> list[Path]:
    return sorted((SAMPLE / "test" / label).glob("*.jpg"))[:count]


# --- anchors, decoding, NMS ------------------------------------------------------------------------
def test_anchor_counts_and_order_match_mediapipe() -> None:
    short, full, back = anchors_for(128), anchors_for(192), anchors_for(256)
    assert short.shape == (896, 2) and full.shape == (2304, 2) and back.shape == (896, 2)
    # 16x16 cells of stride 8 with two anchors each come first, row by row, x fastest
    assert np.allclose(short[0], short[1]) and np.allclose(short[0], [0.5 / 16, 0.5 / 16])
    assert np.allclose(short[2], [1.5 / 16, 0.5 / 16])
    assert np.allclose(short[512], [0.5 / 8, 0.5 / 8]) and np.allclose(short[512:518], short[512])  # 6 per cell
    assert np.allclose(full[1], [1.5 / 48, 0.5 / 48])
    with pytest.raises(ModelLoadError, match="not one of"):
        anchors_for(100)


def test_decode_puts_box_and_keypoints_relative_to_their_anchor() -> None:
    anchors = np.array([[0.25, 0.5], [0.75, 0.75]], np.float32)
    raw = np.zeros((1, 2, 16), np.float32)
    raw[0, 1, :4] = [12.8, -6.4, 32, 64]  # centre moved by (0.1, -0.05) of a 128 input; 0.25 x 0.5 in size
    raw[0, 1, 4:6] = [-12.8, 0]  # first keypoint 0.1 left of the anchor
    scores = np.array([[[-200.0], [2.0]]], np.float32)  # a huge logit must not overflow
    boxes, points, probs = decode(raw, scores, anchors, 128)
    assert np.allclose(boxes[1], [0.85 - 0.125, 0.70 - 0.25, 0.85 + 0.125, 0.70 + 0.25])
    assert np.allclose(points[1, 0], [0.65, 0.75]) and np.allclose(points[1, 1], [0.75, 0.75])
    assert np.allclose(points[0], anchors[0]) and boxes[0, 2] == boxes[0, 0]  # a zero-size box stays zero
    assert probs[0] == pytest.approx(0.0, abs=1e-30) and probs[1] == pytest.approx(1 / (1 + np.exp(-2)))


def test_weighted_nms_merges_overlaps_by_score_and_keeps_separate_faces() -> None:
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.1, 0.0, 1.1, 1.0], [3.0, 3.0, 4.0, 4.0], [0.0, 0.0, 1.0, 1.0]])
    points = np.zeros((4, 6, 2))
    points[1] += 1.0
    scores = np.array([0.9, 0.6, 0.7, 0.2])
    faces = weighted_nms(boxes, points, scores, min_score=0.5)
    assert len(faces) == 2  # the 0.2 anchor is below the threshold; the two overlapping ones merge
    merged, merged_points, score = faces[0]
    assert score == pytest.approx(0.9)
    assert merged[0] == pytest.approx(0.6 * 0.1 / 1.5) and merged[2] == pytest.approx((0.9 + 0.6 * 1.1) / 1.5)
    assert np.allclose(merged_points, 0.6 / 1.5)
    assert np.allclose(faces[1][0], boxes[2]) and faces[1][2] == pytest.approx(0.7)
    assert weighted_nms(boxes, points, scores, min_score=0.95) == []


def test_letterbox_keeps_the_aspect_and_centres_the_frame() -> None:
    square, fit = letterbox(np.full((480, 640), 200, np.uint8), 256)
    assert square.shape == (256, 256) and fit.scale == pytest.approx(0.4)
    assert fit.pad_x == 0 and fit.pad_y == 32
    assert (square[:32] == 0).all() and (square[32:224] == 200).all() and (square[224:] == 0).all()


# --- the detector on real faces --------------------------------------------------------------------
def test_finds_fer_faces_with_six_keypoints_in_the_box(detector: BlazeFaceDetector) -> None:
    frame, truths = face_frame(sample_faces(), size=150)
    found = detector.detect(to_gray(frame))
    assert len(found) == 3
    for truth in truths:
        box = max(found, key=Box(*truth).iou)
        assert box.iou(Box(*truth)) >= 0.6 and box.score is not None and box.score >= 0.5
        assert box.keypoints is not None and len(box.keypoints) == 6
        for x, y in box.keypoints[:4]:  # eyes, nose, mouth inside the face
            assert box.x <= x <= box.x + box.w and box.y <= y <= box.y + box.h
        (rx, ry), (lx, ly), _, (mx, my) = box.keypoints[:4]
        assert abs(ry - ly) < 0.1 * box.h and my > max(ry, ly)  # level eyes above the mouth


def test_a_face_tilted_30_degrees_is_found_and_its_tilt_measured(detector: BlazeFaceDetector) -> None:
    from edge.demo_clip import make_background

    face = cv2.imread(str(sample_faces("neutral", 1)[0]), cv2.IMREAD_GRAYSCALE)
    for angle in (30, -30):
        frame = make_background((640, 480), np.random.default_rng(0))
        paste_tilted(frame, face, (320, 240), 150, angle)
        [box] = detector.detect(to_gray(np.clip(frame, 0, 255).astype(np.uint8)))
        assert box.iou(Box(245, 165, 150, 150)) >= 0.5
        # the face was turned counter-clockwise by +angle: its eye line drops to the left by as much
        assert eye_angle(box.keypoints) == pytest.approx(-angle, abs=8)


def test_boxes_map_back_from_picamera2s_lores_plane(detector: BlazeFaceDetector) -> None:
    frame, [truth] = face_frame(sample_faces("surprise", 1), size=160)
    gray = to_gray(frame)
    lores = cv2.resize(gray, (320, 240), interpolation=cv2.INTER_AREA)
    [full] = detector.detect(gray)
    [mapped] = detector.detect(lores, gray.shape[:2])
    assert mapped.iou(Box(*truth)) > 0.6 and mapped.iou(full) > 0.8
    assert mapped.keypoints is not None and abs(mapped.keypoints[0][0] - full.keypoints[0][0]) < 6


def test_detect_near_refinds_a_moved_face_and_not_a_vanished_one(detector: BlazeFaceDetector) -> None:
    frame, _ = face_frame(sample_faces("happy", 1), size=160)
    [first] = detector.detect(to_gray(frame))
    moved = np.roll(frame, (6, 9), axis=(0, 1))
    again = detector.detect_near(to_gray(moved), first)
    assert again is not None and again.iou(Box(first.x + 9, first.y + 6, first.w, first.h)) >= 0.8
    empty = np.full_like(frame, 120)
    assert detector.detect_near(to_gray(empty), first) is None


def test_keypoints_outside_the_frame_are_dropped_not_used() -> None:
    corners = np.array([[10.0, 10.0], [110.0, 110.0]])
    points = np.tile([[40.0, 50.0]], (6, 1))
    assert frame_box(corners, points, 0.9, 640, 480).keypoints is not None
    points[4] = [-5.0, 50.0]  # an ear off the left edge: a face half out of view
    box = frame_box(corners, points, 0.9, 640, 480)
    assert box is not None and box.keypoints is None and box.w > 0
    points[4] = [np.nan, 50.0]
    assert frame_box(corners, points, 0.9, 640, 480).keypoints is None
    assert frame_box(np.array([[10.0, 10.0], [5.0, 110.0]]), points, 0.9, 640, 480) is None


# --- aligned crops ---------------------------------------------------------------------------------
def test_eye_angle_sign_and_order() -> None:
    assert eye_angle(((0.0, 0.0), (10.0, 10.0))) == pytest.approx(45)
    assert eye_angle(((10.0, 10.0), (0.0, 0.0))) == pytest.approx(45)  # whichever eye comes first
    assert eye_angle(((0.0, 5.0), (10.0, 0.0))) == pytest.approx(np.degrees(np.arctan2(-5, 10)))
    assert eye_angle(None) is None


def test_an_aligned_crop_of_a_turned_face_matches_the_upright_crop() -> None:
    frame, [truth] = face_frame(sample_faces("happy", 1), size=160)
    gray = to_gray(frame)
    box = Box(*truth)
    upright = crop_face(gray, box, (48, 48), 0.02).astype(np.float32)
    centre = (box.x + box.w / 2, box.y + box.h / 2)
    turned = cv2.warpAffine(gray, cv2.getRotationMatrix2D(centre, 25, 1.0), gray.shape[::-1],
                            borderMode=cv2.BORDER_REPLICATE)
    plain = crop_face(turned, box, (48, 48), 0.02).astype(np.float32)
    # turned counter-clockwise by 25 degrees, the eye line falls by 25 degrees to the right: -25
    aligned = crop_face(turned, box, (48, 48), 0.02, angle=-25.0).astype(np.float32)
    inner = np.s_[8:40, 8:40]  # the corners hold what the turn brought in from outside the box
    assert np.abs(aligned - upright)[inner].mean() < 0.4 * np.abs(plain - upright)[inner].mean()
    assert crop_face(gray, box, (48, 48), 0.02, angle=0.0).tolist() == upright.astype(np.uint8).tolist()


# --- bad models and configs ------------------------------------------------------------------------
def _copy_model(tmp_path: Path, source: Path = BLAZEFACE) -> Path:
    model = tmp_path / source.name
    shutil.copyfile(source, model)
    shutil.copyfile(source.with_name(source.name + ".sha256"), model.with_name(model.name + ".sha256"))
    return model


def test_bad_detector_models_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        BlazeFaceDetector(tmp_path / "none.tflite")
    model = _copy_model(tmp_path)
    model.with_name(model.name + ".sha256").unlink()
    with pytest.raises(ModelLoadError, match="has no face_detection_back.tflite.sha256"):
        BlazeFaceDetector(model)
    model = _copy_model(tmp_path)
    model.write_bytes(model.read_bytes()[:1000])  # truncated: no longer its sha256
    with pytest.raises(ModelLoadError, match="does not match"):
        BlazeFaceDetector(model)
    model.with_name(model.name + ".sha256").write_text(subprocess.run(
        ["sha256sum", str(model)], capture_output=True, text=True).stdout)
    with pytest.raises(ModelLoadError, match="cannot load"):  # matches a sidecar, still not a model
        BlazeFaceDetector(model)
    classifier = sorted((ROOT / "models").glob("*int8.tflite"))[0]  # a real model of the wrong shape
    other = _copy_model(tmp_path, classifier) if classifier.with_name(classifier.name + ".sha256").exists() \
        else shutil.copyfile(classifier, tmp_path / classifier.name)
    Path(f"{other}.sha256").write_text(subprocess.run(["sha256sum", str(other)], capture_output=True,
                                                      text=True).stdout)
    with pytest.raises(ModelLoadError, match="takes input"):
        BlazeFaceDetector(other)


def test_detector_config_keys_and_per_kind_schedule(tmp_path: Path) -> None:
    assert EdgeConfig().detector.kind == "haar" and detect_every(EdgeConfig()) == 3
    config = load_config(None, ["detector.kind=blazeface"])
    assert config.detector.kind == "blazeface" and detect_every(config) == 1
    assert detect_every(load_config(None, ["detector.kind=blazeface", "tracker.detect_every=4"])) == 4
    with pytest.raises(ConfigError, match="detector.kind must be one of haar, blazeface, not 'yolo'"):
        build_config({"detector": {"kind": "yolo"}})
    with pytest.raises(ConfigError, match="detector.min_score"):
        build_config({"detector": {"min_score": 1.5}})
    with pytest.raises(ConfigError, match="detector.align: expected bool"):
        build_config({"detector": {"align": "maybe"}})
    (tmp_path / "m").mkdir()
    relative = build_config({"detector": {"model": "m/x.tflite"}}, tmp_path)
    assert relative.detector.model == str(tmp_path / "m" / "x.tflite")
    with pytest.raises(EdgeError, match="does not exist"):
        build_detector(relative.detector.__class__(kind="blazeface", model=str(tmp_path / "none.tflite")))


# --- the CLI and the daemon ------------------------------------------------------------------------
def run_edge(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.skipif(not MANIFEST.is_file(), reason="shipped model not converted yet")
def test_detect_from_the_repo_with_blazeface(tmp_path: Path) -> None:
    frame, [truth] = face_frame(sample_faces("happy", 1), size=160)
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), frame)
    result = run_edge("detect", "--set", "detector.kind=blazeface", str(photo))
    assert result.returncode == 0, result.stderr
    [face] = json.loads(result.stdout)["faces"]
    assert Box(*face["box"]).iou(Box(*truth)) >= 0.6 and face["label"] in json.loads(MANIFEST.read_text())["labels"]


@pytest.mark.skipif(not MANIFEST.is_file(), reason="shipped model not converted yet")
@pytest.mark.parametrize("problem", ["unknown kind", "corrupt model", "wrong shape"])
def test_bad_detector_settings_stop_validate_config_and_detect_in_one_line(problem: str, tmp_path: Path) -> None:
    model = _copy_model(tmp_path)
    if problem == "corrupt model":
        model.write_bytes(model.read_bytes()[:-10])
    if problem == "wrong shape":
        model = tmp_path / "int8.tflite"
        shutil.copyfile(sorted((ROOT / "models").glob("*int8.tflite"))[0], model)
        Path(f"{model}.sha256").write_text(subprocess.run(["sha256sum", str(model)], capture_output=True,
                                                          text=True).stdout)
    sets = ["--set", f"detector.kind={'blazefast' if problem == 'unknown kind' else 'blazeface'}",
            "--set", f"detector.model={model}", "--set", "source.uri=" + str(tmp_path / "photo.jpg")]
    cv2.imwrite(str(tmp_path / "photo.jpg"), face_frame(sample_faces("happy", 1))[0])
    for args in (["validate-config", *sets], ["detect", *sets[:4], str(tmp_path / "photo.jpg")]):
        result = run_edge(*args)
        assert result.returncode == 2, (args, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("fer-edge: error:")]
        assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.skipif(not MANIFEST.is_file(), reason="shipped model not converted yet")
def test_daemon_runs_the_demo_clip_with_blazeface(tmp_path: Path) -> None:
    clip = ROOT / "models" / "demo" / "demo_clip.mp4"
    events_path = tmp_path / "events.jsonl"
    config = tmp_path / "edge.toml"
    config.write_text(f"[model]\nmanifest = '{MANIFEST}'\n[source]\nuri = '{clip}'\n"
                      f"[detector]\nkind = 'blazeface'\n[events]\npath = '{events_path}'\n"
                      "[http]\nenabled = false\n[daemon]\nmax_frames = 60\n")
    result = run_edge("run", "--config", str(config), timeout=180)
    assert result.returncode == 0, result.stderr
    assert "detector blazeface, full pass every 1 frame(s), faces aligned by their eyes" in result.stderr
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    truth = json.loads(Path(f"{clip}.json").read_text())["ground_truth"]
    assert len(events) >= 50  # frames with faces; the clip shows faces in every frame
    hits = sum(any(Box(*f["box"]).iou(Box(*t["box"])) >= 0.5 for f in e["faces"])
               for e in events for t in truth[e["frame"]]["faces"])
    total = sum(len(truth[e["frame"]]["faces"]) for e in events)
    assert hits / total >= 0.9, f"{hits}/{total}"


@pytest.mark.skipif(not PORTRAITS.is_dir(), reason="PORTRAITS_DIR not set (research licence: never in the repo)")
def test_real_portraits_tilted_30_degrees_are_all_found(detector: BlazeFaceDetector) -> None:
    from benchmarks.detectors import portrait_scene

    scene = portrait_scene(PORTRAITS, angles=(30, -30))
    assert scene is not None and len(scene.frames) >= 200
    found = sum(any(b.iou(truth[0][0]) >= 0.5 for b in detector.detect(to_gray(frame)))
                for frame, truth in zip(scene.frames, scene.truth))
    assert found / len(scene.frames) >= 0.98, f"{found}/{len(scene.frames)}"


@pytest.mark.skipif(not MANIFEST.is_file(), reason="shipped model not converted yet")
def test_pipeline_with_a_lores_plane_aligns_and_labels_the_faces_of_the_main_frame(detector: BlazeFaceDetector) -> None:
    """The daemon's picamera2 path: detection on the half-size grey Y plane, crops from the main frame."""
    from edge.demo_clip import make_background
    from edge.vision.classifier import Classifier
    from edge.vision.pipeline import Pipeline

    face = cv2.imread(str(sample_faces("happy", 1)[0]), cv2.IMREAD_GRAYSCALE)
    frames = {}
    for angle in (0, 25):
        canvas = make_background((640, 480), np.random.default_rng(1))
        paste_tilted(canvas, face, (320, 240), 160, angle)
        frames[angle] = np.clip(canvas, 0, 255).astype(np.uint8)
    frame = frames[25]
    lores = cv2.resize(to_gray(frame), (320, 240), interpolation=cv2.INTER_AREA)
    with Classifier(MANIFEST, "int8") as classifier:
        results = {align: Pipeline(detector, classifier, align=align).process(frame, 0, 0.0, detect_gray=lores)
                   for align in (True, False)}
        [aligned], [plain] = results[True].faces, results[False].faces
        assert aligned.box.iou(Box(240, 160, 160, 160)) >= 0.6 and aligned.box == plain.box
        assert aligned.label in classifier.labels and 0 < aligned.score <= 1
        # the aligned crop is the face turned back upright: closer to the untilted face than the plain crop
        gray = to_gray(frame)
        turned_back = Pipeline(detector, classifier, align=True).crops(gray, [aligned.box])[0].astype(np.float32)
        as_is = Pipeline(detector, classifier).crops(gray, [aligned.box])[0].astype(np.float32)
        upright = crop_face(to_gray(frames[0]), aligned.box, (48, 48), classifier.manifest.preprocessing.crop_margin)
        inner = np.s_[8:40, 8:40]
        error_aligned = np.abs(turned_back - upright)[inner].mean()
        assert error_aligned < 0.6 * np.abs(as_is - upright)[inner].mean()
