"""Memory over a long run: the pipeline over N frames of the demo clip, looped, sampling RSS.

A daemon that leaks a few kB per frame is dead in a week; 10,000 frames (11 minutes at 15 fps)
shows such a slope. RSS is sampled every ``every`` frames from /proc; the verdict fits a line
to the samples after a warm-up (the first 10 % of the run, while caches and allocators settle)
and calls memory flat when the fitted growth over the whole run stays under ``FLAT_MB``.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.errors import BenchError
from benchmarks.model_worker import rss_mb

FLAT_MB = 5.0
WARMUP_SHARE = 0.1


@dataclass(frozen=True)
class SoakResult:
    frames: int
    every: int
    artifact: str
    threads: int
    seconds: float
    samples: tuple[tuple[int, float], ...]  # (frame, RSS MB)
    start_mb: float
    end_mb: float
    max_mb: float
    slope_kb_per_1000: float
    growth_mb: float  # fitted growth over the run, after the warm-up
    flat: bool
    p50_ms: float
    # which model and when: a soak is its own run, and may only be reported beside the same model's figures
    artifact_sha256: str = ""
    manifest: str = ""
    measured_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "every": self.every, "artifact": self.artifact, "threads": self.threads,
                "artifact_sha256": self.artifact_sha256, "manifest": self.manifest, "measured_at": self.measured_at,
                "seconds": round(self.seconds, 1), "samples": [list(s) for s in self.samples],
                "start_mb": round(self.start_mb, 2), "warm_mb": round(warm_rss(self.samples, self.frames), 2),
                "end_mb": round(self.end_mb, 2), "max_mb": round(self.max_mb, 2),
                "slope_kb_per_1000_frames": round(self.slope_kb_per_1000, 2), "growth_mb": round(self.growth_mb, 3),
                "flat": self.flat, "flat_threshold_mb": FLAT_MB, "p50_ms": round(self.p50_ms, 3)}


def warm_rss(samples: list[list[float]] | tuple[tuple[int, float], ...], frames: int) -> float:
    """RSS at the first sample after the warm-up: the level 'flat' is judged against."""
    kept = [s[1] for s in samples if s[0] >= frames * WARMUP_SHARE] or [samples[-1][1]]
    return float(kept[0])


def fit_growth(samples: list[tuple[int, float]], frames: int) -> tuple[float, float]:
    """(slope in kB per 1000 frames, fitted growth in MB over ``frames``) after the warm-up share."""
    kept = [s for s in samples if s[0] >= frames * WARMUP_SHARE] or samples
    if len(kept) < 2:
        return 0.0, 0.0
    x = np.array([s[0] for s in kept], dtype=np.float64)
    y = np.array([s[1] for s in kept], dtype=np.float64)
    slope = float(np.polyfit(x, y, 1)[0])  # MB per frame
    return slope * 1000 * 1024, slope * frames


def run_soak(manifest: Path, clip: Path, frames: int, every: int = 100, artifact: str = "int8", threads: int = 1,
             progress: Any = None) -> SoakResult:
    from edge.vision.sources import open_source

    from benchmarks.pipeline_latency import build_pipeline

    if frames < 1 or every < 1:
        raise BenchError("soak needs --frames >= 1 and --every >= 1")
    if not Path(clip).is_file():
        raise BenchError(f"clip {clip} does not exist")
    pipeline = build_pipeline(manifest, artifact, threads)
    sha256 = pipeline.classifier.manifest.artifact(artifact).sha256
    measured_at = dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")
    samples: list[tuple[int, float]] = [(0, rss_mb())]
    totals: list[float] = []
    start = time.perf_counter()
    with open_source(str(clip), loop=True) as source:
        for index in range(frames):
            frame = source.read()
            if frame is None:
                raise BenchError(f"clip {clip} stopped delivering frames at {index}")
            totals.append(pipeline.process(frame.image, index, frame.timestamp).timings_ms["total"])
            if (index + 1) % every == 0 or index + 1 == frames:
                samples.append((index + 1, rss_mb()))
                if progress is not None:
                    progress(index + 1, samples[-1][1])
    slope, growth = fit_growth(samples, frames)
    values = [s[1] for s in samples]
    return SoakResult(frames, every, artifact, threads, time.perf_counter() - start, tuple(samples), values[0],
                      values[-1], max(values), slope, growth, abs(growth) < FLAT_MB, float(np.median(totals)), sha256,
                      str(manifest), measured_at)
