"""Per-track bookkeeping: when a face was first and last seen and how often it showed each emotion.

``analyze`` summarises a whole video with it, and the daemon's track events report a face that
leaves with the same numbers, so both say the same thing about the same face.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class TrackStats:
    """One face across frames. Shares count the frames it was seen in, so they do not depend on
    the frame rate; ``frame_seconds`` (a video's 1/fps) makes the last frame count in the duration."""

    id: int
    first_seen: float
    last_seen: float
    frame_seconds: float = 0.0
    frames: int = 0
    frames_by_label: dict[str, int] = field(default_factory=dict)

    def add(self, when: float, label: str) -> None:
        self.last_seen = max(self.last_seen, when)
        self.frames += 1
        self.frames_by_label[label] = self.frames_by_label.get(label, 0) + 1

    @property
    def duration(self) -> float:
        """Seconds from the first frame the face was in to the end of the last one."""
        return self.last_seen - self.first_seen + self.frame_seconds

    def shares(self, labels: tuple[str, ...] | list[str]) -> dict[str, float]:
        """Fraction of the face's frames in each label (every label present, summing to 1)."""
        return {label: (self.frames_by_label.get(label, 0) / self.frames if self.frames else 0.0)
                for label in labels}

    @property
    def dominant(self) -> str:
        """The most frequent label; a tie goes to the one seen first."""
        return max(self.frames_by_label, key=lambda label: self.frames_by_label[label]) \
            if self.frames_by_label else ""


class TrackBook:
    """Every track of a run, by id, in order of appearance."""

    def __init__(self, frame_seconds: float = 0.0) -> None:
        self.frame_seconds = frame_seconds
        self.tracks: dict[int, TrackStats] = {}

    def add(self, track_id: int, when: float, label: str) -> TrackStats:
        stats = self.tracks.get(track_id)
        if stats is None:
            stats = self.tracks[track_id] = TrackStats(track_id, when, when, self.frame_seconds)
        stats.add(when, label)
        return stats

    def __iter__(self) -> Iterator[TrackStats]:
        return iter(self.tracks.values())

    def __len__(self) -> int:
        return len(self.tracks)
