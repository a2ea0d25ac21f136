"""``fer-edge``: ``detect`` images, ``run`` the camera daemon, ``validate-config``.

Parsing and exit codes only; library errors become one line on stderr.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from enum import IntEnum
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm"}


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    BAD_INPUT = 2
    INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fer-edge", description="Facial emotion recognition on the edge.")
    sub = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="edge.toml (see edge/configs/)")
    common.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config key (repeatable)")
    common.add_argument("--manifest", help="model manifest (default: the shipped models/manifest.json)")
    common.add_argument("--artifact", help="artifact in the manifest: int8 (default), float32, onnx, ...")
    common.add_argument("--threads", type=int, help="inference threads")

    detect = sub.add_parser("detect", parents=[common], help="detect and classify faces in images, one JSON line each")
    detect.add_argument("images", nargs="+", help="image files, folders or globs")
    detect.add_argument("--annotate", type=Path, metavar="DIR", help="write annotated copies into DIR")

    run = sub.add_parser("run", parents=[common], help="run the headless camera daemon")
    run.add_argument("--source", help="override source.uri (picamera2, 0, /dev/video0, file, URL, folder)")
    run.add_argument("--max-frames", type=int, help="stop after N frames")
    run.add_argument("--events", help="override events.path")
    run.add_argument("--print-events", action="store_true", help="echo every event to stdout")

    validate = sub.add_parser("validate-config", help="check a config file and exit")
    validate.add_argument("config_file", type=Path, nargs="?", help="edge.toml (or use --config)")
    validate.add_argument("--config", dest="config_flag", type=Path, help=argparse.SUPPRESS)
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    validate.add_argument("--print", action="store_true", help="print the resolved config")
    return parser


def _overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.overrides)
    for key, attr in (("model.manifest", "manifest"), ("model.artifact", "artifact"), ("model.threads", "threads"),
                      ("source.uri", "source"), ("daemon.max_frames", "max_frames"), ("events.path", "events")):
        value = getattr(args, attr, None)
        if value is not None:
            overrides.append(f"{key}={value}")
    if getattr(args, "print_events", False):
        overrides.append("events.print=true")
    return overrides


def _expand(targets: list[str]) -> list[str]:
    paths: list[str] = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            paths.extend(str(p) for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES)
        elif any(ch in target for ch in "*?[") and not path.exists():
            paths.extend(sorted(glob.glob(target)))
        else:
            paths.append(target)
    return paths


def detect(args: argparse.Namespace) -> int:
    import cv2

    from edge.classifier import Classifier
    from edge.config import load_config
    from edge.faces import FaceDetector
    from edge.pipeline import Pipeline, annotate

    config = load_config(args.config, _overrides(args))
    d = config.detector
    detector = FaceDetector(d.cascade, d.scale_factor, d.min_neighbors, d.min_size, d.detect_width, d.max_faces)
    classifier = Classifier(config.model.manifest, config.model.artifact, threads=config.model.threads)
    pipeline = Pipeline(detector, classifier)
    if args.annotate:
        args.annotate.mkdir(parents=True, exist_ok=True)
    failures = 0
    paths = _expand(args.images)
    if not paths:
        print("fer-edge: error: no images matched", file=sys.stderr)
        return ExitStatus.BAD_INPUT
    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR) if Path(path).is_file() else None
        if image is None:
            reason = "no such file" if not Path(path).exists() else "not a readable image"
            print(f"fer-edge: error: cannot read {path}: {reason}", file=sys.stderr)
            failures += 1
            continue
        result = pipeline.process(image, 0)
        print(json.dumps({"image": path, "faces": [face.to_dict() for face in result.faces]}), flush=True)
        if args.annotate:
            cv2.imwrite(str(args.annotate / Path(path).name), annotate(image, result))
    return ExitStatus.BAD_INPUT if failures else ExitStatus.OK


def main(argv: list[str] | None = None) -> int:
    from edge.errors import EdgeError

    args = _parser().parse_args(argv)
    try:
        if args.command == "validate-config":
            from edge.config import load_config

            path = args.config_file or args.config_flag
            if path is None:
                print("fer-edge: error: give a config file to validate", file=sys.stderr)
                return ExitStatus.BAD_INPUT
            config = load_config(path, args.overrides)
            from edge.manifest import load_manifest

            manifest = load_manifest(config.model.manifest)
            manifest.artifact(config.model.artifact)
            if not Path(config.detector.cascade).is_file():
                raise EdgeError(f"Haar cascade {config.detector.cascade} does not exist")
            if args.print:
                print(config.to_toml())
            print(f"{path}: ok (model {manifest.name}/{config.model.artifact}, labels: {', '.join(manifest.labels)})")
            return ExitStatus.OK
        if args.command == "detect":
            return detect(args)
        from edge.daemon import run_daemon

        summary = run_daemon(args.config, _overrides(args))
        print(summary.line(), flush=True)
        return ExitStatus.OK
    except EdgeError as exc:
        print(f"fer-edge: error: {exc}", file=sys.stderr)
        return ExitStatus.BAD_INPUT
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
