"""``fer-edge``: ``detect`` images, ``analyze`` a video, ``run`` the camera daemon, ``validate-config``; ``bundle``, ``deploy``
and ``flash-prepare`` put the daemon on a Raspberry Pi.

Parsing and exit codes only; library errors become one line on stderr.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from edge.cli import ArgumentParser, package_version, quiet_closed_stdout
from edge.errors import ExitStatus

if TYPE_CHECKING:
    from edge.config import EdgeConfig

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm"}


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="fer-edge", description="Facial emotion recognition on the edge.",
                            epilog="'fer-edge COMMAND --help' shows a command's options.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")

    common = ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="edge.toml (default: $FER_EDGE_CONFIG, else the config "
                        "install.sh installed, else the packaged defaults)")
    common.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config key (repeatable)")
    common.add_argument("--manifest", help="model manifest (default: the config's, else the packaged model)")
    common.add_argument("--artifact", help="artifact in the manifest: int8 (default), float32, onnx, ...")
    common.add_argument("--threads", type=int, help="inference threads")

    detect = sub.add_parser("detect", parents=[common], help="detect and classify faces in images, one JSON line each")
    detect.add_argument("images", nargs="+", help="image files, folders or globs")
    detect.add_argument("--annotate", type=Path, metavar="DIR", help="write annotated copies into DIR")
    detect.add_argument("--max-pixels", type=int, default=40_000_000, metavar="N",
                        help="refuse images with more pixels than this, read from the header before decoding "
                             "(default: 40000000)")

    analyze = sub.add_parser("analyze", parents=[common],
                             help="a video (or folder) to frames.csv, tracks.csv, annotated.mp4, timeline.png, summary.md")
    analyze.add_argument("video", type=Path, help="a video file, a folder of videos, or a folder of images")
    analyze.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the outputs")
    analyze.add_argument("--no-video", action="store_true", help="skip annotated.mp4 (the slowest output)")
    analyze.add_argument("--quiet", action="store_true", help="no progress on stderr")

    run = sub.add_parser("run", parents=[common], help="run the headless camera daemon")
    run.add_argument("--source", help="override source.uri (picamera2, 0, /dev/video0, file, URL, folder)")
    run.add_argument("--max-frames", type=int, help="stop after N frames")
    run.add_argument("--events", help="override events.path")
    run.add_argument("--print-events", action="store_true", help="echo every event to stdout")

    validate = sub.add_parser("validate-config", help="check a config file and exit")
    validate.add_argument("config_file", type=Path, nargs="?",
                          help="edge.toml (or --config; default: as for run: $FER_EDGE_CONFIG, the installed "
                          "config, the packaged defaults)")
    validate.add_argument("--config", dest="config_flag", type=Path, help=argparse.SUPPRESS)
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    validate.add_argument("--print", action="store_true", help="print the resolved config")

    shipping = ArgumentParser(add_help=False)
    shipping.add_argument("--manifest", type=Path, help="model manifest (default: the shipped models/manifest.json)")
    shipping.add_argument("--artifact", dest="artifacts", action="append", metavar="NAME",
                          help="artifact to ship (repeatable; default int8; the first is the config's)")
    shipping.add_argument("--config", type=Path, help="the edge.toml to ship as default (default: edge/configs/edge.toml)")
    shipping.add_argument("--wheels", type=Path, metavar="DIR",
                          help="add these wheels; the Pi then installs offline (pip --no-index)")

    bundle = sub.add_parser("bundle", parents=[shipping], help="build the install tarball for a Raspberry Pi")
    bundle.add_argument("--output", type=Path, required=True, metavar="DIR", help="folder for the .tar.gz")

    deploy = sub.add_parser("deploy", parents=[shipping], help="install on a Pi over SSH (bundle, copy, install.sh)")
    deploy.add_argument("target", help="user@host (a non-root user needs sudo there)")
    deploy.add_argument("--bundle", type=Path, help="a tarball from `fer-edge bundle` (default: build one now)")
    deploy.add_argument("--port", type=int, help="SSH port")
    deploy.add_argument("--identity", type=Path, help="SSH private key")
    deploy.add_argument("--ssh-option", dest="ssh_options", action="append", default=[], metavar="OPT",
                        help="extra ssh option, e.g. StrictHostKeyChecking=accept-new (repeatable; -o is implied)")
    deploy.add_argument("--install-args", default="", metavar="ARGS",
                        help="arguments for install.sh, e.g. '--with-mqtt' or '--prefix /tmp/x --no-systemd'")
    deploy.add_argument("--sudo", choices=("auto", "yes", "no"), default="auto",
                        help="run install.sh with sudo (auto: unless the user is root)")
    deploy.add_argument("--dry-run", action="store_true", help="print what would run, change nothing")

    flash = sub.add_parser("flash-prepare", parents=[shipping],
                           help="make a freshly flashed SD card install the daemon on first boot")
    flash.add_argument("bootfs", type=Path, help="the mounted boot partition (bootfs) of a Raspberry Pi OS card")
    flash.add_argument("--bundle", type=Path, help="a tarball from `fer-edge bundle` (default: build one now)")
    flash.add_argument("--mode", choices=("auto", "firstrun", "cloud-init", "both"), default="auto",
                       help="auto: cloud-init when the card has user-data (Trixie, 2025+), else firstrun.sh")
    flash.add_argument("--install-args", default="", metavar="ARGS", help="arguments for install.sh at first boot")
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

    from edge.vision.classifier import Classifier
    from edge.errors import EdgeError
    from edge.vision.detectors import build_detector
    from edge.vision.pipeline import Pipeline, annotate
    from edge.vision.sources.image_file import ImageFileError, read_image_file

    if args.max_pixels < 1:
        raise EdgeError(f"--max-pixels must be >= 1, got {args.max_pixels}")
    _, config = _load_chosen(args.config, _overrides(args))
    detector = build_detector(config.detector, config.model.threads)
    classifier = Classifier(config.model.manifest, config.model.artifact, threads=config.model.threads)
    pipeline = Pipeline(detector, classifier, align=config.detector.align)
    if args.annotate:
        try:
            args.annotate.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EdgeError(f"cannot create --annotate folder {args.annotate}: {exc.strerror}") from None
    failures = 0
    paths = _expand(args.images)
    if not paths:
        print("fer-edge: error: no images matched", file=sys.stderr)
        return ExitStatus.BAD_INPUT
    for path in paths:
        try:
            if not Path(path).is_file():
                raise ImageFileError("no such file" if not Path(path).exists() else "not a readable image")
            image = read_image_file(Path(path), args.max_pixels)
        except ImageFileError as exc:
            print(f"fer-edge: error: cannot read {path}: {exc}{_unread_hint(Path(path), exc)}", file=sys.stderr)
            failures += 1
            continue
        result = pipeline.process(image, 0)
        print(json.dumps({"image": path, "faces": [face.to_dict() for face in result.faces]}), flush=True)
        if args.annotate:
            target = args.annotate / Path(path).name
            if not cv2.imwrite(str(target), annotate(image, result)):
                print(f"fer-edge: error: cannot write {target}", file=sys.stderr)
                failures += 1
    return ExitStatus.BAD_INPUT if failures else ExitStatus.OK


def _unread_hint(path: Path, exc: Exception) -> str:
    """What to do about an image ``detect`` could not read, when there is something to do."""
    from edge.analysis.video import VIDEO_SUFFIXES

    if "past the limit" in str(exc):
        return " (--max-pixels raises the limit)"
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return " (use fer-edge analyze for videos)"
    return ""


def analyze(args: argparse.Namespace) -> int:
    from edge.analysis.run import analyze as run_analysis
    from edge.analysis.summary import AnalysisReport
    _, config = _load_chosen(args.config, _overrides(args))
    printed: list[AnalysisReport] = []

    def show(report: AnalysisReport) -> None:
        if report.skipped:
            print(f"fer-edge: warning: {report.source}: skipped {_names(report.skipped)}: not readable as images",
                  file=sys.stderr, flush=True)
        print(("\n" if printed else "") + report.table(), flush=True)
        printed.append(report)

    run_analysis(args.video, args.out, config, progress=not args.quiet, annotate=not args.no_video, on_report=show)
    return ExitStatus.OK


def _names(names: tuple[str, ...], shown: int = 3) -> str:
    """"2 files (a.jpg, b.jpg)", the first few of a long list and how many more: one line whatever the count."""
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
    return f"{len(names)} file{'s' if len(names) != 1 else ''} ({listed})"


def _load_chosen(explicit: Path | None, overrides: list[str]) -> tuple[Path | None, EdgeConfig]:
    """The config this command reads (path None: the packaged defaults), loaded and checked. A file found
    without --config (FER_EDGE_CONFIG, the installed one) is named in one line on stderr once it has loaded;
    a bad one is the error line instead."""
    from edge.config import load_config
    from edge.config_source import choose_config

    choice = choose_config(explicit)
    config = load_config(choice.path, overrides)
    if explicit is None and choice.path is not None:
        print(f"fer-edge: {choice.describe()}", file=sys.stderr, flush=True)
    return choice.path, config


def ship(args: argparse.Namespace) -> int:
    """``bundle``, ``deploy`` and ``flash-prepare``: all three start from the same bundle options."""
    options = {"manifest": args.manifest, "artifacts": args.artifacts, "config": args.config, "wheels": args.wheels}
    if args.command == "bundle":
        from edge.deploy.bundle import build_bundle

        bundle = build_bundle(args.output, **options)
        print(f"{bundle.path} ({bundle.bundle_id}, sha256 {bundle.sha256})")
        print(f"on the Pi: tar -xzf {bundle.path.name} && sudo ./{bundle.name}/install.sh")
        return ExitStatus.OK
    if args.command == "deploy":
        from edge.deploy.remote import SshTarget, deploy

        target = SshTarget.parse(args.target, args.port, args.identity, args.ssh_options)
        report = deploy(target, bundle=args.bundle, install_args=args.install_args, sudo=args.sudo,
                        dry_run=args.dry_run, **options)
        print(report, flush=True)
        return ExitStatus.OK
    from edge.deploy.flash import flash_prepare

    for line in flash_prepare(args.bootfs, bundle=args.bundle, mode=args.mode, install_args=args.install_args,
                              **options):
        print(line)
    return ExitStatus.OK


def main(argv: list[str] | None = None) -> int:
    try:
        return _dispatch(argv)
    except BrokenPipeError:
        # stdout's reader left (`fer-edge detect *.jpg | head -1`): it read what it wanted, so stop quietly
        # and exit 0, not 1 or SIGPIPE's 141, which `set -o pipefail` scripts would take for a failure
        quiet_closed_stdout()
        return ExitStatus.OK


def _dispatch(argv: list[str] | None) -> int:
    from edge.errors import EdgeError

    args = _parser().parse_args(argv)
    try:
        if args.command == "validate-config":
            path, config = _load_chosen(args.config_file or args.config_flag, args.overrides)
            from edge.preflight import preflight

            manifest = preflight(config)
            if args.print:
                print(config.to_toml())
            print(f"{path or 'packaged defaults'}: ok (model {manifest.name}/{config.model.artifact}, labels: {', '.join(manifest.labels)})")
            return ExitStatus.OK
        if args.command == "detect":
            return detect(args)
        if args.command == "analyze":
            return analyze(args)
        if args.command in ("bundle", "deploy", "flash-prepare"):
            return ship(args)
        from edge.service.daemon import run_daemon

        path, _ = _load_chosen(args.config, _overrides(args))  # checked, and named, before the daemon starts
        summary = run_daemon(path, _overrides(args))
        print(summary.line(), flush=True)
        return ExitStatus.OK
    except EdgeError as exc:
        print(f"fer-edge: error: {exc}", file=sys.stderr)
        return ExitStatus.BAD_INPUT
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
