"""Repeated timing with a warm-up and a stop rule, summarised as percentiles with their spread.

One rule for every measurement (models, pipeline, peer) so figures from different parts of a
report were taken the same way: warm up, then run until both a minimum count and a minimum
time are reached (bounded by a maximum time), and report p50/p95/p99 with IQR and min/max.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TimingPolicy:
    warmup: int = 10
    min_runs: int = 100
    min_seconds: float = 1.0
    max_seconds: float = 10.0
    max_runs: int = 1_000_000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


QUICK_MODEL = TimingPolicy(warmup=1, min_runs=3, min_seconds=0.0, max_seconds=0.2)
QUICK_PIPELINE = TimingPolicy(warmup=1, min_runs=1, min_seconds=0.0, max_seconds=0.5)


@dataclass(frozen=True)
class Stats:
    """Milliseconds. ``iqr`` is p75 - p25: the spread shown beside every median."""

    runs: int
    p50: float
    p95: float
    p99: float
    mean: float
    iqr: float
    min: float
    max: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Stats":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def summarize(samples_ms: Sequence[float]) -> Stats:
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no samples to summarise")
    p25, p50, p75, p95, p99 = np.percentile(values, [25, 50, 75, 95, 99])
    return Stats(int(values.size), float(p50), float(p95), float(p99), float(values.mean()), float(p75 - p25),
                 float(values.min()), float(values.max()))


def measure(fn: Callable[[], object], policy: TimingPolicy) -> list[float]:
    """Samples in ms of ``fn()``: ``policy.warmup`` discarded calls, then the stop rule."""
    for _ in range(policy.warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter_ns()
    while True:
        t0 = time.perf_counter_ns()
        fn()
        t1 = time.perf_counter_ns()
        samples.append((t1 - t0) / 1e6)
        elapsed = (t1 - start) / 1e9
        if len(samples) >= policy.max_runs:
            break
        if len(samples) >= policy.min_runs and elapsed >= policy.min_seconds:
            break
        if elapsed >= policy.max_seconds and len(samples) >= min(policy.min_runs, 3):
            break
    return samples
