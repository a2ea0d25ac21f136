"""Faces keep their id across frames, probabilities are smoothed per face, stale tracks expire."""

from __future__ import annotations

import numpy as np

from edge.vision.faces import Box
from edge.vision.tracker import IouTracker


def probs(index: int, n: int = 3) -> np.ndarray:
    p = np.zeros(n)
    p[index] = 1.0
    return p


def test_ids_are_stable_while_faces_move_a_little() -> None:
    tracker = IouTracker(iou_threshold=0.3, max_age=2, smoothing=0.5)
    a, b = Box(10, 10, 50, 50), Box(200, 10, 50, 50)
    first = tracker.update(0, [a, b], np.stack([probs(0), probs(1)]))
    second = tracker.update(1, [Box(205, 12, 50, 50), Box(13, 11, 50, 50)], np.stack([probs(1), probs(0)]))
    assert [t.id for t in first] == [1, 2]
    assert [t.id for t in second] == [2, 1]


def test_probabilities_are_smoothed() -> None:
    tracker = IouTracker(smoothing=0.5)
    box = Box(0, 0, 40, 40)
    tracker.update(0, [box], probs(0)[None])
    [track] = tracker.update(1, [box], probs(2)[None])
    assert np.allclose(track.probs, [0.5, 0, 0.5])


def test_tracks_expire_after_max_age_and_new_faces_get_new_ids() -> None:
    tracker = IouTracker(max_age=1)
    tracker.update(0, [Box(0, 0, 40, 40)], probs(0)[None])
    tracker.update(1, [], np.zeros((0, 3)))
    assert tracker.live_boxes(1)
    tracker.update(3, [], np.zeros((0, 3)))
    assert not tracker.tracks
    [track] = tracker.update(4, [Box(0, 0, 40, 40)], probs(1)[None])
    assert track.id == 2
