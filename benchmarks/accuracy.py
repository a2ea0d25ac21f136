"""Accuracy of Keras float and every artifact on a labelled folder, and what quantization cost.

Artifacts run through ``edge.Classifier`` (what the device runs) and are scored with
``train.evaluate.score`` (what training reports), so the figures here and there agree. Keras
is optional: without it the float reference is the float32 TFLite artifact, and the report says so.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.errors import BenchError, FacesUnavailable

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "fer2013_sample"
BATCH = 256
log = logging.getLogger("fer-bench")


@dataclass(frozen=True)
class LabelledFaces:
    images: np.ndarray  # (N, 48, 48) uint8
    targets: np.ndarray  # (N,) indexes into labels
    labels: tuple[str, ...]
    source: str
    votes: np.ndarray | None = None  # (N, 10) FER+ votes (train.ferplus.COLUMNS) when --votes is given
    duplicates: np.ndarray | None = None  # (N,) the faces that are pixel for pixel a training face
    votes_file: str = ""
    votes_sha256: str = ""
    name: str = ""  # the data set by name (fer2013/test), what results.json records: no path of this machine


@dataclass(frozen=True)
class ModelAccuracy:
    name: str
    kind: str  # keras, tflite, onnx, peer
    accuracy: float
    macro_f1: float
    per_class_f1: dict[str, float]
    confusion: list[list[int]]
    points_lost: float | None = None  # top-1 points below the float reference
    agreement: float | None = None  # top-1 agreement with the float reference
    runtime: str = ""
    note: str = ""
    ferplus: dict[str, Any] | None = None  # train.ferplus.vote_figures, when the faces carry votes

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "accuracy": round(self.accuracy, 6),
                **({"ferplus": self.ferplus} if self.ferplus is not None else {}),
                "macro_f1": round(self.macro_f1, 6),
                "per_class_f1": {k: round(v, 4) for k, v in self.per_class_f1.items()},
                "confusion_matrix": self.confusion,
                "points_lost": None if self.points_lost is None else round(self.points_lost, 3),
                "agreement": None if self.agreement is None else round(self.agreement, 6),
                "runtime": self.runtime, "note": self.note}


@dataclass(frozen=True)
class AccuracyResult:
    data: str
    images: int
    labels: tuple[str, ...]
    reference: str  # "keras", "float32", or "" when there is none
    reference_note: str
    models: tuple[ModelAccuracy, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    data_sha256: str = ""  # faces_fingerprint: what makes two runs' accuracies comparable
    reference_views: int = 1  # test-time views the Keras reference ran with, as the artifacts do

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "images": self.images, "labels": list(self.labels), "reference": self.reference,
                "reference_note": self.reference_note, "models": [m.to_dict() for m in self.models],
                "notes": list(self.notes), "data_sha256": self.data_sha256, "reference_views": self.reference_views}


def default_data() -> tuple[Path, str]:
    """FER2013's test split where a user keeps it (FER2013_DIR, data/fer2013/), the bundled sample otherwise."""
    from train.data_location import find_fer2013

    found = find_fer2013()
    if found is not None and (found / "test").is_dir():
        return found, "test"
    return SAMPLE, "test"


def load_faces(data: Path, split: str, labels: tuple[str, ...], limit: int = 0,
               manifest_info: dict | None = None, votes: Path | None = None) -> LabelledFaces:
    """Through ``train.data`` (no tensorflow needed); ``limit`` keeps every k-th face.

    ``manifest_info`` carries the run's loading options (face crops, a generated test split's
    fraction), so a custom model is scored on the images it was tested on, not on its training set.
    """
    try:
        from train.data import load_dataset
        from train.errors import TrainError
        from train.run_info import manifest_options
    except ImportError as exc:
        raise FacesUnavailable(f"cannot load labelled faces: the 'train' package is not importable ({exc})") from None
    duplicates = None
    try:
        options = manifest_options(manifest_info or {})
        dataset = load_dataset(data, split, labels, **options)
        if votes is not None:
            dataset = dataset.with_votes(votes)
            if split != "train":  # the faces a model trained on, found by their pixels' sha256
                from train.duplicates import duplicates_of

                duplicates = duplicates_of(dataset.images, load_dataset(data, "train", labels, **options).images)
    except TrainError as exc:  # the data, or the manifest's labels as train reads them (a single class)
        raise BenchError(f"accuracy data: {exc}") from None
    images, targets, counts = dataset.images, dataset.targets, dataset.votes
    if limit and len(targets) > limit:
        pick = np.arange(0, len(targets), len(targets) / limit).astype(np.int64)[:limit]  # every k-th: keeps the mix
        images, targets = images[pick], targets[pick]
        counts = None if counts is None else counts[pick]
        duplicates = None if duplicates is None else duplicates[pick]
    record = dict(dataset.info.get("votes") or {})
    from train.data_location import data_name

    return LabelledFaces(images, targets, dataset.labels, dataset.source, counts, duplicates,
                         str(record.get("file", "")), str(record.get("sha256", "")), data_name(data, split))


def keras_available() -> bool:
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("keras", "tensorflow"))
    except (ImportError, ValueError):
        return False


