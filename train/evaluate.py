"""Accuracy, macro-F1, per-class precision/recall/F1 and a confusion matrix for a Keras model.

The metric functions take plain label arrays, so convert/ and benchmarks/ score their
artifacts with exactly the same arithmetic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from train.data import load_dataset
from train.errors import TrainError
from train.keras_io import load_keras_model, predict_probs, with_policy  # noqa: F401  (re-exported)
from train.outputs import output_folder


@dataclass(frozen=True)
class Report:
    model: str
    data: str
    images: int
    labels: tuple[str, ...]
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    views: int = 1  # test-time views averaged per face (2: the mirror image; 6 and 10 add 2-px shifts)
    ferplus: dict[str, Any] | None = None  # FER+ figures (train.ferplus.vote_figures) with the votes file scored on
    data_fingerprint: str = ""  # Dataset.fingerprint of the scored faces: the data by content, wherever it sits

    @property
    def tta(self) -> bool:
        return self.views > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "data": self.data,
            **({"data_fingerprint": self.data_fingerprint} if self.data_fingerprint else {}),
            "images": self.images, "labels": list(self.labels),
            "accuracy": self.accuracy, "macro_f1": self.macro_f1, "per_class": self.per_class,
            "confusion_matrix": self.confusion, "tta": self.tta, "views": self.views,
            **({"ferplus": self.ferplus} if self.ferplus is not None else {}),
        }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def score(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Rows of the confusion matrix are true classes, columns predicted ones."""
    matrix = confusion_matrix(np.asarray(y_true), np.asarray(y_pred), len(labels))
    tp = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    actual = matrix.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = actual > 0
    return {
        "accuracy": float(tp.sum() / max(1, matrix.sum())),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                    "support": int(actual[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": matrix.tolist(),
    }


def save_confusion_png(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix, dtype=np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=110)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true class")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def model_labels(model_path: Path, labels: Sequence[str] | str | None = None) -> tuple[Any, dict[str, Any]]:
    """The label spec to score ``model_path`` with, and the ``load_dataset`` options its run recorded.

    ``labels`` (``--labels``) wins; else the run's dataset.json beside the model; else FER2013.
    """
    from train.labels import FER2013_LABELS, parse_label_spec
    from train.run_info import read_dataset_info, recorded_options

    info = read_dataset_info(model_path)
    options = recorded_options(info)
    if labels is not None:
        return parse_label_spec(labels), options
    recorded = info.get("labels")
    if isinstance(recorded, list) and recorded:
        return parse_label_spec(recorded), options
    return FER2013_LABELS, options


def validation_split(model_path: Path, data: str | Path, votes: str | Path | None = None) -> Any:
    """The run's own validation images, re-drawn from its config (seed, fraction, loading) on ``data``.

    Choices such as test-time flips are made here, never on the test split. ``votes`` (FER+ votes
    for the training split) are matched to every image of the pool before the split is drawn.
    """
    return validation_parts(model_path, data, votes)[1]


def validation_parts(model_path: Path, data: str | Path, votes: str | Path | None = None) -> tuple[Any, Any]:
    """(the run's training part as the pool was split, its validation split): see ``validation_split``."""
    import dataclasses

    from train.config import load_config
    from train.run_info import run_file
    from train.run_data import prepare_data, split_seed

    path = run_file(model_path, "config.toml")
    if path is None:
        raise TrainError(f"--split val needs the run's config beside {model_path} (config.toml or "
                         f"{Path(model_path).stem}.config.toml)")
    config = load_config(path, [f"data.dir={data}"] + ([f"data.votes={votes}"] if votes else []))
    if config.data.val_fraction == 0:
        raise TrainError(f"{model_path} was refitted on every training image (data.val_fraction = 0): "
                         "it has no validation split to score")
    train, val = prepare_data(config, training=False)
    return train, dataclasses.replace(val, source=f"{val.source} (the run's validation split, "
                                                   f"{config.data.val_fraction:g}, seed {split_seed(config)})")


def votes_data(model_path: Path, data: str | Path, split: str, votes: str | Path,
               labels: Sequence[str] | str | None = None) -> tuple[Any, np.ndarray | None]:
    """The split to score with FER+ ``votes`` matched to its images, and the training images its
    duplicates are found among (the training split for test, the run's training part for val)."""
    if split == "val":
        train, val = validation_parts(model_path, data, votes)
        return val, train.images
    spec, options = model_labels(model_path, labels)
    dataset = load_dataset(data, split, spec, **options).with_votes(votes)
    reference = None if split == "train" else load_dataset(data, "train", spec, **options).images
    return dataset, reference


def vote_scores(dataset: Any, predicted: np.ndarray, reference: np.ndarray | None) -> dict[str, Any]:
    """``ferplus.vote_figures`` for ``dataset`` (with votes), the duplicates of ``reference`` left out too."""
    from train.duplicates import duplicates_of
    from train.ferplus import vote_figures

    duplicates = None if reference is None else duplicates_of(dataset.images, reference)
    figures = vote_figures(dataset.targets, predicted, dataset.votes, dataset.labels, duplicates)
    return {"votes": dataset.info["votes"]["file"], "votes_sha256": dataset.info["votes"]["sha256"], **figures}


def _load_for_evaluation(model_path: Path, data: str | Path, split: str,
                         labels: Sequence[str] | str | None, dataset: Any | None = None,
                         crop_faces: bool = False) -> tuple[Any, Any]:
    if dataset is None:
        spec, options = model_labels(model_path, labels)
        if crop_faces:  # whole photos (the portraits): the edge's Haar detector finds the face first
            options = {**options, "crop_faces": True}
        if split == "val":
            dataset = validation_split(model_path, data)
        else:
            dataset = load_dataset(data, split, spec, **options)
    model = load_keras_model(model_path)
    num_outputs = int(model.output_shape[-1])
    if num_outputs != len(dataset.labels):
        raise TrainError(f"{model_path} has {num_outputs} outputs but the data has {len(dataset.labels)} classes "
                         f"({', '.join(dataset.labels)}); give the model's labels with --labels")
    return dataset, model


def _report(model_path: Path | str, dataset: Any, probs: np.ndarray, views: int, out: Path | None,
            ferplus: dict[str, Any] | None = None, name: str | None = None) -> Report:
    """``name`` (``fer2013/test``) stands for the data in the report and what ``out`` receives, in place of
    where it sits on this machine: what ships beside a model names no folder of the machine that made it."""
    scores = score(dataset.targets, probs.argmax(axis=1), dataset.labels)
    report = Report(str(model_path), name or dataset.source, len(dataset), dataset.labels, scores["accuracy"],
                    scores["macro_f1"], scores["per_class"], scores["confusion_matrix"], views, ferplus,
                    dataset.fingerprint())
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        (out / "confusion_matrix.json").write_text(
            json.dumps({"labels": list(dataset.labels), "rows": "true", "columns": "predicted",
                        "matrix": scores["confusion_matrix"]}, indent=2) + "\n")
        save_confusion_png(scores["confusion_matrix"], dataset.labels, out / "confusion_matrix.png",
                           f"{Path(model_path).name} on {report.data}\naccuracy {report.accuracy:.4f}")
    return report


def evaluate_model(model_path: Path | str, data: str | Path, split: str = "test", out: Path | None = None,
                   tta: bool = False, labels: Sequence[str] | str | None = None, views: int = 1,
                   votes: str | Path | None = None, crop_faces: bool = False) -> Report:
    """Score one model, or an ensemble (``a.keras,b.keras``: the members' probabilities averaged).

    ``views`` averages each model over mirrored and shifted copies of every face (``tta`` is 2 views).
    Neither ships in one forward pass, which makes these the figures a distillation teacher
    (``train.teacher``, ``train.teacher_views``) offers its student.
    """
    from train.keras_io import teacher_paths
    from train.views import averaged_predictions

    paths = teacher_paths(str(model_path))
    views = max(views, 2 if tta else 1)
    if out is not None:  # found out before scoring, not after
        output_folder(out, "metrics.json and the confusion matrix")
    dataset = reference = None
    if votes:
        dataset, reference = votes_data(paths[0], data, split, votes, labels)
    if crop_faces and (votes or split == "val"):
        raise TrainError("--crop-faces scores photos of your own; it does not go with --votes or --split val")
    dataset, model = _load_for_evaluation(paths[0], data, split, labels, dataset, crop_faces)
    members = [model] + [_load_for_evaluation(path, data, split, labels, dataset)[1] for path in paths[1:]]
    if split == "val" and len(paths) > 1:
        _same_validation_split(paths)
    probs = sum(averaged_predictions(member, dataset.images, views).astype(np.float64) for member in members)
    ferplus = vote_scores(dataset, probs.argmax(axis=1), reference) if votes else None
    return _report(model_path, dataset, probs / len(members), views, out, ferplus)


def _same_validation_split(paths: Sequence[Path]) -> None:
    """An ensemble is scored on validation only where every member held out the same images."""
    from train.run_info import read_dataset_info

    fingerprints = {read_dataset_info(path).get("val_fingerprint") for path in paths}
    if len(fingerprints) > 1 or None in fingerprints:
        raise TrainError(f"--split val scores an ensemble only when every model's run held out the same validation "
                         f"images (dataset.json val_fingerprint); {', '.join(map(str, paths))} do not")


def evaluate_with_and_without_flips(model_path: Path, data: str | Path, split: str = "test",
                                    out: Path | None = None, dataset: Any | None = None,
                                    name: str | None = None) -> tuple[Report, Report]:
    """Both figures a model card shows, from one load of the data and the model and one pass each way.

    ``out`` receives the plain (deployed) figures; flip TTA is reported, not shipped. ``dataset``,
    when the caller has already decoded the split, saves decoding it again. ``name`` is the data's
    name the reports and ``out`` give instead of its path (``train.data_location.data_name``).
    """
    dataset, model = _load_for_evaluation(model_path, data, split, None, dataset)
    plain = predict_probs(model, dataset.images)
    flipped = predict_probs(model, dataset.images[:, :, ::-1])
    return (_report(model_path, dataset, plain, 1, out, name=name),
            _report(model_path, dataset, (plain + flipped) / 2, 2, None, name=name))


def format_report(report: Report) -> str:
    lines = [
        f"model     {report.model}",
        f"data      {report.data} ({report.images} images{_views_note(report.views)})",
        f"accuracy  {report.accuracy:.4f}",
        f"macro-F1  {report.macro_f1:.4f}",
        f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}",
    ]
    for label, values in report.per_class.items():
        lines.append(f"{label:<10} {values['precision']:>9.4f} {values['recall']:>7.4f} {values['f1']:>7.4f} "
                     f"{values['support']:>8}")
    if report.ferplus is not None:
        from train.ferplus import format_figures

        lines.append(f"FER+ votes      {report.ferplus['votes']} (sha256 {report.ferplus['votes_sha256'][:12]})")
        lines += format_figures(report.ferplus)
    return "\n".join(lines)


def _views_note(views: int) -> str:
    return "" if views == 1 else ", flip TTA" if views == 2 else f", {views} mirrored and shifted views"
