"""The pipeline between full detector passes: tracked faces are re-found, vanished ones are not reported."""

from __future__ import annotations

import pytest

from edge.vision.classifier import Classifier
from edge.vision.faces import FaceDetector
from edge.vision.pipeline import Pipeline
from edge.vision.tracker import IouTracker
from tests.edge_helpers import CASCADE, MANIFEST, SAMPLE, face_frame

pytestmark = pytest.mark.skipif(not MANIFEST.is_file(), reason="shipped model not converted yet")


def test_faces_keep_their_ids_between_full_detections_and_leave_when_gone() -> None:
    path = sorted((SAMPLE / "test" / "happy").glob("*.jpg"))[0]
    pipeline = Pipeline(FaceDetector(CASCADE), Classifier(MANIFEST), IouTracker(max_age=10), detect_every=3)
    results = []
    for index in range(3):
        frame, _ = face_frame([path], size=160 + 4 * index, seed=index)
        results.append(pipeline.process(frame, index))
    assert [r.detected for r in results] == [True, False, False]
    assert all(len(r.faces) == 1 for r in results)
    assert len({r.faces[0].track_id for r in results}) == 1
    frame, _ = face_frame([path], size=160)
    assert pipeline.process(frame, 3).detected  # the fourth frame processed: a full pass again
    empty, _ = face_frame([], size=160)
    gone = pipeline.process(empty, 4)  # not a full pass, and nothing is where the face was
    assert not gone.detected and gone.faces == ()


def test_dropped_frames_do_not_starve_the_full_detector() -> None:
    """A live camera drops frames, so the numbers that reach the pipeline skip (here 1, 4, 7, ...):
    every third frame processed is still a full pass, and the face is found on each one."""
    path = sorted((SAMPLE / "test" / "happy").glob("*.jpg"))[0]
    pipeline = Pipeline(FaceDetector(CASCADE), Classifier(MANIFEST), IouTracker(max_age=10), detect_every=3)
    frame, _ = face_frame([path], size=160)
    results = [pipeline.process(frame, index) for index in range(1, 19, 3)]
    assert [r.detected for r in results] == [True, False, False, True, False, False]
    assert all(len(r.faces) == 1 for r in results)
    assert [r.index for r in results] == list(range(1, 19, 3))  # events keep the source's numbers


def test_every_frame_runs_the_full_detector_without_a_tracker() -> None:
    path = sorted((SAMPLE / "test" / "happy").glob("*.jpg"))[0]
    pipeline = Pipeline(FaceDetector(CASCADE), Classifier(MANIFEST), None, detect_every=3)
    frame, _ = face_frame([path], size=160)
    assert all(pipeline.process(frame, i).detected for i in range(3))
