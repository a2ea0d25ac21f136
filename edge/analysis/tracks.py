"""Per-track bookkeeping: when a face was first and last seen and how long it spent in each emotion.

``analyze`` summarises a whole video with it, and the daemon's track events report a face that
leaves with the same numbers, so both say the same thing about the same face.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrackStats:
    """One face across frames. Time is counted in frames, each worth ``frame_seconds`` (a video's
    1/fps, or the gap between a live camera's frames), so a dropped frame does not shorten a face."""

    id: int
    first_seen: float
    last_seen: float
    frames: int = 0
    seconds_by_label: dict[str, float] = field(default_factory=dict)

    def add(self, when: float, label: str, frame_seconds: float) -> None:
        self.last_seen = max(self.last_seen, when)
        self.frames += 1
        self.seconds_by_label[label] = self.seconds_by_label.get(label, 0.0) + frame_seconds

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame the face was in, that last frame included."""
        return self.last_seen - self.first_seen + self._frame_seconds()

    def _frame_seconds(self) -> float:
        total = sum(self.seconds_by_label.values())
        return total / self.frames if self.frames else 0.0

    def shares(self, labels: tuple[str, ...] | list[str]) -> dict[str, float]:
        """Fraction of the face's frames in each label (every label present, summing to 1)."""
        total = sum(self.seconds_by_label.values())
        return {label: (self.seconds_by_label.get(label, 0.0) / total if total else 0.0) for label in labels}

    @property
    def dominant(self) -> str:
        return max(self.seconds_by_label, key=lambda label: self.seconds_by_label[label]) \
            if self.seconds_by_label else ""


class TrackBook:
    """Every track of a run, by id, in order of appearance."""

    def __init__(self) -> None:
        self.tracks: dict[int, TrackStats] = {}

    def add(self, track_id: int, when: float, label: str, frame_seconds: float) -> TrackStats:
        stats = self.tracks.get(track_id)
        if stats is None:
            stats = self.tracks[track_id] = TrackStats(track_id, when, when)
        stats.add(when, label, frame_seconds)
        return stats

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.tracks.values())

    def __len__(self) -> int:
        return len(self.tracks)