def manifest_views(info: dict[str, Any]) -> int:
    """How many test-time views the manifest's artifacts average (1: none), read as fer-convert wrote it."""
    value = info.get("test_time_augmentation")
    if value in (None, "none"):
        return 1
    from convert.tta import views_from_manifest  # only reached with tensorflow present, as convert needs it

    return views_from_manifest(value)


def keras_probs(path: Path, images: np.ndarray, views: int = 1) -> np.ndarray:
    """The Keras model's probabilities, wrapped in the same test-time views the artifacts bake in.

    An artifact built with ``--views N`` averages N views of each face inside its graph; comparing
    it with the bare Keras model would count that average as "points lost to quantization".
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from train.evaluate import load_keras_model, predict_probs

    model = load_keras_model(path)
    if views > 1:
        from convert.tta import with_views

        model = with_views(model, views)
    return predict_probs(model, images, batch_size=BATCH).astype(np.float32)


def faces_fingerprint(faces: LabelledFaces) -> str:
    """sha256 of the scored pixels, labels and label order: two runs' accuracies compare only when it matches."""
    digest = hashlib.sha256()
    digest.update("\n".join(faces.labels).encode())
    digest.update(np.ascontiguousarray(faces.images, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(faces.targets, dtype=np.int64).tobytes())
    return digest.hexdigest()


def artifact_probs(manifest: Any, name: str, images: np.ndarray, threads: int) -> tuple[np.ndarray, str]:
    from edge.vision.classifier import Classifier

    with Classifier(manifest, name, threads=threads) as classifier:
        probs = np.concatenate([classifier.predict(images[i:i + BATCH]) for i in range(0, len(images), BATCH)])
        return probs, classifier.runtime


def scored(name: str, kind: str, faces: LabelledFaces, predicted: np.ndarray, reference: np.ndarray | None,
           runtime: str = "", note: str = "") -> ModelAccuracy:
    from train.evaluate import score

    result = score(faces.targets, predicted, faces.labels)
    points = agreement = None
    if reference is not None:
        ref_acc = float(np.mean(reference == faces.targets))
        points = (ref_acc - result["accuracy"]) * 100
        agreement = float(np.mean(predicted == reference))
    ferplus = None
    if faces.votes is not None:
        from train.ferplus import vote_figures

        ferplus = vote_figures(faces.targets, predicted, faces.votes, faces.labels, faces.duplicates)
    return ModelAccuracy(name, kind, result["accuracy"], result["macro_f1"],
                         {k: v["f1"] for k, v in result["per_class"].items()}, result["confusion_matrix"],
                         points, agreement, runtime, note, ferplus)


def measure_accuracy(manifest_path: Path, artifacts: list[str], faces: LabelledFaces, use_keras: bool = True,
                     threads: int = 2) -> tuple[AccuracyResult, dict[str, np.ndarray]]:
    """Scores of every model, and each model's predicted class indexes (for the peer's agreement)."""
    from edge.vision.manifest import load_manifest

    manifest = load_manifest(manifest_path)
    if faces.labels != manifest.labels:
        raise BenchError(f"data labels {faces.labels} differ from the manifest's {manifest.labels}")
    from edge.errors import EdgeError

    predictions: dict[str, np.ndarray] = {}
    runtimes: dict[str, str] = {}
    notes: list[str] = []
    for name in list(artifacts):
        try:
            probs, runtimes[name] = artifact_probs(manifest, name, faces.images, threads)
        except EdgeError as exc:  # e.g. onnxruntime missing on a Pi: score the others
            notes.append(f"{name} not scored: {exc}")
            artifacts = [a for a in artifacts if a != name]
            continue
        predictions[name] = probs.argmax(1)
    source = manifest.info.get("source_model", {}).get("path")
    keras_path = manifest.base_dir / source if source else None
    reference, note, ref_pred, views = "", "", None, 1
    if not use_keras:
        note = "Keras not used (--no-keras)"
    elif not keras_available():
        note = "Keras not installed"
    elif keras_path is None or not keras_path.is_file():
        note = f"Keras model {keras_path or '(none in manifest)'} not found"
    else:
        try:
            views = manifest_views(manifest.info)
            predictions["keras"] = keras_probs(keras_path, faces.images, views).argmax(1)
            reference, ref_pred = "keras", predictions["keras"]
            note = f"float reference: Keras {keras_path.name}" + (
                f" with the manifest's {views} test-time views, as its artifacts run it" if views > 1 else "")
        except Exception as exc:  # a Keras that cannot load the file: fall back, say why
            note = f"Keras could not load {keras_path.name} ({type(exc).__name__})"
    if not reference:
        if "float32" in predictions:
            reference, ref_pred = "float32", predictions["float32"]
            note += ", float reference from the float32 TFLite artifact"
        else:
            note += "; no float32 artifact either, so no points-lost figures"
    models = []
    if "keras" in predictions:
        models.append(scored("keras", "keras", faces, predictions["keras"], ref_pred, "keras"))
    for name in artifacts:
        models.append(scored(name, manifest.artifact(name).format, faces, predictions[name], ref_pred,
                             runtimes[name]))
    result = AccuracyResult(faces.name or faces.source, len(faces.targets), faces.labels, reference, note.lstrip(", "),
                            tuple(models), tuple(notes), faces_fingerprint(faces), views if reference == "keras" else 1)
    return result, predictions
