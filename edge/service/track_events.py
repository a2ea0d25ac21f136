"""What the daemon writes per frame: the ``[events] mode``.

``frames`` (the default) writes one event per frame with faces, as before: complete, and about
15 lines a second per camera. ``tracks`` writes what people ask of a camera instead, three kinds
of event per face:

- ``appear``: a new track, with its box and first label
- ``change``: its smoothed emotion changed, with hysteresis so flicker does not spam: the new
  label must lead for ``change_frames`` frames in a row, by ``change_margin`` of probability
- ``leave``: the track ended (not seen for ``tracker.max_age`` frames, or the daemon stopped), with
  its duration and the share of its time in each emotion

Both kinds carry a ``type`` (``frame``, ``appear``, ``change``, ``leave``); the schema is in
docs/events.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge.analysis.tracks import TrackStats

if TYPE_CHECKING:
    from edge.vision.pipeline import Face, FrameResult

MODES = ("frames", "tracks")


def iso_time(ts: float) -> str:
    """UTC with milliseconds, as frame events write it (rounded, so 1.3 s stays .300)."""
    seconds, millis = divmod(int(round(ts * 1000)), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class FrameEvents:
    """``mode = "frames"``: one event per frame (only frames with faces unless told otherwise)."""

    def __init__(self, only_with_faces: bool = True) -> None:
        self.only_with_faces = only_with_faces

    def events(self, result: FrameResult, source: str = "") -> list[dict[str, Any]]:
        if not result.faces and self.only_with_faces:
            return []
        return [{"type": "frame", **result.to_event(source)}]

    def finish(self) -> list[dict[str, Any]]:
        return []


@dataclass
class _Track:
    stats: TrackStats
    label: str  # the emotion last reported for it
    last_step: int
    candidate: str = ""
    streak: int = 0


class TrackEvents:
    """``mode = "tracks"``: appear / change / leave per tracked face."""

    def __init__(self, labels: tuple[str, ...] | list[str], max_age: int = 10, change_frames: int = 5,
                 change_margin: float = 0.1) -> None:
        self.labels = tuple(labels)
        self.max_age = max_age
        self.change_frames = change_frames
        self.change_margin = change_margin
        self.tracks: dict[int, _Track] = {}
        self._step = -1
        self._source = ""

    def events(self, result: FrameResult, source: str = "") -> list[dict[str, Any]]:
        self._step += 1
        self._source = source or self._source
        out: list[dict[str, Any]] = []
        for face in result.faces:
            if face.track_id is None:
                continue
            track = self.tracks.get(face.track_id)
            if track is None:
                stats = TrackStats(face.track_id, result.timestamp, result.timestamp)
                stats.add(result.timestamp, face.label)
                self.tracks[face.track_id] = _Track(stats, face.label, self._step)
                out.append(self._event("appear", result.timestamp, face.track_id, frame=result.index,
                                       box=face.box.to_list(), label=face.label, score=round(face.score, 4)))
                continue
            track.stats.add(result.timestamp, face.label)
            track.last_step = self._step
            change = self._change(track, face)
            if change is not None:
                out.append(self._event("change", result.timestamp, face.track_id, frame=result.index,
                                       **change))
        for track_id in [tid for tid, t in self.tracks.items() if self._step - t.last_step > self.max_age]:
            out.append(self._leave(self.tracks.pop(track_id)))
        return out

    def finish(self) -> list[dict[str, Any]]:
        """Every track still open ends now (the daemon stops, the stream ended, a reload)."""
        out = [self._leave(track) for track in self.tracks.values()]
        self.tracks.clear()
        return out

    def _change(self, track: _Track, face: Face) -> dict[str, Any] | None:
        """Hysteresis: a new label must lead ``change_frames`` frames in a row, each time by at least
        ``change_margin`` over the label last reported."""
        leads = face.label != track.label and \
            face.probs.get(face.label, 0.0) - face.probs.get(track.label, 0.0) >= self.change_margin
        if not leads:
            track.candidate, track.streak = "", 0
            return None
        if face.label != track.candidate:
            track.candidate, track.streak = face.label, 0
        track.streak += 1
        if track.streak < self.change_frames:
            return None
        previous, track.label = track.label, face.label
        track.candidate, track.streak = "", 0
        return {"from": previous, "to": face.label, "score": round(face.score, 4)}

    def _leave(self, track: _Track) -> dict[str, Any]:
        stats = track.stats
        return self._event("leave", stats.last_seen, stats.id, first_seen=iso_time(stats.first_seen),
                           duration_s=round(stats.last_seen - stats.first_seen, 3), frames=stats.frames,
                           label=stats.dominant,
                           shares={label: round(share, 4) for label, share in stats.shares(self.labels).items()})

    def _event(self, kind: str, ts: float, track_id: int, **fields: Any) -> dict[str, Any]:
        event: dict[str, Any] = {"type": kind, "ts": iso_time(ts), "id": track_id, **fields}
        if self._source:
            event["source"] = self._source
        return event
