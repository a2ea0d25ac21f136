"""Bytes per hour of events in each ``[events] mode``, measured on the demo clip played in a loop.

The daemon's own pipeline and event code run over the clip; frames are timed at the clip's frame
rate, as a camera delivering it would, and the bytes are the JSON Lines the log would get. The
figure in docs/events.md comes from:

    python -m edge.service.event_volume --loops 30
"""

from __future__ import annotations

import sys
from pathlib import Path

from edge.cli import ArgumentParser
from edge.errors import EdgeError, ExitStatus

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "models" / "demo" / "demo_clip.mp4"
DEMO_CONFIG = ROOT / "edge" / "configs" / "demo.toml"


def measure(clip: Path, loops: int, config_path: Path | None = DEMO_CONFIG) -> dict[str, dict[str, float]]:
    """Per mode: events, bytes, and bytes per hour of camera time."""
    import cv2

    from edge.analysis.run import build_pipeline
    from edge.config import load_config
    from edge.service.events import dumps
    from edge.service.track_events import FrameEvents, TrackEvents

    config = load_config(config_path)
    capture = cv2.VideoCapture(str(clip))
    if not capture.isOpened():
        raise EdgeError(f"cannot open video {clip}")
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 15.0)
    images = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        images.append(image)
    capture.release()
    if not images:
        raise EdgeError(f"no frame could be decoded from {clip}")
    pipeline = build_pipeline(config)
    e = config.events
    sources = {"frames": FrameEvents(e.only_with_faces),
               "tracks": TrackEvents(tuple(pipeline.labels), config.tracker.max_age, e.change_frames,
                                     e.change_margin)}
    totals = {mode: {"events": 0, "bytes": 0} for mode in sources}
    name = clip.name
    frames = 0
    try:
        for _ in range(loops):
            for image in images:
                result = pipeline.process(image, frames, frames / fps)
                frames += 1
                for mode, source in sources.items():
                    for event in source.events(result, name):
                        totals[mode]["events"] += 1
                        totals[mode]["bytes"] += len(dumps(event).encode()) + 1
    finally:
        pipeline.classifier.close()
    for mode, source in sources.items():
        for event in source.finish():
            totals[mode]["events"] += 1
            totals[mode]["bytes"] += len(dumps(event).encode()) + 1
    hours = frames / fps / 3600
    return {mode: {**counts, "seconds": frames / fps, "bytes_per_hour": counts["bytes"] / hours}
            for mode, counts in totals.items()}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m edge.service.event_volume", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--loops", type=int, default=30, help="times the clip is played (default 30)")
    args = parser.parse_args(argv)
    if args.loops < 1:
        parser.error("--loops must be >= 1")
    try:
        results = measure(args.clip, args.loops)
    except EdgeError as exc:
        print(f"event_volume: error: {exc}", file=sys.stderr)
        return ExitStatus.BAD_INPUT
    seconds = next(iter(results.values()))["seconds"]
    print(f"{args.clip.name} looped {args.loops}x ({seconds:.0f} s of camera time)")
    print(f"{'mode':<8} {'events':>8} {'bytes':>10} {'MB/hour':>9} {'MB/day':>8}")
    for mode, r in results.items():
        print(f"{mode:<8} {r['events']:>8} {r['bytes']:>10} {r['bytes_per_hour'] / 1e6:>9.2f} "
              f"{r['bytes_per_hour'] * 24 / 1e6:>8.1f}")
    return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
