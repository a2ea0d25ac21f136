"""``fer-edge analyze``: one pass over a video (or a folder's images) through the daemon's own
pipeline, writing every output as it goes (frames.csv row by row, annotated.mp4 frame by frame)
and the per-track table, chart and summary at the end, including when the video turns out to be
truncated."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.analysis.summary import AnalysisReport
from edge.errors import EdgeError

if TYPE_CHECKING:
    from edge.config import EdgeConfig


class TruncatedVideo(EdgeError):
    """The file ended before the frames its header announced; everything read so far was written."""


def prepare_out(out: Path) -> Path:
    """The output folder, created; EdgeError (one line) if it is a file or cannot be written."""
    if out.exists() and not out.is_dir():
        raise EdgeError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise EdgeError(f"--out {out} is not writable: {exc.strerror or exc}") from None
    return out


def build_pipeline(config: EdgeConfig) -> Any:
    """The daemon's pipeline, with the tracker on whatever the config says (tracks need ids)."""
    from edge.config import detect_every
    from edge.vision.classifier import Classifier
    from edge.vision.detectors import build_detector
    from edge.vision.pipeline import Pipeline
    from edge.vision.tracker import IouTracker

    t = config.tracker
    classifier = Classifier(config.model.manifest, config.model.artifact, threads=config.model.threads)
    return Pipeline(build_detector(config.detector, config.model.threads), classifier,
                    IouTracker(t.iou_threshold, t.max_age, t.smoothing), detect_every(config), config.detector.align)


def analyze(target: Path, out: Path, config: EdgeConfig, progress: bool = True, annotate: bool = True,
            on_report: Callable[[AnalysisReport], None] | None = None) -> list[AnalysisReport]:
    """Analyse a video, each video of a folder (into ``out/<name>/``) or a folder of images.

    ``on_report`` hears of each video as it is done. In a folder, a video that turns out truncated
    or empty does not stop the others; the one EdgeError at the end names them."""
    from edge.analysis.video import VideoFrames, list_inputs

    inputs = list_inputs(target)
    prepare_out(out)
    for source in inputs:  # a file that cannot be opened fails before the model loads, in one line
        with VideoFrames(source):
            pass
    pipeline = build_pipeline(config)
    try:
        reports = []
        failed: list[tuple[Path, EdgeError]] = []
        for source in inputs:
            folder = prepare_out(out / source.stem) if len(inputs) > 1 else out
            pipeline.reset()
            try:
                report = analyze_one(source, folder, pipeline, config, progress, annotate)
            except EdgeError as exc:
                if len(inputs) == 1:
                    raise
                failed.append((source, exc))
                continue
            reports.append(report)
            if on_report is not None:
                on_report(report)
        if len(failed) == 1:
            raise failed[0][1]
        if failed:
            raise EdgeError(f"{len(failed)} of {len(inputs)} videos could not be analysed in full (truncated or "
                            f"empty; their folders cover the frames read): {', '.join(p.name for p, _ in failed)}")
        return reports
    except BrokenPipeError:  # stdout's reader left (`| head`), not the output folder: the CLI stops quietly
        raise
    except OSError as exc:  # a full disk mid-run: the rows written so far stay, flushed
        where = exc.filename or out
        raise EdgeError(f"cannot write {where}: {exc.strerror or exc}") from None
    finally:
        pipeline.classifier.close()


def analyze_one(source: Path, out: Path, pipeline: Any, config: EdgeConfig, progress: bool = True,
                annotate: bool = True) -> AnalysisReport:
    import cv2

    from edge.analysis.chart import Timeline, render_timeline
    from edge.analysis.drawing import draw_faces
    from edge.analysis.progress import Progress
    from edge.analysis.summary import write_summary
    from edge.analysis.tables import FrameTable, write_track_table
    from edge.analysis.tracks import TrackBook
    from edge.analysis.video import VideoFrames

    labels = tuple(pipeline.labels)
    timeline = Timeline(labels)
    label_frames = dict.fromkeys(labels, 0)
    files = {"frames": out / "frames.csv", "tracks": out / "tracks.csv"}
    if annotate:
        files["annotated"] = out / "annotated.mp4"
    files.update(timeline=out / "timeline.png", summary=out / "summary.md")
    started = time.monotonic()
    frames = faces = 0
    writer = None
    with VideoFrames(source, config.source.fps) as video, FrameTable(files["frames"], labels) as table:
        frame_seconds = 1.0 / video.fps
        book = TrackBook(frame_seconds)
        bar = Progress(video.expected, f"analyze {source.name}") if progress else None
        try:
            for index, image in enumerate(video):
                when = index * frame_seconds
                if video.stills:
                    # photos are unrelated: the detector runs on every one (the daemon's "full pass every
                    # Nth frame" would skip faces depending on file order) and no track, nor its smoothed
                    # probabilities, carries over; ids keep counting up, so each face is a track of its own
                    pipeline.reset()
                result = pipeline.process(image, index, when)
                table.write(when, index, result)
                for face in result.faces:
                    if face.track_id is not None:
                        book.add(face.track_id, when, face.label)
                        timeline.add(face.track_id, when, face.label, frame_seconds)
                    label_frames[face.label] = label_frames.get(face.label, 0) + 1
                faces += len(result.faces)
                frames += 1
                if annotate:
                    if writer is None:
                        size = (image.shape[1], image.shape[0])
                        writer = _video_writer(files["annotated"], size[0], size[1], video.fps)
                    drawn = draw_faces(image, result, labels, caption=f"{when:6.2f} s  frame {index}")
                    if (drawn.shape[1], drawn.shape[0]) != size:  # images of a folder may differ in size
                        drawn = cv2.resize(drawn, size, interpolation=cv2.INTER_AREA)
                    writer.write(drawn)
                if bar is not None:
                    bar.update(frames)
        finally:
            if writer is not None:
                writer.release()
            if bar is not None:
                bar.finish()
    if annotate and writer is None:
        files.pop("annotated")  # no frame at all: nothing to encode
    write_track_table(files["tracks"], book, labels)
    span = max(frames * frame_seconds, frame_seconds)
    chart = render_timeline(timeline, 0.0, span, title=f"{source.name}: emotion shares per track over time")
    if not cv2.imwrite(str(files["timeline"]), chart):
        raise EdgeError(f"cannot write {files['timeline']}")
    total = sum(label_frames.values())
    report = AnalysisReport(str(source), out, frames, video.expected, video.fps, faces, len(book),
                            time.monotonic() - started,
                            {label: (count / total if total else 0.0) for label, count in label_frames.items()},
                            files, images=video.stills, skipped=tuple(path.name for path in video.skipped))
    manifest = pipeline.classifier.manifest
    write_summary(files["summary"], report, book, labels, f"{manifest.name} ({pipeline.classifier.runtime})")
    if report.truncated:
        raise TruncatedVideo(f"{source} is truncated: read {frames} of the {video.expected} frames it announces; "
                             f"the outputs in {out} cover those {frames}")
    if frames == 0:
        raise EdgeError(f"{source}: none of its {len(video.skipped)} images could be read" if video.stills
                        else f"{source}: no frame could be decoded")
    return report


def _video_writer(path: Path, width: int, height: int, fps: float) -> Any:
    import cv2

    # a full disk makes OpenCV warn once per frame on stderr; the error that ends the run is ours
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        writer.release()
        raise EdgeError(f"cannot write {path}: OpenCV has no MPEG-4 encoder here")
    return writer
