"""Classify a batch of face crops with any artifact a manifest names.

The manifest says what the model expects; this module checks the file, opens the right
backend, quantizes the batch in one place, and returns probabilities labelled by the manifest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.vision.backends import Backend, open_backend
from edge.errors import ManifestError
from edge.vision.manifest import Manifest, check_artifact, load_manifest
from edge.vision.quant import dequantize, quantize


def check_shapes(manifest: Manifest, path: Path, model_input: tuple[int | None, ...],
                 model_output: tuple[int | None, ...]) -> None:
    """Refuse a manifest whose labels or input shape do not fit the model, at load time.

    Otherwise a label list one short fails on the first face, mid-run, and a wrong input size
    silently feeds the model crops of the wrong size.
    """
    want = tuple(manifest.input_shape[1:])
    got = tuple(model_input[1:])
    if len(got) != len(want) or any(g is not None and g != w for g, w in zip(got, want)):
        raise ManifestError(f"{path}: the model takes input {list(model_input)} but the manifest says "
                            f"input_shape {list(manifest.input_shape)}")
    classes = model_output[-1] if model_output else None
    if classes is not None and classes != len(manifest.labels):
        raise ManifestError(f"{path}: the model has {classes} outputs but the manifest names "
                            f"{len(manifest.labels)} labels")


class Classifier:
    """One loaded artifact. ``predict`` takes (N, H, W) or (N, H, W, C) uint8 faces."""

    def __init__(self, manifest: Manifest | str | Path, artifact: str = "int8", threads: int = 1,
                 verify: bool = True, tflite_module: str | None = None) -> None:
        self.manifest = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
        spec = self.manifest.artifact(artifact)
        path = check_artifact(self.manifest, artifact) if verify else self.manifest.artifact_path(artifact)
        self.artifact = spec
        self.backend: Backend = open_backend(path, spec.format, threads, tflite_module)
        if spec.format == "tflite" and self.backend.input_spec.dtype != spec.input.dtype:
            raise ManifestError(f"{path}: input dtype {self.backend.input_spec.dtype} but the manifest says "
                                f"{spec.input.dtype}")
        check_shapes(self.manifest, path, self.backend.input_shape, self.backend.output_shape)
        self.input_spec = spec.input if spec.format == "onnx" else self.backend.input_spec
        self.output_spec = spec.output if spec.format == "onnx" else self.backend.output_spec
        self.runtime = self.backend.name
        self.labels = self.manifest.labels
        self.input_shape = self.manifest.input_shape

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (N, len(labels)) as float32."""
        faces = np.asarray(faces)
        if faces.ndim == 3:
            faces = faces[..., None]
        _, height, width, channels = self.input_shape
        if faces.shape[1:] != (height, width, channels):
            raise ValueError(f"faces must be (N, {height}, {width}[, {channels}]), got {faces.shape}")
        if faces.shape[0] == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        raw = self.backend.run(np.ascontiguousarray(quantize(faces, self.input_spec)))
        return dequantize(raw, self.output_spec).reshape(faces.shape[0], -1)

    def close(self) -> None:
        self.backend = None  # type: ignore[assignment]

    def __enter__(self) -> "Classifier":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
