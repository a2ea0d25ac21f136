"""``fer-bench``: run the benchmark, soak, compare with a reference, refresh the README table.

    fer-bench [run] [--quick] [--artifacts int8,float32] [--threads 1,2] [--no-peer] [--out DIR [--force]]
    fer-bench setup-peer                  # builds .venv-bench-fer with the PyPI `fer` package
    fer-bench soak --frames 10000         # memory over a long run, added to today's newest run of that model
    fer-bench compare RESULTS --reference benchmarks/reference/x86_64.csv
    fer-bench reference RESULTS           # write benchmarks/reference/<device class>.csv
    fer-bench readme RESULTS [--update README.md]
    fer-bench report RESULTS_DIR          # re-render report.md and charts from results.json

Parsing and exit codes only; errors become one line on stderr and exit code 2, and every path a
run writes is checked before it measures anything (benchmarks/outputs.py).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.outputs import SHIPPED_MANIFEST
from edge.cli import ArgumentParser, commands_parser

ROOT = Path(__file__).resolve().parents[1]
RESULTS_ROOT = ROOT / "benchmarks" / "results"
# Each runtime starts one OS thread per requested thread and sizes its buffers per thread and per
# face: --threads 100000 took 16 GB and a load average of 1,500 before the first figure. Beyond these
# a figure measures the scheduler or the allocator, not the model (no frame holds 256 faces).
MAX_THREADS = 64
MAX_BATCH = 256
log = logging.getLogger("fer-bench")


def _count(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type for an integer >= ``minimum``: a bad value is a usage error before anything runs."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"expected an integer <= {maximum}, got {value}")
        return value
    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got '{text}'") from None
    if not math.isfinite(value):  # NaN passes every comparison's "no" and lands in results.json; inf never stops
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, got '{text}'")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {value:g}")
    return value


def _ints(maximum: int) -> Callable[[str], tuple[int, ...]]:
    """An argparse type for comma-separated integers in 1..``maximum``."""
    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None
        if not values or any(v < 1 for v in values):
            raise argparse.ArgumentTypeError(f"expected positive integers, got '{text}'")
        if any(v > maximum for v in values):
            raise argparse.ArgumentTypeError(f"expected integers <= {maximum}, got '{text}'")
        return values
    return parse


def _run_parser() -> argparse.ArgumentParser:
    from benchmarks.accuracy import default_data
    from benchmarks.frames import DEFAULT_CLIP

    data, _ = default_data()
    from train.console import DefaultCommandParser

    parser = DefaultCommandParser(prog="fer-bench", command="run", usage="fer-bench [run] [options]",
                            description="Accuracy and latency of every artifact, stage by stage, against the `fer` "
                            "package. 'run' may be left out.")
    parser.add_argument("--manifest", type=Path, default=SHIPPED_MANIFEST,
                        help="the manifest whose artifacts are measured (default: the shipped models/manifest.json)")
    parser.add_argument("--data", type=Path, default=data,
                        help="labelled faces (default: $FER2013_DIR or data/fer2013/ if present, else the "
                        "bundled sample; now %(default)s)")
    parser.add_argument("--split", default="test", help="the split of --data the accuracy is measured on "
                        "(default: %(default)s)")
    parser.add_argument("--artifacts", help="comma-separated (default: every artifact in the manifest)")
    parser.add_argument("--threads", type=_ints(MAX_THREADS), default=None, help="e.g. 1,2 (default: 1..cores)")
    parser.add_argument("--batch", type=_ints(MAX_BATCH), default=(1, 8),
                        help="batch sizes for model latency (default: 1,8)")
    parser.add_argument("--runs", type=_count(1), help="minimum timed runs per configuration")
    parser.add_argument("--min-time", type=_seconds, help="minimum seconds per configuration")
    parser.add_argument("--quick", action="store_true", help="tiny run counts: proves it works, figures unstable")
    parser.add_argument("--frames", type=_count(1), default=120, help="distinct clip frames to use (default: 120)")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="video with a ground-truth sidecar")
    parser.add_argument("--limit-faces", type=_count(0), default=0,
                        help="score every k-th face, at most N (0: all)")
    parser.add_argument("--no-keras", action="store_true", help="float reference from the float32 artifact")
    parser.add_argument("--votes", type=Path, help="FER+ votes for the --split faces (FER+'s test.csv): "
                        "every model and the peer are also scored on agreement with the FER+ majority label and the "
                        "annotators' share, and again without the faces that duplicate a training face")
    parser.add_argument("--also", action="append", type=Path, default=[], metavar="MANIFEST",
                        help="another model to set beside this one (repeatable): accuracy and model latency of "
                             "its int8 and float32, e.g. a MobileNetV2 backbone's manifest")
    parser.add_argument("--no-peer", action="store_true", help="skip the `fer` package comparison")
    parser.add_argument("--no-detectors", action="store_true", help="skip Haar vs BlazeFace (fer-bench detectors)")
    parser.add_argument("--setup-peer", action="store_true", help="build the peer venv first if needed")
    parser.add_argument("--peer-python", type=Path, help="python of a venv with `fer` (default: .venv-bench-fer)")
    parser.add_argument("--out", type=Path, help="results folder (default: benchmarks/results/<host>-<date>, "
                        "with -2, -3, ... for another run the same day)")
    parser.add_argument("--force", action="store_true", help="let --out replace a folder holding a full run's results")
    parser.add_argument("--write-reference", nargs="?", const="", metavar="CSV",
                        help="also write the reference CSV (default: benchmarks/reference/<device class>.csv)")
    parser.add_argument("--readme", type=Path, metavar="README", help="replace the table between the README's "
                        "<!-- fer-bench:start/end --> markers")
    return parser


def _today() -> tuple[str, str]:
    from benchmarks.system import host_name, system_info

    return host_name(), system_info()["date"]


def _default_out() -> Path:
    """A new folder for this run: <host>-<date>, or -2, -3, ... so a second run never replaces the first."""
    from benchmarks.outputs import new_run_folder

    return new_run_folder(RESULTS_ROOT, *_today())


def _write_latest(results: dict, out: Path, refresh_only: bool = False, manifest: Path | None = None) -> str:
    """The README block; also kept as benchmarks/results/latest.md, but only for a full run of the shipped
    model in that folder (and, with ``refresh_only``, only when latest.md already shows that run).
    ``manifest`` is the run's own (the results name it relative to the repository, not to here)."""
    from benchmarks.outputs import display_path, latest_md
    from benchmarks.report import readme_table

    table = readme_table(results, display_path(out))
    # A refresh re-renders a run latest.md already shows, whichever checkout its manifest path names.
    latest = latest_md(out, bool(results["config"].get("quick")), RESULTS_ROOT, refresh_only,
                       None if refresh_only else manifest)
    if latest is not None:
        latest.write_text(table)
    return table


