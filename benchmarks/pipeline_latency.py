"""Pipeline latency per stage and end to end, on decoded 640x480 frames, through ``edge.Pipeline``.

It times the very ``Pipeline.process`` the daemon runs (its per-stage timings), plus the decode
measured when the frames were read, and CPU time per frame from ``time.process_time`` (all of the
process's threads). Frames are processed in order, looping the clip, as a camera would deliver them.

Two schedules are timed, because they answer different questions. The daemon's defaults run the
full-frame detector only every ``tracker.detect_every``-th frame and look near tracked faces in
between, so their median is mostly a cheap frame: that is what the daemon costs, and the frames
that did run the full detector are summarised separately. Full detection on every frame
(``detect_every=1``) is what the `fer` package does, so only that one is compared with it.

Threads: the classifier gets ``threads``; OpenCV's Haar detection uses OpenCV's own thread pool,
which neither the daemon nor this benchmark sets, so its size (``cv2.getNumThreads()``) is recorded
with every row instead of being passed off as "1 thread".
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.detection import DetectionScore, score_detections
from benchmarks.frames import ClipFrames
from benchmarks.timing import Stats, TimingPolicy, summarize

STAGES = ("decode", "convert", "detect", "crop", "classify", "track")
STAGE_NAMES = {"decode": "decode/capture", "convert": "grey conversion", "detect": "detection",
               "crop": "crop and resize", "classify": "classification", "track": "tracking"}


@dataclass(frozen=True)
class PipelineRow:
    artifact: str
    runtime: str
    threads: int
    frames: int
    stages: dict[str, Stats]
    total: Stats  # Pipeline.process: frame in memory to faces out (what fer's detect_emotions does)
    total_with_decode: Stats
    fps: float  # frames processed per wall-clock second, decode excluded
    cpu_ms_per_frame: Stats
    faces_per_frame: float
    detect_every: int  # the full-frame detector ran on every N-th frame
    opencv_threads: int  # cv2.getNumThreads() while timing: Haar detection's own threads
    detected_frames: int  # frames on which the full-frame detector ran
    total_detected: Stats | None  # Pipeline.process on those frames only

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stages"] = {k: v.to_dict() for k, v in self.stages.items()}
        for key in ("total", "total_with_decode", "cpu_ms_per_frame", "total_detected"):
            value = getattr(self, key)
            data[key] = value.to_dict() if value is not None else None
        return data


def opencv_threads() -> int:
    """OpenCV's thread pool size, which Haar detection uses whatever the classifier's thread count."""
    import cv2

    return int(cv2.getNumThreads())


def build_pipeline(manifest: Path, artifact: str, threads: int, detect_every: int | None = None,
                   kind: str = "haar", model: Path | None = None) -> Any:
    """The daemon's default detector and tracker settings (edge.config) for detector ``kind``, so we
    time what ships.

    ``detect_every`` overrides only the full-detection schedule (1: every frame, as `fer` does).
    """
    import dataclasses

    from edge.config import EdgeConfig, DetectorSection, detect_every as default_every
    from edge.vision.classifier import Classifier
    from edge.vision.detectors import build_detector
    from edge.vision.pipeline import Pipeline
    from edge.vision.tracker import IouTracker

    section = DetectorSection(kind=kind) if model is None else DetectorSection(kind=kind, model=str(model))
    config = dataclasses.replace(EdgeConfig(), detector=section)
    t, d = config.tracker, config.detector
    detector = build_detector(d)
    classifier = Classifier(manifest, artifact, threads=threads)
    tracker = IouTracker(t.iou_threshold, t.max_age, t.smoothing) if t.enabled else None
    return Pipeline(detector, classifier, tracker, default_every(config) if detect_every is None else detect_every,
                    d.align)


def measure_pipeline(manifest: Path, artifact: str, threads: int, clip: ClipFrames, policy: TimingPolicy,
                     detect_every: int | None = None, kind: str = "haar") -> tuple[PipelineRow, DetectionScore | None]:
    pipeline = build_pipeline(manifest, artifact, threads, detect_every, kind)
    frames = clip.frames
    n = len(frames)
    for i in range(policy.warmup):
        pipeline.process(frames[i % n], i, 0.0)
    pipeline.reset()  # the timed pass starts as a stream does: a full detection on its first frame
    stage_ms: dict[str, list[float]] = {s: [] for s in STAGES if s != "decode"}
    totals: list[float] = []
    with_decode: list[float] = []
    cpu: list[float] = []
    detected: list[float] = []  # totals of the frames that ran the full-frame detector
    faces = 0
    found: list[list[tuple[Any, str]]] = []
    start = time.perf_counter_ns()
    index = 0
    while True:
        frame = frames[index % n]
        c0 = time.process_time()
        result = pipeline.process(frame, index, 0.0)
        cpu.append((time.process_time() - c0) * 1000)
        for stage in stage_ms:
            stage_ms[stage].append(result.timings_ms[stage])
        totals.append(result.timings_ms["total"])
        if result.detected:
            detected.append(result.timings_ms["total"])
        with_decode.append(result.timings_ms["total"] + clip.decode_ms[index % n])
        faces += len(result.faces)
        if index < n:
            found.append([(face.box, face.label) for face in result.faces])
        index += 1
        elapsed = (time.perf_counter_ns() - start) / 1e9
        done_pass = index >= n  # the first pass is needed for detection scoring
        if done_pass and index >= policy.min_runs and elapsed >= policy.min_seconds:
            break
        if done_pass and elapsed >= policy.max_seconds:
            break
    wall = (time.perf_counter_ns() - start) / 1e9
    stages = {"decode": summarize(clip.decode_ms), **{s: summarize(v) for s, v in stage_ms.items()}}
    row = PipelineRow(artifact, pipeline.classifier.runtime, threads, index, stages, summarize(totals),
                      summarize(with_decode), round(index / wall, 2) if wall else 0.0, summarize(cpu),
                      round(faces / index, 3), pipeline.detect_every if pipeline.tracker else 1, opencv_threads(),
                      len(detected), summarize(detected) if detected else None)
    detection = score_detections(clip.truth, found) if clip.truth is not None else None
    return row, detection


def measure_pipelines(manifest: Path, artifacts: list[str], threads: int, clip: ClipFrames, policy: TimingPolicy,
                      detect_every: int | None = None
                      ) -> tuple[list[PipelineRow], dict[str, DetectionScore], list[str]]:
    """One row per artifact, the clip's detection score with each (recall is the same for all:
    detection does not depend on the classifier; label accuracy does), and why any was skipped.

    ``detect_every`` None is the daemon's default schedule; 1 runs the full detector on every frame.
    """
    from edge.errors import EdgeError

    rows = []
    detection: dict[str, DetectionScore] = {}
    skipped = []
    for artifact in artifacts:
        try:
            row, score = measure_pipeline(manifest, artifact, threads, clip, policy, detect_every)
        except EdgeError as exc:  # a runtime missing here (onnxruntime on a Pi): measure the others
            every = "" if detect_every is None else f" (full detection every {detect_every} frame(s))"
            skipped.append(f"pipeline with {artifact}{every} not measured: {exc}")
            continue
        rows.append(row)
        if score is not None:
            detection[artifact] = score
    return rows, detection, skipped


def decode_fps(clip: ClipFrames) -> float:
    return round(1000 / float(np.mean(clip.decode_ms)), 1) if clip.decode_ms else 0.0
