"""frames.csv (one row per face per frame) and tracks.csv (one row per track).

frames.csv is written as the video is read and flushed after every frame, so a run that stops
early (a truncated video, Ctrl-C, a full disk) keeps every row written before it stopped.
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

from edge.analysis.tracks import TrackBook
from edge.atomic import write_atomic

if TYPE_CHECKING:
    from edge.vision.pipeline import FrameResult


class FrameTable:
    """Streams frames.csv: ``time_s, frame, track_id, x, y, w, h, label, score, p_<label>...``."""

    def __init__(self, path: Path, labels: tuple[str, ...]) -> None:
        self.path = path
        self.labels = labels
        self.rows = 0
        self._file: IO[str] = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._writer = csv.writer(self._file)
        self._writer.writerow(["time_s", "frame", "track_id", "x", "y", "w", "h", "label", "score",
                               *(f"p_{label}" for label in labels)])
        self._file.flush()

    def write(self, when: float, frame: int, result: FrameResult) -> None:
        for face in result.faces:
            b = face.box
            self._writer.writerow([f"{when:.3f}", frame, "" if face.track_id is None else face.track_id,
                                   b.x, b.y, b.w, b.h, face.label, f"{face.score:.4f}",
                                   *(f"{face.probs.get(label, 0.0):.4f}" for label in self.labels)])
            self.rows += 1
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> FrameTable:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def write_track_table(path: Path, book: TrackBook, labels: tuple[str, ...]) -> None:
    """tracks.csv: ``track_id, first_seen_s, last_seen_s, duration_s, frames, dominant, share_<label>...``."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["track_id", "first_seen_s", "last_seen_s", "duration_s", "frames", "dominant",
                             *(f"share_{label}" for label in labels)])
            for track in book:
                shares = track.shares(labels)
                writer.writerow([track.id, f"{track.first_seen:.3f}", f"{track.last_seen:.3f}",
                                 f"{track.duration:.3f}", track.frames, track.dominant,
                                 *(f"{shares[label]:.4f}" for label in labels)])

    write_atomic(path, write)