def _check_outputs(args: argparse.Namespace) -> tuple[Path, list[str]]:
    """Every path the run will write, checked before measuring; the results folder and notices to print."""
    from benchmarks.outputs import check_replace, check_writable_dir, check_writable_file

    out = args.out or _default_out()
    check_writable_dir(out)
    notices = [check_replace(out, args.force)] if args.out else []
    if args.write_reference is not None:
        from benchmarks.reference import REFERENCE_DIR
        from benchmarks.system import device_class

        check_writable_file(Path(args.write_reference) if args.write_reference else
                            REFERENCE_DIR / f"{device_class()}.csv", "--write-reference")
    if args.readme:
        from benchmarks.report import check_readme

        check_readme(args.readme)
    return out, [n for n in notices if n]


def _soak_candidates(out: Path, explicit: bool) -> list[Path]:
    """Folders a soak of the same model may be carried over from: the replaced folder, then today's runs."""
    from benchmarks.outputs import todays_runs

    candidates = [out] if out.is_dir() else []
    if not explicit or out.resolve().parent == RESULTS_ROOT.resolve():
        candidates += [p for p in reversed(todays_runs(RESULTS_ROOT, *_today())) if p.resolve() != out.resolve()]
    return candidates


def cmd_run(argv: list[str]) -> int:
    from benchmarks.report import update_readme, write_results
    from benchmarks.runner import RunSettings, policies, run
    from edge.vision.manifest import load_manifest
    from edge.errors import EdgeError

    args = _run_parser().parse_args(argv)
    try:
        manifest = load_manifest(args.manifest)
    except EdgeError as exc:
        from benchmarks.errors import BenchError

        raise BenchError(str(exc)) from None
    artifacts = tuple(a.strip() for a in args.artifacts.split(",") if a.strip()) if args.artifacts else \
        tuple(manifest.artifacts)
    for name in artifacts:
        manifest.artifact(name)  # unknown names fail here, before anything runs
    from benchmarks.system import cores

    threads = args.threads or tuple(range(1, cores() + 1))
    out, notices = _check_outputs(args)
    model, pipeline, peer = policies(args.quick, args.runs, args.min_time, args.frames)
    settings = RunSettings(manifest=args.manifest.resolve(), data=args.data, split=args.split, artifacts=artifacts,
                           threads=threads, batches=args.batch, clip=args.clip, frames=args.frames, model_policy=model,
                           pipeline_policy=pipeline, peer_policy=peer, peer=not args.no_peer,
                           peer_python=args.peer_python, keras=not args.no_keras, limit_faces=args.limit_faces,
                           quick=args.quick, command="fer-bench " + " ".join(argv),
                           also=tuple(path.resolve() for path in args.also), detectors=not args.no_detectors,
                           votes=args.votes)
    from benchmarks.runner import check_settings

    check_settings(settings)  # the manifest, clip and data, before the peer venv is built or anything timed
    if args.setup_peer and not args.no_peer and args.peer_python is None:
        from benchmarks.peer import setup_peer

        setup_peer()
    for notice in notices:
        print(f"fer-bench: {notice}")
    results = run(settings)
    from benchmarks.outputs import carried_soak

    soak = carried_soak(results, _soak_candidates(out, args.out is not None))
    if soak is not None:
        results["soak"] = soak  # the same model's soak, labelled as carried over with where and when it ran
    report = write_results(results, out)
    print(f"fer-bench: wrote {report}")
    table = _write_latest(results, out, manifest=args.manifest)
    if args.write_reference is not None:
        from benchmarks.reference import write_reference

        print(f"fer-bench: wrote {write_reference(results, Path(args.write_reference) if args.write_reference else None)}")
    if args.readme:
        update_readme(args.readme, table)
        print(f"fer-bench: updated {args.readme}")
    from benchmarks.targets import QUICK_NOTE, verdict

    if args.quick:
        print(f"fer-bench: targets {QUICK_NOTE}")
    for target in results["targets"]:
        print(f"  {verdict(target['met'], target.get('judged', True)):>12}: {target['target']} — {target['measured']}")
    return 0


