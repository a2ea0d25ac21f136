"""The 640x480 frames every pipeline measurement uses: the bundled demo clip, decoded and timed.

Decoding is measured here (it is the "capture" stage on a file source) and the decoded frames are
kept, so our pipeline and the `fer` package see exactly the same pixels. The clip's sidecar JSON
gives each frame's true face boxes and labels.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.errors import BenchError
from edge.vision.faces import Box

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = ROOT / "models" / "demo" / "demo_clip.mp4"

Truth = list[list[tuple[Box, str]]]


@dataclass(frozen=True, eq=False)
class ClipFrames:
    path: Path
    frames: tuple[np.ndarray, ...]
    decode_ms: tuple[float, ...]
    truth: Truth | None  # per frame, when the clip has a sidecar

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.frames[0].shape[:2]
        return width, height


def load_truth(clip: Path) -> Truth | None:
    sidecar = Path(f"{clip}.json")
    if not sidecar.is_file():
        return None
    try:
        data = json.loads(sidecar.read_text())
        by_index = {entry["index"]: [(Box(*map(int, face["box"])), str(face["label"])) for face in entry["faces"]]
                    for entry in data["ground_truth"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"{sidecar}: not a demo-clip ground-truth file ({exc})") from None
    return [by_index.get(i, []) for i in range(max(by_index, default=-1) + 1)]


def check_clip(clip: Path) -> None:
    """Fail in one line before any timing when ``clip`` is missing or decodes to no frame.

    The clip is only read after minutes of model timing, so a typo or a non-video file must be
    caught here rather than lose those measurements.
    """
    from edge.errors import EdgeError
    from edge.vision.sources import open_source

    clip = Path(clip)
    if not clip.is_file():
        raise BenchError(f"clip {clip} does not exist")
    try:
        with open_source(str(clip)) as source:
            frame = source.read()
    except EdgeError as exc:
        raise BenchError(f"clip {clip} cannot be read as a video: {exc}") from None
    if frame is None:
        raise BenchError(f"clip {clip} has no frames")


def load_frames(clip: Path, count: int) -> ClipFrames:
    """Up to ``count`` distinct frames (the clip's length at most), each decode timed."""
    from edge.errors import SourceError
    from edge.vision.sources import open_source

    clip = Path(clip)
    if not clip.is_file():
        raise BenchError(f"clip {clip} does not exist")
    frames: list[np.ndarray] = []
    decode: list[float] = []
    try:
        with open_source(str(clip)) as source:
            while len(frames) < count:
                t0 = time.perf_counter_ns()
                frame = source.read()
                t1 = time.perf_counter_ns()
                if frame is None:
                    break
                frames.append(frame.image)
                decode.append((t1 - t0) / 1e6)
    except SourceError as exc:
        raise BenchError(f"cannot decode {clip}: {exc}") from None
    if not frames:
        raise BenchError(f"clip {clip} has no frames")
    truth = load_truth(clip)
    if truth is not None:
        truth = (truth + [[] for _ in range(len(frames))])[: len(frames)]
    return ClipFrames(clip, tuple(frames), tuple(decode), truth)
