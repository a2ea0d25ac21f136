"""A light IoU tracker: stable ids for faces across frames and smoothed probabilities per face.

Emotion scores flicker frame to frame; an exponential moving average per track steadies the
label without hiding real changes for long. Matching is greedy by IoU, which is enough for the
few faces a Pi camera sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.vision.faces import Box


@dataclass
class Track:
    id: int
    box: Box
    probs: np.ndarray
    last_seen: int
    hits: int = 1


class IouTracker:
    def __init__(self, iou_threshold: float = 0.3, max_age: int = 10, smoothing: float = 0.5) -> None:
        self.iou_threshold = iou_threshold
        self.max_age = max_age
        self.smoothing = smoothing
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, frame_index: int, boxes: list[Box], probs: np.ndarray) -> list[Track]:
        """Match ``boxes`` (with their probabilities) to tracks; return the track of each box, in order."""
        pairs = sorted(((box.iou(track.box), i, t) for i, box in enumerate(boxes)
                        for t, track in enumerate(self.tracks)), reverse=True)
        assigned: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, i, t in pairs:
            if overlap < self.iou_threshold:
                break
            if i in assigned or t in used:
                continue
            track = self.tracks[t]
            track.box = boxes[i]
            track.probs = self.smoothing * probs[i] + (1 - self.smoothing) * track.probs
            track.last_seen = frame_index
            track.hits += 1
            assigned[i] = track
            used.add(t)
        for i, box in enumerate(boxes):
            if i not in assigned:
                track = Track(self._next_id, box, probs[i].astype(np.float64), frame_index)
                self._next_id += 1
                self.tracks.append(track)
                assigned[i] = track
        self.tracks = [t for t in self.tracks if frame_index - t.last_seen <= self.max_age]
        return [assigned[i] for i in range(len(boxes))]

    def live_boxes(self, frame_index: int) -> list[Box]:
        """Boxes of tracks seen recently: where to classify on frames the detector skips."""
        return [t.box for t in self.tracks if frame_index - t.last_seen <= self.max_age]

    def reset(self) -> None:
        self.tracks.clear()