def cmd_soak(argv: list[str]) -> int:
    from benchmarks.frames import DEFAULT_CLIP
    from benchmarks.report import load_results, write_results
    from benchmarks.soak import run_soak

    parser = ArgumentParser(prog="fer-bench soak", description="RSS over a long pipeline run (clip looped).")
    parser.add_argument("--frames", type=_count(1), default=10_000,
                        help="pipeline frames to run, the clip looped (default: %(default)s)")
    parser.add_argument("--every", type=_count(1), default=100, help="sample RSS every N frames")
    parser.add_argument("--manifest", type=Path, default=SHIPPED_MANIFEST,
                        help="the model's manifest.json (default: the shipped one)")
    parser.add_argument("--artifact", default="int8", help="the manifest's artifact to run (default: %(default)s)")
    parser.add_argument("--threads", type=_count(1, MAX_THREADS), default=1,
                        help="classifier threads (default: %(default)s)")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="video to loop (default: the demo clip)")
    parser.add_argument("--out", type=Path, help="results folder to add the soak to (default: today's newest)")
    args = parser.parse_args(argv)
    from edge.errors import EdgeError
    from edge.vision.manifest import check_artifact, load_manifest
    from benchmarks.errors import BenchError
    from benchmarks.frames import check_clip
    from benchmarks.outputs import check_soak_target, check_writable_dir, todays_folder

    try:
        manifest = load_manifest(args.manifest)
        check_artifact(manifest, args.artifact)
    except EdgeError as exc:
        raise BenchError(str(exc)) from None
    check_clip(args.clip)
    out = args.out or todays_folder(RESULTS_ROOT, *_today())
    check_writable_dir(out)  # before an eleven-minute soak, not after it
    check_soak_target(out, args.artifact, manifest.artifact(args.artifact).sha256)
    if (out / "results.json").is_file():
        from benchmarks.report import render, reading

        with reading(out):  # the report it is added to must render, before the soak and not after it
            render(load_results(out), [])

    def progress(frame: int, rss: float) -> None:
        if frame % max(args.every, args.frames // 20 or 1) == 0:
            log.info("soak: frame %d, RSS %.1f MB", frame, rss)

    soak = run_soak(args.manifest, args.clip, args.frames, args.every, args.artifact, args.threads, progress)
    out.mkdir(parents=True, exist_ok=True)
    import json

    (out / "soak.json").write_text(json.dumps(soak.to_dict(), indent=1) + "\n")
    if (out / "results.json").is_file():
        results = load_results(out)
        results["soak"] = soak.to_dict()
        write_results(results, out)
        _write_latest(results, out, refresh_only=True)
        print(f"fer-bench: added the soak to {out / 'report.md'}")
    else:
        print(f"fer-bench: wrote {out / 'soak.json'} (no results.json there to add it to)")
    d = soak.to_dict()
    print(f"  {d['frames']:,} frames in {d['seconds']:.0f} s: RSS {d['start_mb']:.1f} -> {d['end_mb']:.1f} MB "
          f"(max {d['max_mb']:.1f}), fitted growth {d['growth_mb']:+.2f} MB, flat: {'yes' if d['flat'] else 'no'}")
    return 0


def cmd_compare(argv: list[str]) -> int:
    from benchmarks.reference import REFERENCE_DIR, compare, read_reference
    from benchmarks.report import load_results, reading

    parser = ArgumentParser(prog="fer-bench compare", description="Ratios of a run to a reference CSV.")
    parser.add_argument("results", type=Path, help="results.json or its folder")
    parser.add_argument("--reference", type=Path, help="reference CSV (default: the run's device class, else x86_64)")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    with reading(args.results):
        reference = args.reference
        if reference is None:
            reference = REFERENCE_DIR / f"{results['system']['device_class']}.csv"
            if not reference.is_file():
                reference = REFERENCE_DIR / "x86_64.csv"
        _, table = compare(results, read_reference(reference))
    print(table, end="")
    return 0


def cmd_reference(argv: list[str]) -> int:
    from benchmarks.reference import write_reference
    from benchmarks.report import load_results, reading

    parser = ArgumentParser(prog="fer-bench reference", description="Write a device-class reference CSV.")
    parser.add_argument("results", type=Path, help="results.json or its folder")
    parser.add_argument("--out", type=Path, help="CSV (default: benchmarks/reference/<device class>.csv)")
    parser.add_argument("--allow-quick", action="store_true",
                        help="accept a --quick run, whose figures are too unstable to compare against")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    with reading(args.results):
        written = write_reference(results, args.out, args.allow_quick)
    print(f"fer-bench: wrote {written}")
    return 0


def cmd_readme(argv: list[str]) -> int:
    from benchmarks.outputs import display_path
    from benchmarks.report import load_results, readme_table, reading, update_readme

    parser = ArgumentParser(prog="fer-bench readme", description="The README's table from a run.")
    parser.add_argument("results", type=Path, nargs="?", help="results.json or folder (default: the run under "
                        "benchmarks/results/ measured last, by the time in its results.json)")
    parser.add_argument("--update", type=Path, metavar="README", help="replace the table between the markers")
    args = parser.parse_args(argv)
    path = args.results
    if path is None:
        from benchmarks.outputs import newest_run

        path = newest_run(RESULTS_ROOT)
        if path is None:
            from benchmarks.errors import BenchError

            raise BenchError("no results under benchmarks/results/: run fer-bench first")
    results = load_results(path)
    with reading(path):
        table = readme_table(results, display_path(Path(path)))
    if args.update:
        update_readme(args.update, table)
        print(f"fer-bench: updated {args.update}")
    else:
        print(table, end="")
    return 0


def cmd_report(argv: list[str]) -> int:
    from benchmarks.report import load_results, reading, render, write_results

    parser = ArgumentParser(prog="fer-bench report", description="Re-render report.md from results.json.")
    parser.add_argument("results", type=Path, help="results folder")
    args = parser.parse_args(argv)
    folder = args.results if args.results.is_dir() else args.results.parent
    results = load_results(args.results)
    with reading(args.results):
        render(results, [])  # in memory first: a results.json that cannot render rewrites nothing
        print(f"fer-bench: wrote {write_results(results, folder)}")
        _write_latest(results, folder, refresh_only=True)
    return 0


def cmd_setup_peer(argv: list[str]) -> int:
    from benchmarks.peer import DEFAULT_VENV, setup_peer

    parser = ArgumentParser(prog="fer-bench setup-peer", description="Build the venv holding `fer`.")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="where (default: .venv-bench-fer)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    print(f"fer-bench: peer python {setup_peer(args.venv, args.force)}")
    return 0


def cmd_detectors(argv: list[str]) -> int:
    """Haar and BlazeFace side by side (and fer's time per frame), without the rest of a full run."""
    import json

    from benchmarks.detectors import measure_detectors, env_folder, table, targets
    from benchmarks.frames import DEFAULT_CLIP
    from benchmarks.system import load_average
    from benchmarks.targets import verdict

    parser = ArgumentParser(prog="fer-bench detectors", description=cmd_detectors.__doc__)
    parser.add_argument("--manifest", type=Path, default=SHIPPED_MANIFEST,
                        help="the model's manifest.json (default: the shipped one)")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="video with a ground-truth sidecar")
    parser.add_argument("--portraits", type=Path, default=env_folder("PORTRAITS_DIR"),
                        help="label folders of whole-head photos (default: PORTRAITS_DIR)")
    parser.add_argument("--fer2013", type=Path, default=env_folder("FER2013_DIR"),
                        help="FER2013 folder with test/ (default: FER2013_DIR)")
    parser.add_argument("--fer-faces", type=_count(1), default=350, help="FER2013 test faces to tilt (default 350)")
    parser.add_argument("--blazeface-model", type=Path, help="another BlazeFace .tflite (with its .sha256) to measure")
    parser.add_argument("--no-peer", action="store_true", help="skip timing the `fer` package")
    parser.add_argument("--peer-python", type=Path, help="python of a venv with `fer` (default: .venv-bench-fer)")
    parser.add_argument("--out", type=Path, help="write detectors.json and detectors.md here")
    args = parser.parse_args(argv)
    load_start = load_average()
    results = measure_detectors(args.manifest, args.clip, args.portraits, args.fer2013, args.fer_faces,
                                model=args.blazeface_model)
    peer_ms = None
    if not args.no_peer:
        from benchmarks.frames import load_frames
        from benchmarks.peer import measure_peer, peer_python
        from benchmarks.timing import TimingPolicy

        clip = load_frames(args.clip, 120)
        peer = measure_peer(args.peer_python or peer_python(), None, clip,
                            TimingPolicy(warmup=5, min_runs=len(clip.frames), min_seconds=5.0, max_seconds=120.0))
        if peer.available and peer.latency is not None:
            peer_ms = peer.latency.p50
            peer_cpu = peer.cpu_ms_per_frame.p50 if peer.cpu_ms_per_frame else None
            results["peer"] = {"package": peer.package, "ms_per_frame_p50": round(peer_ms, 2),
                               "cpu_ms_per_frame_p50": round(peer_cpu, 2) if peer_cpu else None,
                               "detection": peer.detection.to_dict() if peer.detection else None}
        else:
            results["notes"].append(f"fer not measured: {peer.reason}")
    results["load_average"] = {"start": load_start, "end": load_average()}
    results["targets"] = targets(results, peer_ms, (results.get("peer") or {}).get("cpu_ms_per_frame_p50"))
    lines = table(results, peer_ms)
    if "peer" in results:
        d = results["peer"]["detection"] or {}
        lines += ["", f"fer ({results['peer']['package']}) on the demo clip: {peer_ms:.2f} ms per frame "
                      f"(CPU {results['peer']['cpu_ms_per_frame_p50']} ms), recall "
                      f"{d.get('recall', 0):.3f}, label accuracy on found faces {d.get('label_accuracy') or 0:.3f}"]
    lines += ["", f"load average {load_start} at the start, {results['load_average']['end']} at the end", ""]
    lines += [f"- {verdict(t['met'], t.get('judged', True))}: {t['target']}: {t['measured']}" for t in results["targets"]]
    lines += [f"- note: {n}" for n in results["notes"]]
    print("\n".join(lines))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "detectors.json").write_text(json.dumps(results, indent=1) + "\n")
        (args.out / "detectors.md").write_text("\n".join(lines) + "\n")
        print(f"fer-bench: wrote {args.out / 'detectors.json'} and {args.out / 'detectors.md'}")
    return 0


