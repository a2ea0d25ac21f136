"""Frame in, faces and emotions out: detect, crop, classify every face in one batch, track.

Timings per stage are kept on every result so the daemon's metrics and the benchmarks measure
the same code users run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.vision.blazeface import eye_angle
from edge.vision.classifier import Classifier
from edge.vision.faces import Box, Detector, crop_face, to_gray
from edge.vision.tracker import IouTracker


@dataclass(frozen=True)
class Face:
    box: Box
    label: str
    score: float
    probs: dict[str, float]
    track_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"box": self.box.to_list(), "label": self.label, "score": round(self.score, 4),
                                "probs": {k: round(v, 4) for k, v in self.probs.items()}}
        if self.track_id is not None:
            data["id"] = self.track_id
        return data


@dataclass(frozen=True)
class FrameResult:
    index: int
    timestamp: float
    faces: tuple[Face, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    detected: bool = True  # False when the detector was skipped and boxes came from tracks

    def to_event(self, source: str = "") -> dict[str, Any]:
        event: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.timestamp)) + f".{int(self.timestamp % 1 * 1000):03d}Z",
            "frame": self.index, "faces": [face.to_dict() for face in self.faces],
        }
        if source:
            event["source"] = source
        return event


class Pipeline:
    def __init__(self, detector: Detector, classifier: Classifier, tracker: IouTracker | None = None,
                 detect_every: int = 1, align: bool = False) -> None:
        self.detector = detector
        self.align = align  # turn faces upright by their eye keypoints (boxes without keypoints: as they are)
        self.classifier = classifier
        self.tracker = tracker
        self.detect_every = max(1, detect_every)
        pre = classifier.manifest.preprocessing
        self.size = pre.size
        self.margin = pre.crop_margin
        self.interpolation = pre.interpolation
        self.labels = classifier.labels
        self._frames = 0

    def reset(self) -> None:
        """Forget tracks and start the schedule over, so the next frame gets a full detector pass."""
        if self.tracker is not None:
            self.tracker.reset()
        self._frames = 0

    def crops(self, gray: np.ndarray, boxes: list[Box]) -> np.ndarray:
        width, height = self.size
        if not boxes:
            return np.zeros((0, height, width), dtype=np.uint8)
        return np.stack([crop_face(gray, box, self.size, self.margin, self.interpolation,
                                   eye_angle(box.keypoints) if self.align else None) for box in boxes])

    def process(self, image: np.ndarray, index: int | None = None, timestamp: float | None = None,
                detect_gray: np.ndarray | None = None) -> FrameResult:
        """All faces of one BGR (or grey) frame. ``detect_gray`` is an optional smaller plane for detection."""
        # The schedule and track ages count frames processed here, not the source's frame numbers: a
        # live camera drops frames, and on numbers like 1, 4, 7 "index % 3" would never detect.
        step = self._frames
        self._frames += 1
        index = step if index is None else index
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        gray = to_gray(image)
        t1 = time.perf_counter()
        timings["convert"] = (t1 - t0) * 1000
        plane = detect_gray if detect_gray is not None else gray
        detect_now = self.tracker is None or step % self.detect_every == 0
        if detect_now:
            boxes = self.detector.detect(plane, gray.shape[:2])
        else:  # between full passes: look again only around the faces being tracked
            assert self.tracker is not None
            boxes = []
            for known in self.tracker.live_boxes(step):
                box = self.detector.detect_near(plane, known, gray.shape[:2])
                if box is not None and all(box.iou(other) < 0.5 for other in boxes):
                    boxes.append(box)
        t2 = time.perf_counter()
        timings["detect"] = (t2 - t1) * 1000
        batch = self.crops(gray, boxes)
        t3 = time.perf_counter()
        timings["crop"] = (t3 - t2) * 1000
        probs = self.classifier.predict(batch) if len(boxes) else np.zeros((0, len(self.labels)), np.float32)
        t4 = time.perf_counter()
        timings["classify"] = (t4 - t3) * 1000
        track_ids: list[int | None] = [None] * len(boxes)
        if self.tracker is not None:
            tracks = self.tracker.update(step, boxes, probs)
            probs = np.stack([t.probs for t in tracks]) if tracks else probs
            track_ids = [t.id for t in tracks]
        t5 = time.perf_counter()
        timings["track"] = (t5 - t4) * 1000
        timings["total"] = (t5 - t0) * 1000
        faces = []
        for box, p, track_id in zip(boxes, probs, track_ids):
            best = int(np.argmax(p))
            faces.append(Face(box, self.labels[best], float(p[best]),
                              {label: float(v) for label, v in zip(self.labels, p)}, track_id))
        return FrameResult(index, time.time() if timestamp is None else timestamp, tuple(faces), timings,
                           detect_now)


def annotate(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """A copy of the frame with boxes and labels drawn, for `detect --annotate` and opt-in snapshots."""
    import cv2

    canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    for face in result.faces:
        b = face.box
        cv2.rectangle(canvas, (b.x, b.y), (b.x + b.w, b.y + b.h), (0, 200, 255), 2)
        text = f"{face.label} {face.score:.2f}" + (f" #{face.track_id}" if face.track_id is not None else "")
        cv2.putText(canvas, text, (b.x, max(12, b.y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 200, 255), 1,
                    cv2.LINE_AA)
    return canvas
