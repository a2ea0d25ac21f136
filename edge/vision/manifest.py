"""The model manifest: the only contract between ``convert`` (which writes it) and ``edge`` (which reads it).

It says what a model expects (input shape, dtype, quantization, how faces are cropped and
resized), what it answers (labels in order, output quantization), and which files make it up
(path, sha256, size), plus each artifact's measured accuracy. Labels live here and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.atomic import write_text_atomic
from edge.errors import ManifestError
from edge.packaged import installed_layout_hint
from edge.vision.quant import DTYPES, TensorSpec

FORMAT = "fer-edge-manifest"
VERSION = 1
INTERPOLATIONS = ("area", "linear", "nearest", "cubic")


@dataclass(frozen=True)
class Preprocessing:
    """How a face box becomes the model's input; training's crop and the edge's must agree."""

    size: tuple[int, int] = (48, 48)  # width, height
    grayscale: bool = True
    crop_margin: float = 0.0  # fraction of the box added on each side before resizing
    interpolation: str = "area"

    def to_dict(self) -> dict[str, Any]:
        return {"size": list(self.size), "grayscale": self.grayscale, "crop_margin": self.crop_margin,
                "interpolation": self.interpolation}


@dataclass(frozen=True)
class Artifact:
    name: str  # int8, float32, float16, dynamic, onnx, onnx_int8
    path: str  # relative to the manifest
    format: str  # tflite or onnx
    sha256: str
    bytes: int
    input: TensorSpec
    output: TensorSpec
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "sha256": self.sha256, "bytes": self.bytes,
                "input": self.input.to_dict(), "output": self.output.to_dict(), "metrics": self.metrics,
                **self.extra}


@dataclass(frozen=True)
class Manifest:
    name: str
    labels: tuple[str, ...]
    input_shape: tuple[int, ...]  # NHWC with batch 1
    preprocessing: Preprocessing
    artifacts: dict[str, Artifact]
    base_dir: Path = Path(".")
    info: dict[str, Any] = field(default_factory=dict)  # source model, converter versions, date, float metrics

    def artifact(self, name: str) -> Artifact:
        if name not in self.artifacts:
            raise ManifestError(f"manifest has no artifact '{name}' (has: {', '.join(self.artifacts) or 'none'})")
        return self.artifacts[name]

    def artifact_path(self, name: str) -> Path:
        return self.base_dir / self.artifact(name).path

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "name": self.name, "labels": list(self.labels),
                "input_shape": list(self.input_shape), "preprocessing": self.preprocessing.to_dict(),
                "artifacts": {name: a.to_dict() for name, a in self.artifacts.items()}, **self.info}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ManifestError(f"{where}: missing '{key}'")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ManifestError(f"{where}: '{key}' has the wrong type ({type(value).__name__})")
    return value


def _tensor(data: Any, where: str) -> TensorSpec:
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: expected an object")
    dtype = _require(data, "dtype", str, where)
    if dtype not in DTYPES:
        raise ManifestError(f"{where}: unsupported dtype '{dtype}'")
    try:
        return TensorSpec(dtype, float(data.get("scale", 0.0)), int(data.get("zero_point", 0)))
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: 'scale' must be a number and 'zero_point' an integer") from None


def _check_source_model(data: dict[str, Any], where: str) -> None:
    """fer-convert and fer-bench read ``source_model`` (which Keras model, its hash and size) to
    keep entries, find the float reference and label the report; one of the wrong shape is refused
    here, where every reader loads the manifest, not as a TypeError after minutes of work."""
    if "source_model" not in data:
        return
    source = data["source_model"]
    at = f"{where}: 'source_model'"
    if not isinstance(source, dict):
        raise ManifestError(f"{at} must be an object")
    for key, kind in (("path", str), ("sha256", str), ("parameters", int)):
        if key in source:
            _require(source, key, kind, at)


KNOWN_ARTIFACT_KEYS = {"path", "format", "sha256", "bytes", "input", "output", "metrics"}