COMMANDS = {"run": cmd_run, "detectors": cmd_detectors, "setup-peer": cmd_setup_peer, "soak": cmd_soak, "compare": cmd_compare,
            "reference": cmd_reference, "readme": cmd_readme, "report": cmd_report}
# what `fer-bench --help` says of each; "run" runs when no command is named
SUMMARIES = {
    "run": "accuracy and latency of every artifact, stage by stage, against the `fer` package (the default)",
    "setup-peer": "build the venv holding the PyPI `fer` package (.venv-bench-fer)",
    "soak": "memory over a long pipeline run, added to today's newest run of that model",
    "compare": "ratios of a run to a device-class reference CSV",
    "reference": "write a device-class reference CSV from a run",
    "readme": "the README's benchmark table from a run",
    "report": "re-render a run's report.md and charts from its results.json",
}
DESCRIPTION = "Benchmark fer-edge's models and pipeline: accuracy, latency, memory, and the `fer` package beside them."


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from train.console import log_to_stderr, quiet_tensorflow

    quiet_tensorflow()
    log_to_stderr("fer-bench", "edge")
    from benchmarks.errors import BenchError
    from edge.errors import EdgeError

    try:
        if argv[:1] in (["-h"], ["--help"]):
            commands_parser("fer-bench", DESCRIPTION, SUMMARIES, default="run").parse_args(argv)
        command = argv.pop(0) if argv and argv[0] in COMMANDS else "run"
        return COMMANDS[command](argv)
    except (BenchError, EdgeError) as exc:
        print(f"fer-bench: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: usage errors are 2, --help is 0
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    except KeyboardInterrupt:
        print("fer-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
