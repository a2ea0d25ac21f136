"""From a trained ``.keras`` file to verified artifacts and their manifest.

Everything is built in a staging folder beside the output and moved into place only after
verification passes, so a failed conversion never leaves a half-written or unverified model
where the edge would load it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convert.calibration import MIN_IMAGES, load_calibration
from convert.errors import ConvertError
from convert.formats import FORMATS, ONNX_OPSET, export_onnx, export_onnx_int8, export_tflite
from convert.verify import VerifyResult, check_max_drop, verify
from edge.vision.manifest import Artifact, Manifest, Preprocessing, sha256_file, write_manifest
from edge.vision.quant import TensorSpec
from train.labels import DEFAULT_CROP_MARGIN, IMAGE_SIZE

log = logging.getLogger("fer-convert")


@dataclass(frozen=True)
class ConvertOptions:
    model: Path
    out_dir: Path
    formats: tuple[str, ...]
    calibration_data: str | None  # None: ``data`` (convert.data)
    verify_data: str | None  # None: ``data``
    verify_split: str = "test"
    data: str | None = None  # both, where the two above are None; None: FER2013_DIR, ./data/fer2013/, the sample
    name: str | None = None
    manifest_name: str = "manifest.json"
    labels: tuple[str, ...] | None = None
    calibration_count: int = 500
    crop_margin: float = DEFAULT_CROP_MARGIN
    max_drop: float = 1.0
    opset: int = ONNX_OPSET
    views: int = 1  # test-time views averaged inside every artifact (convert.tta): 1, 2, 6 or 10


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for module in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy", "cv2"):
        try:
            versions[module] = str(__import__(module).__version__)
        except Exception:
            continue
    from convert import __version__

    versions["fer_edge"] = __version__
    return versions


def _check_options(options: ConvertOptions) -> None:
    unknown = [f for f in options.formats if f not in FORMATS]
    if unknown:
        raise ConvertError(f"unknown format '{unknown[0]}' (choose from {', '.join(FORMATS)})")
    if not options.formats:
        raise ConvertError("no formats requested")
    if "onnx_int8" in options.formats and "onnx" not in options.formats:
        raise ConvertError("onnx_int8 is quantized from the float ONNX model: add 'onnx' to --formats")
    if not 0 <= options.crop_margin < 1:
        raise ConvertError("crop margin must be in [0, 1)")
    check_max_drop(options.max_drop)
    if any(f in options.formats for f in ("int8", "onnx_int8")) and options.calibration_count < MIN_IMAGES:
        # a count below the minimum would be blamed on the data ("has 7 images") after loading it
        raise ConvertError(f"--calibration-count must be at least {MIN_IMAGES} for int8, "
                           f"not {options.calibration_count}")
    if options.name is not None and Path(options.name).name != options.name:
        # artifacts are written into the staging folder as <name>_<format>; a name with folders in it would
        # land outside it, replacing a file in --out before verification
        raise ConvertError(f"--name must be a plain file name without folders, not {options.name!r}")
    from convert.tta import VIEW_COUNTS

    if options.views not in VIEW_COUNTS:
        raise ConvertError(f"--views must be one of {', '.join(map(str, VIEW_COUNTS))}, not {options.views}")
    name = options.manifest_name
    if not name.endswith(".json") or Path(name).name != name or name.startswith("."):
        # artifact paths in a manifest are relative to its folder, so it must sit beside them in --out
        raise ConvertError(f"--manifest must be a file name ending in .json inside --out, not {name!r}")
    out = options.out_dir
    if out.exists() and not out.is_dir():
        raise ConvertError(f"output {out} exists and is not a folder")


def _create_out(out: Path) -> None:
    """Made only once the model and its labels are known good, so a refused model leaves no empty folder."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConvertError(f"cannot create output folder {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise ConvertError(f"output folder {out} is not writable")


def _check_image_model(model: Any, path: Path) -> tuple[int, int, int]:
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[3] not in (1, 3) or not all(isinstance(d, int) for d in shape[1:]):
        raise ConvertError(f"{path}: input shape {shape} is not an image (expected (None, H, W, 1 or 3))")
    if shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        # calibration and verification faces come from train.data, always 48x48 grey: any other input
        # would fail inside the TFLite calibrator or onnxruntime after the conversion work
        raise ConvertError(f"{path}: input shape {shape}: fer-convert calibrates and verifies on "
                           f"{IMAGE_SIZE}x{IMAGE_SIZE} greyscale faces, so the model must take "
                           f"(None, {IMAGE_SIZE}, {IMAGE_SIZE}, 1)")
    if len(model.output_shape) != 2:
        raise ConvertError(f"{path}: output shape {model.output_shape} is not a class vector")
    return shape[1], shape[2], shape[3]


def _labels_for(model_path: Path, num_classes: int, given: tuple[str, ...] | None,
                run_info: dict[str, Any]) -> tuple[str, ...]:
    """Labels from the option, else the training run's dataset.json beside the model, else FER2013's."""
    labels = given
    if labels is None:
        labels = tuple(run_info.get("labels", ())) or None
    if labels is None:
        from train.labels import FER2013_LABELS

        labels = FER2013_LABELS
    if len(labels) != num_classes:
        raise ConvertError(f"{model_path} has {num_classes} outputs but {len(labels)} labels were given")
    return tuple(labels)


def convert_model(options: ConvertOptions) -> tuple[Path, VerifyResult]:
    from train.errors import TrainError
    from train.evaluate import load_keras_model

    _check_options(options)
    model_path = Path(options.model)
    if model_path.suffix != ".keras":
        raise ConvertError(f"{model_path}: expected a .keras model file")
    try:
        model = load_keras_model(model_path)
    except TrainError as exc:
        raise ConvertError(str(exc)) from None
    height, width, channels = _check_image_model(model, model_path)
    parameters = int(model.count_params())
    from convert.tta import manifest_name, with_views

    model = with_views(model, options.views)
    from train.run_info import read_dataset_info, recorded_options

    try:
        run_info = read_dataset_info(model_path)
    except TrainError as exc:
        raise ConvertError(str(exc)) from None
    labels = _labels_for(model_path, int(model.output_shape[-1]), options.labels, run_info)
    name = options.name or model_path.stem
    model_sha = sha256_file(model_path)
    kept = _kept_artifacts(options, model_sha, labels, manifest_name(options.views))
    data_loading = run_info.get("load_options") if isinstance(run_info.get("load_options"), dict) else None
    load_options = recorded_options(run_info, f"the run's dataset.json beside {model_path}")
    from convert.data import conversion_data

    calibration_data, verify_data = conversion_data(options.data, options.calibration_data, options.verify_data,
                                                    calibrates=any(f in options.formats for f in ("int8", "onnx_int8")))
    calibration = None
    calibration_record: dict[str, Any] = {"data": None, "split": "train", "images": 0}
    if calibration_data is not None:
        from train.data_location import data_name

        calibration, fingerprint = load_calibration(calibration_data.path, options.calibration_count, labels=labels,
                                                    load_options=load_options, warn_few=not calibration_data.is_sample)
        log.info("calibration data: %s, its train split, %d images (from %s)", calibration_data.path,
                 len(calibration), calibration_data.how)
        calibration_record = {"data": data_name(calibration_data.path), "data_fingerprint": fingerprint,
                              "split": "train", "images": int(len(calibration))}

    _create_out(options.out_dir)  # once the model, its labels and the calibration data are known good
    stage = Path(tempfile.mkdtemp(prefix=".convert-", dir=options.out_dir))
    try:
        created = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
        paths: dict[str, Path] = {}
        for fmt in options.formats:
            if fmt in ("onnx", "onnx_int8"):
                continue
            paths[fmt] = export_tflite(model, fmt, stage / f"{name}_{fmt}.tflite", calibration)
        if "onnx" in options.formats:
            metadata = {"labels": json.dumps(list(labels)), "input": "raw pixels 0..255, NHWC float32",
                        "producer": "fer-edge convert", "created": created, "name": name}
            paths["onnx"] = export_onnx(model, stage / f"{name}.onnx", metadata, options.opset)
        if "onnx_int8" in options.formats:
            assert calibration is not None
            paths["onnx_int8"] = export_onnx_int8(paths["onnx"], stage / f"{name}_int8.onnx", calibration)

        artifacts: dict[str, Artifact] = {}
        for fmt, path in paths.items():
            if path.suffix == ".tflite":
                from edge.vision.backends import TFLiteBackend

                backend = TFLiteBackend(path)
                input_spec, output_spec = backend.input_spec, backend.output_spec
            else:
                input_spec, output_spec = TensorSpec("float32"), TensorSpec("float32")
            extra = {"opset": options.opset} if path.suffix == ".onnx" else {}
            artifacts[fmt] = Artifact(fmt, path.name, path.suffix[1:], sha256_file(path), path.stat().st_size,
                                      input_spec, output_spec, extra=extra)
        info = {
            "created": created,
            "source_model": {"path": os.path.relpath(model_path.resolve(), options.out_dir.resolve()),
                             "sha256": model_sha, "parameters": parameters},
            "test_time_augmentation": manifest_name(options.views),
            "calibration": calibration_record,  # the data set by name and fingerprint: no path of this machine
            "converter": library_versions(),
        }
        if data_loading is not None:
            info["data_loading"] = data_loading
        manifest = Manifest(name, labels, (1, height, width, channels),
                            Preprocessing(size=(width, height), grayscale=channels == 1,
                                          crop_margin=options.crop_margin, interpolation="area"),
                            artifacts, stage, info)
        result = verify(manifest, verify_data.path, options.verify_split, keras_model=model,
                        max_drop=options.max_drop, found_by=verify_data.how)
        manifest = with_metrics(manifest, result)
        final = Manifest(manifest.name, manifest.labels, manifest.input_shape, manifest.preprocessing,
                         {**kept, **manifest.artifacts}, options.out_dir, manifest.info)
        manifest_path = options.out_dir / options.manifest_name
        # the new manifest is written in full before any artifact moves, so a failure here leaves
        # the old artifacts and the old manifest that describes them
        staged_manifest = stage / options.manifest_name
        try:
            write_manifest(final, staged_manifest)
            for path in paths.values():
                os.replace(path, options.out_dir / path.name)
            os.replace(staged_manifest, manifest_path)
        except OSError as exc:
            raise ConvertError(f"cannot write {manifest_path}: {exc.strerror or exc}") from None
        for fmt, path in paths.items():
            log.info("wrote %s (%s)", options.out_dir / path.name, fmt)
        if kept:
            log.info("kept from the existing manifest (same model): %s", ", ".join(kept))
        log.info("manifest: %s", manifest_path)
        return manifest_path, result
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _kept_artifacts(options: ConvertOptions, model_sha: str, labels: tuple[str, ...],
                    views: str) -> dict[str, Artifact]:
    """Entries of an existing manifest in --out that this run does not rebuild.

    Converting one format into a folder that already holds others must not drop them from the
    manifest (the edge would lose artifacts that are still on disk). They are kept only when they
    come from the same model, labels and views; entries of another model would mismatch the new
    ones, so that is refused before any work is done.
    """
    from edge.errors import EdgeError
    from edge.vision.manifest import load_manifest

    path = options.out_dir / options.manifest_name
    if not path.exists():
        return {}
    try:
        existing = load_manifest(path)
    except EdgeError as exc:
        raise ConvertError(f"{path} exists but cannot be read ({exc}); move it away or choose another --out") from None
    others = {name: a for name, a in existing.artifacts.items() if name not in options.formats}
    if not others:
        return {}
    same = (existing.info.get("source_model", {}).get("sha256") == model_sha and existing.labels == labels
            and existing.info.get("test_time_augmentation", "none") == views)
    if not same:
        raise ConvertError(f"{path} describes another model with artifacts {', '.join(others)} that this run "
                           f"does not rebuild: add them to --formats, or choose another --out")
    return {name: a for name, a in others.items() if (options.out_dir / a.path).is_file()}


def with_metrics(manifest: Manifest, result: VerifyResult) -> Manifest:
    """The manifest with each artifact's verification figures (and Keras's) recorded."""
    artifacts = {
        name: Artifact(a.name, a.path, a.format, a.sha256, a.bytes, a.input, a.output,
                       result.artifacts.get(name, a.metrics), a.extra)
        for name, a in manifest.artifacts.items()
    }
    info = dict(manifest.info)
    if result.keras is not None:
        info["float_metrics"] = {"data": result.name or result.data, "data_fingerprint": result.fingerprint,
                                 "images": result.images,
                                 **{k: round(v, 6) for k, v in result.keras.items()}}
    return Manifest(manifest.name, manifest.labels, manifest.input_shape, manifest.preprocessing, artifacts,
                    manifest.base_dir, info)