def parse_manifest(data: Any, base_dir: Path, where: str = "manifest") -> Manifest:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ManifestError(f"{where}: not a fer-edge manifest (expected \"format\": \"{FORMAT}\")")
    if _require(data, "version", int, where) > VERSION:
        raise ManifestError(f"{where}: manifest version {data['version']} is newer than this fer-edge ({VERSION})")
    labels = _require(data, "labels", list, where)
    if not labels or not all(isinstance(label, str) and label for label in labels) or len(set(labels)) != len(labels):
        raise ManifestError(f"{where}: 'labels' must be a non-empty list of distinct strings")
    shape = _require(data, "input_shape", list, where)
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape) or shape[3] not in (1, 3):
        raise ManifestError(f"{where}: 'input_shape' must be [1, height, width, channels]")
    pre = _require(data, "preprocessing", dict, where)
    size = pre.get("size", [shape[2], shape[1]])
    try:
        if not isinstance(size, list) or len(size) != 2:
            raise TypeError
        preprocessing = Preprocessing(
            size=(int(size[0]), int(size[1])),
            grayscale=bool(pre.get("grayscale", shape[3] == 1)),
            crop_margin=float(pre.get("crop_margin", 0.0)),
            interpolation=str(pre.get("interpolation", "area")),
        )
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: 'preprocessing' needs size [width, height] and a numeric crop_margin") from None
    if preprocessing.size != (shape[2], shape[1]):
        raise ManifestError(f"{where}: preprocessing size {list(preprocessing.size)} does not match input_shape "
                            f"{shape} (size is [width, height])")
    if preprocessing.interpolation not in INTERPOLATIONS:
        raise ManifestError(f"{where}: unknown interpolation '{preprocessing.interpolation}'")
    if not 0.0 <= preprocessing.crop_margin < 1.0:
        raise ManifestError(f"{where}: crop_margin must be in [0, 1)")
    _check_source_model(data, where)
    artifacts: dict[str, Artifact] = {}
    for name, entry in _require(data, "artifacts", dict, where).items():
        at = f"{where}: artifact '{name}'"
        if not isinstance(entry, dict):
            raise ManifestError(f"{at}: expected an object")
        fmt = _require(entry, "format", str, at)
        if fmt not in ("tflite", "onnx"):
            raise ManifestError(f"{at}: unknown format '{fmt}'")
        artifacts[name] = Artifact(
            name=name, path=_require(entry, "path", str, at), format=fmt,
            sha256=_require(entry, "sha256", str, at), bytes=_require(entry, "bytes", int, at),
            input=_tensor(entry.get("input"), f"{at} input"), output=_tensor(entry.get("output"), f"{at} output"),
            metrics=_require(entry, "metrics", dict, at) if "metrics" in entry else {},
            extra={k: v for k, v in entry.items() if k not in KNOWN_ARTIFACT_KEYS},
        )
    info = {k: v for k, v in data.items()
            if k not in ("format", "version", "name", "labels", "input_shape", "preprocessing", "artifacts")}
    return Manifest(str(data.get("name", "model")), tuple(labels), tuple(shape), preprocessing, artifacts,
                    base_dir, info)


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    from edge.documents import read_document

    return parse_manifest(read_document(path, "manifest", ManifestError), path.parent, str(path))


def check_artifact(manifest: Manifest, name: str) -> Path:
    """The artifact's path, after checking it exists and matches the manifest's size and sha256."""
    artifact = manifest.artifact(name)
    path = manifest.base_dir / artifact.path
    if not path.is_file():
        raise ManifestError(f"model file {path} named by the manifest does not exist{installed_layout_hint(path)}")
    size = path.stat().st_size
    if size != artifact.bytes or sha256_file(path) != artifact.sha256:
        raise ManifestError(f"model file {path} does not match the manifest's sha256/size (corrupt or replaced)")
    return path


def write_manifest(manifest: Manifest, path: Path) -> None:
    """Atomic: a reader never sees half a manifest."""
    write_text_atomic(Path(path), json.dumps(manifest.to_dict(), indent=2) + "\n")
