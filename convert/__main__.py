"""``fer-convert [convert] MODEL``: convert and verify; ``fer-convert verify MANIFEST``: re-measure the artifacts.
``fer-convert --help`` lists the commands, ``fer-convert COMMAND --help`` has each one's options."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

from edge.cli import ArgumentParser, commands_parser

# what `fer-convert --help` says of each command; "convert" runs when none is named
COMMANDS = {
    "convert": "a .keras model to TFLite/ONNX artifacts, each verified against it, and their manifest (the default: "
               "'fer-convert MODEL' is 'fer-convert convert MODEL')",
    "verify": "re-measure the accuracy and Keras agreement of every artifact in a manifest",
}


def _convert_parser() -> argparse.ArgumentParser:
    from convert.formats import DEFAULT_FORMATS, FORMATS
    from convert.pipeline import DEFAULT_CROP_MARGIN

    from train.console import DefaultCommandParser

    parser = DefaultCommandParser(
        prog="fer-convert", command="convert", usage="fer-convert [convert] MODEL [options]",
        description="Convert a .keras model to TFLite/ONNX, verify each artifact against it, write a manifest. "
        "'convert' may be left out.")
    parser.add_argument("model", type=Path, help="trained .keras model")
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default: models)")
    parser.add_argument("--formats", default=",".join(DEFAULT_FORMATS),
                        help=f"comma-separated, from: {', '.join(FORMATS)} (default: %(default)s)")
    parser.add_argument("--data", metavar="DIR",
                        help="FER2013 (Kaggle folders, its zip or fer2013.csv) or the model's own data set: its train "
                        "split calibrates int8, --verify-split verifies (default: $FER2013_DIR, else ./data/fer2013/, "
                        "else the bundled sample)")
    parser.add_argument("--calibration-data", metavar="DIR", help="calibrate on this data instead of --data's")
    parser.add_argument("--calibration-count", type=int, default=500,
                        help="training images that calibrate int8 (default: %(default)s)")
    parser.add_argument("--verify-data", metavar="DIR", help="verify on this data instead of --data's")
    parser.add_argument("--verify-split", default="test", help="the split that verifies (default: %(default)s)")
    parser.add_argument("--name", help="artifact base name (default: the model file's stem)")
    parser.add_argument("--manifest", default="manifest.json", help="manifest file name inside --out")
    parser.add_argument("--labels", help="comma-separated labels in output order (default: from the run)")
    parser.add_argument("--crop-margin", type=float, default=DEFAULT_CROP_MARGIN,
                        help="fraction added to each side of a detected face box (default: %(default)s)")
    parser.add_argument("--max-drop", type=float, default=1.0,
                        help="fail when int8 accuracy is more than this many points (or one face, if more) below float")
    parser.add_argument("--flip-tta", action="store_true",
                        help="bake horizontal-flip averaging into every artifact (the same as --views 2)")
    parser.add_argument("--views", type=int, default=1,
                        help="average each face over this many views inside every artifact: 2 is the "
                        "mirror image, 6 adds 2-px horizontal shifts, 10 vertical ones too (N times the "
                        "classifier's compute; the views fer-train evaluate --views scores)")
    return parser


def _verify_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="fer-convert verify",
                                     description="Accuracy and agreement with Keras of every artifact in a manifest.")
    parser.add_argument("manifest", type=Path, help="manifest.json (or its folder)")
    parser.add_argument("--data", metavar="DIR", help="labelled data (default: $FER2013_DIR, else ./data/fer2013/, "
                        "else the bundled sample)")
    parser.add_argument("--split", default="test", help="the split to score (default: %(default)s)")
    parser.add_argument("--keras", type=Path, help="float model to compare with (default: the manifest's source)")
    parser.add_argument("--artifacts", help="comma-separated subset of the manifest's artifacts")
    parser.add_argument("--max-drop", type=float, default=1.0,
                        help="fail when int8 accuracy is more than this many points (or one face, if more) below float")
    parser.add_argument("--write", action="store_true", help="record the figures in the manifest")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def _table(result) -> str:  # type: ignore[no-untyped-def]
    lines = [f"data: {result.data} ({result.images} images)",
             f"{'artifact':<10} {'accuracy':>9} {'macro-F1':>9} {'agree':>8} {'max|dp|':>8}  runtime"]
    if result.keras is not None:
        lines.append(f"{'keras':<10} {result.keras['accuracy']:>9.4f} {result.keras['macro_f1']:>9.4f} "
                     f"{'':>8} {'':>8}  keras")
    for name, m in result.artifacts.items():
        agree = f"{m['agreement_with_keras']:.2%}" if "agreement_with_keras" in m else "-"
        diff = f"{m['max_abs_prob_diff']:.4f}" if "max_abs_prob_diff" in m else "-"
        lines.append(f"{name:<10} {m['accuracy']:>9.4f} {m['macro_f1']:>9.4f} {agree:>8} {diff:>8}  {m['runtime']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from train.console import log_to_stderr, quiet_tensorflow

    quiet_tensorflow()
    log_to_stderr("fer-convert", "edge")
    # the TFLite converter's, on every int8 conversion: the uint8 input's scale is fixed by design (formats.py)
    warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected", category=UserWarning)
    from convert.errors import ConvertError
    from edge.errors import EdgeError
    from train.errors import TrainError

    if argv[:1] in (["-h"], ["--help"]):
        commands_parser("fer-convert", "Convert trained models for the edge and verify what ships.", COMMANDS,
                        default="convert").parse_args(argv)
    try:
        if argv and argv[0] == "verify":
            args = _verify_parser().parse_args(argv[1:])
            return _verify(args)
        args = _convert_parser().parse_args(argv[1:] if argv[:1] == ["convert"] else argv)
        from convert.pipeline import ConvertOptions, convert_model

        options = ConvertOptions(
            model=args.model, out_dir=args.out, formats=tuple(f.strip() for f in args.formats.split(",") if f.strip()),
            calibration_data=args.calibration_data, verify_data=args.verify_data, verify_split=args.verify_split,
            data=args.data, name=args.name,
            manifest_name=args.manifest, labels=tuple(args.labels.split(",")) if args.labels else None,
            calibration_count=args.calibration_count, crop_margin=args.crop_margin, max_drop=args.max_drop,
            views=max(args.views, 2) if args.flip_tta else args.views)
        _, result = convert_model(options)
        print(_table(result))
        return 0
    except (ConvertError, EdgeError, TrainError) as exc:
        print(f"fer-convert: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fer-convert: interrupted", file=sys.stderr)
        return 130


def _verify(args: argparse.Namespace) -> int:
    from convert.errors import ConvertError
    from convert.pipeline import with_metrics
    from convert.data import choose_data
    from convert.verify import verify
    from edge.vision.manifest import load_manifest, write_manifest

    manifest = load_manifest(args.manifest)
    keras_path = args.keras
    source = manifest.info.get("source_model", {})
    source_path = manifest.base_dir / source["path"] if isinstance(source.get("path"), str) else None
    if keras_path is None and source_path is not None:
        keras_path = source_path if source_path.is_file() else None
    data = choose_data(args.data)
    model = None
    if keras_path is not None:
        try:
            from train.evaluate import load_keras_model

            model = load_keras_model(keras_path)
            from convert.tta import views_from_manifest, with_views

            model = with_views(model, views_from_manifest(manifest.info.get("test_time_augmentation")))
        except ImportError:
            logging.getLogger("fer-convert").warning("tensorflow not installed: no comparison with Keras")
    artifacts = args.artifacts.split(",") if args.artifacts else None
    result = verify(manifest, data.path, args.split, keras_model=model, artifacts=artifacts, max_drop=args.max_drop,
                    found_by=data.how)
    if args.write:
        path = args.manifest / "manifest.json" if args.manifest.is_dir() else args.manifest
        try:
            write_manifest(with_metrics(manifest, result), path)
        except OSError as exc:
            raise ConvertError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(json.dumps({"data": result.data, "images": result.images, "keras": result.keras,
                      "artifacts": result.artifacts}, indent=2) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
