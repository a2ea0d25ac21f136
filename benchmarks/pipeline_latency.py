"""Pipeline latency per stage and end to end, on decoded 640x480 frames, through ``edge.Pipeline``.

It times the very ``Pipeline.process`` the daemon runs (its per-stage timings), plus the decode
measured when the frames were read, and CPU time per frame from ``time.process_time`` (all of the
process's threads). Frames are processed in order, looping the clip, as a camera would deliver them.
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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stages"] = {k: v.to_dict() for k, v in self.stages.items()}
        for key in ("total", "total_with_decode", "cpu_ms_per_frame"):
            data[key] = getattr(self, key).to_dict()
        return data


def build_pipeline(manifest: Path, artifact: str, threads: int) -> Any:
    """The daemon's default detector and tracker settings (edge.config), so we time what ships."""
    from edge.classifier import Classifier
    from edge.config import DetectorSection, TrackerSection
    from edge.faces import FaceDetector
    from edge.pipeline import Pipeline
    from edge.tracker import IouTracker

    d, t = DetectorSection(), TrackerSection()
    detector = FaceDetector(d.cascade, d.scale_factor, d.min_neighbors, d.min_size, d.detect_width, d.max_faces)
    classifier = Classifier(manifest, artifact, threads=threads)
    tracker = IouTracker(t.iou_threshold, t.max_age, t.smoothing) if t.enabled else None
    return Pipeline(detector, classifier, tracker, t.detect_every)


def measure_pipeline(manifest: Path, artifact: str, threads: int, clip: ClipFrames,
                     policy: TimingPolicy) -> tuple[PipelineRow, DetectionScore | None]:
    pipeline = build_pipeline(manifest, artifact, threads)
    frames = clip.frames
    n = len(frames)
    for i in range(policy.warmup):
        pipeline.process(frames[i % n], i, 0.0)
    pipeline.tracker and pipeline.tracker.reset()
    stage_ms: dict[str, list[float]] = {s: [] for s in STAGES if s != "decode"}
    totals: list[float] = []
    with_decode: list[float] = []
    cpu: list[float] = []
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
                      round(faces / index, 3))
    detection = score_detections(clip.truth, found) if clip.truth is not None else None
    return row, detection


def measure_pipelines(manifest: Path, artifacts: list[str], threads: int, clip: ClipFrames, policy: TimingPolicy
                      ) -> tuple[list[PipelineRow], dict[str, DetectionScore], list[str]]:
    """One row per artifact, the clip's detection score with each (recall is the same for all:
    detection does not depend on the classifier; label accuracy does), and why any was skipped."""
    from edge.errors import EdgeError

    rows = []
    detection: dict[str, DetectionScore] = {}
    skipped = []
    for artifact in artifacts:
        try:
            row, score = measure_pipeline(manifest, artifact, threads, clip, policy)
        except EdgeError as exc:  # a runtime missing here (onnxruntime on a Pi): measure the others
            skipped.append(f"pipeline with {artifact} not measured: {exc}")
            continue
        rows.append(row)
        if score is not None:
            detection[artifact] = score
    return rows, detection, skipped


def decode_fps(clip: ClipFrames) -> float:
    return round(1000 / float(np.mean(clip.decode_ms)), 1) if clip.decode_ms else 0.0
