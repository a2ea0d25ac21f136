"""summary.md, and the short table ``analyze`` prints: what was in the video, where the files are."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge.analysis.tracks import TrackBook
from edge.atomic import write_text_atomic


@dataclass(frozen=True)
class AnalysisReport:
    source: str
    out: Path
    frames: int
    expected_frames: int | None  # what the container announced; None for an image folder
    fps: float  # the video's frame rate, which times the rows
    faces: int  # face detections summed over frames
    tracks: int
    wall_seconds: float
    face_shares: dict[str, float]  # share of all face-frames in each emotion
    files: dict[str, Path] = field(default_factory=dict)
    images: bool = False  # a folder of photos: counted as images, with no video time
    skipped: tuple[str, ...] = ()  # the folder's files that could not be read as images

    @property
    def unit(self) -> str:
        return "images" if self.images else "frames"

    def contents(self) -> str:
        """What was read: "120 frames, 8.0 s at 15 fps", or "12 images; 1 unreadable, skipped"."""
        if not self.images:
            return f"{self.frames} frames, {self.video_seconds:.1f} s at {self.fps:g} fps"
        return f"{self.frames} images" + (f"; {len(self.skipped)} unreadable, skipped" if self.skipped else "")

    @property
    def video_seconds(self) -> float:
        return self.frames / self.fps if self.fps else 0.0

    @property
    def speed(self) -> float:
        """Frames analysed per second of wall time."""
        return self.frames / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def truncated(self) -> bool:
        """Fewer frames than announced, beyond the 1% (at least 2) some containers misestimate by."""
        expected = self.expected_frames
        return expected is not None and self.frames < expected - max(2, expected // 100)

    def emotions(self, top: int = 4) -> str:
        """The ``top`` most frequent emotions, and "…" when others were seen too, so the shares shown
        are not taken for all of them (they would not add up to 100%)."""
        ranked = [(label, share) for label, share in sorted(self.face_shares.items(), key=lambda item: -item[1])
                  if share > 0]
        shown = [f"{label} {share:.0%}" for label, share in ranked[:top]] + (["…"] if len(ranked) > top else [])
        return ", ".join(shown) if shown else "none"

    def table(self) -> str:
        """The few lines ``analyze`` (and ``make demo``) print."""
        rows = [("images" if self.images else "video", f"{self.source} ({self.contents()})"),
                ("faces", f"{self.faces} in {self.frames} {self.unit}"),
                ("tracks", str(self.tracks)),
                ("emotions", self.emotions()),
                ("speed", f"{self.speed:.1f} {'images/s' if self.images else 'fps'} ({self.wall_seconds:.1f} s)")]
        names = {"frames": "per frame", "tracks": "per track"}
        rows += [(names.get(name, name), str(path)) for name, path in self.files.items()]
        return "\n".join(f"{name:<10} {value}" for name, value in rows)


def write_summary(path: Path, report: AnalysisReport, book: TrackBook, labels: tuple[str, ...],
                  model: str) -> None:
    lines = [f"# Analysis of {Path(report.source).name}", "",
             f"- source: `{report.source}`",
             f"- {report.contents()}"
             + (f" (the file announced {report.expected_frames}: truncated)" if report.truncated else "")
             + (f": {', '.join(f'`{name}`' for name in report.skipped)}" if report.skipped else ""),
             f"- model: {model}",
             f"- {report.faces} face detections in {report.tracks} tracks; emotions over all faces: "
             f"{report.emotions(top=len(labels))}",
             f"- analysed at {report.speed:.1f} {report.unit} per second ({report.wall_seconds:.1f} s)", "",
             "## Files", "",
             "| file | what |", "|---|---|"]
    what = {"frames.csv": "one row per face per frame: time, track id, box, label, each probability",
            "tracks.csv": "one row per track: first/last seen, duration, dominant emotion, share of each",
            "annotated.mp4": "the video with boxes, labels and track ids drawn",
            "timeline.png": "emotion shares over time, one row per track"}
    for name in what:
        if name in {p.name for p in report.files.values()}:
            lines.append(f"| [{name}]({name}) | {what[name]} |")
    lines += ["", "![timeline](timeline.png)", "", "## Tracks", ""]
    if len(book):
        lines += ["| track | first seen (s) | last seen (s) | duration (s) | dominant | shares |",
                  "|---|---|---|---|---|---|"]
        for track in sorted(book, key=lambda t: t.id):  # by id, the order they appeared in, as in tracks.csv
            shares = ", ".join(f"{label} {share:.0%}" for label, share in
                               sorted(track.shares(labels).items(), key=lambda item: -item[1]) if share >= 0.05)
            lines.append(f"| #{track.id} | {track.first_seen:.2f} | {track.last_seen:.2f} | {track.duration:.2f} "
                         f"| {track.dominant} | {shares} |")
    else:
        lines.append("No faces were found.")
    write_text_atomic(path, "\n".join(lines) + "\n")
