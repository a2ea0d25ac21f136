"""FER+ votes (Barsoum et al., 2016): ten annotators' votes per FER2013 image, read and checked.

FER2013's single labels disagree with most of its ten FER+ annotators on about two images in five,
so the votes serve twice: as soft training targets mixed with the original label, and as a second
yardstick (agreement with FER+'s majority label, and the share of annotators who chose what the
model predicts). Numpy only: training, evaluation and the benchmarks all read the same rows the
same way, and none of them needs TensorFlow for it.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from train.errors import DataError

# the votes file's columns, in its order (github.com/microsoft/FERPlus fer2013new.csv, minus Usage and name)
COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
HEADER = ("file",) + COLUMNS
# FER2013's class names -> the FER+ column holding the same emotion (contempt, unknown, NF have none)
FER2013_COLUMN = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
                  "sad": "sadness", "surprise": "surprise", "neutral": "neutral"}
ANNOTATORS = 10
NOT_A_FACE = COLUMNS.index("NF")
UNCLEAR = -1  # FER+'s majority rule found no majority (its "unknown")


@dataclass(frozen=True)
class Votes:
    """A votes file: ``counts`` (rows, 10) in ``COLUMNS`` order, row ``i`` for image ``files[i]``."""

    path: str
    sha256: str
    files: tuple[str, ...]
    counts: np.ndarray
    lines: tuple[int, ...]  # the file's line number of each row, for messages

    def for_images(self, names: Sequence[str] | None, source: str) -> np.ndarray:
        """The (N, 10) votes of images ``names`` (paths like ``train/angry/x.jpg``), every one checked.

        A votes file covers exactly one split: an image without a row, or a row naming no image of the
        split, is an error naming the file and the row, never a silently partial set of targets.
        """
        if names is None:
            raise DataError(f"votes file {self.path}: {source} has no image file names to match its 'file' "
                            f"column (give the data as Kaggle's folders)")
        index = {name: i for i, name in enumerate(names)}
        order = np.full(len(names), -1, dtype=np.int64)
        for row, name in enumerate(self.files):
            image = index.get(name)
            if image is None:
                raise DataError(f"votes file {self.path} row {self.lines[row]}: unknown image {name} "
                                f"(not in {source})")
            order[image] = row
        missing = np.flatnonzero(order < 0)
        if missing.size:
            raise DataError(f"votes file {self.path}: no row for image {names[int(missing[0])]} of {source} "
                            f"({missing.size} images without votes)")
        return self.counts[order]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_votes(path: str | Path) -> Votes:
    """The votes CSV at ``path`` (header ``file,neutral,...,NF``), each row checked."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"votes file {path} does not exist")
    files: list[str] = []
    counts: list[list[int]] = []
    lines: list[int] = []
    seen: dict[str, int] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != HEADER:
                raise DataError(f"votes file {path} row 1: expected columns {','.join(HEADER)}, got "
                                f"{','.join(header or [])[:200] or 'nothing'}")
            for row in reader:
                line = reader.line_num
                if not row or not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(HEADER):
                    raise DataError(f"votes file {path} row {line}: expected {len(HEADER)} fields, got {len(row)}")
                name = row[0].strip()
                try:
                    values = [int(cell) for cell in row[1:]]
                except ValueError:
                    raise DataError(f"votes file {path} row {line}: votes must be whole numbers") from None
                total = sum(values)
                if min(values) < 0 or total not in (ANNOTATORS, ANNOTATORS - 1):
                    raise DataError(f"votes file {path} row {line}: votes add up to {total}; each row holds "
                                    f"{ANNOTATORS} annotators' votes ({ANNOTATORS - 1} where FER+ lost one), "
                                    f"none negative")
                if name in seen:
                    raise DataError(f"votes file {path} row {line}: image {name} already has votes in row {seen[name]}")
                seen[name] = line
                files.append(name)
                counts.append(values)
                lines.append(line)
    except UnicodeDecodeError:
        raise DataError(f"votes file {path} is not a UTF-8 text CSV") from None
    except csv.Error as exc:
        raise DataError(f"votes file {path}: {exc}") from None
    except OSError as exc:
        raise DataError(f"cannot read votes file {path}: {exc.strerror or exc}") from None
    if not files:
        raise DataError(f"votes file {path} has no rows")
    return Votes(str(path), file_sha256(path), tuple(files), np.asarray(counts, dtype=np.int64), tuple(lines))


def majority(counts: np.ndarray) -> np.ndarray:
    """FER+'s majority label per row: a ``COLUMNS`` index, or ``UNCLEAR``.

    As FER+'s reference code does it: single votes are dropped as outliers, then the most-voted
    column must hold more than half of the votes left, otherwise the image is unclear.
    """
    kept = np.where(counts > 1, counts, 0)
    top = kept.argmax(axis=1)
    peak = kept.max(axis=1)
    clear = (peak > 0) & (2 * peak > kept.sum(axis=1))
    return np.where(clear, top, UNCLEAR)


def columns_for(labels: Sequence[str]) -> np.ndarray:
    """For each class of ``labels`` (FER2013 names in the model's order), its FER+ column index."""
    unknown = [label for label in labels if label not in FER2013_COLUMN]
    if unknown:
        raise DataError(f"FER+ votes score FER2013's classes; {', '.join(unknown)} is not one of "
                        f"{', '.join(FER2013_COLUMN)}")
    return np.asarray([COLUMNS.index(FER2013_COLUMN[label]) for label in labels], dtype=np.int64)


def not_a_face(counts: np.ndarray) -> np.ndarray:
    """Rows FER+'s majority rule calls not a face: left out of training."""
    return majority(counts) == NOT_A_FACE


def vote_distribution(counts: np.ndarray, labels: Sequence[str], targets: np.ndarray) -> np.ndarray:
    """The votes over ``labels``' classes, renormalised; the label's one-hot where none went to them.

    Votes for contempt, unknown and not-a-face have no FER2013 class and are left out (the FER+
    README's "keep the seven shared columns and renormalise").
    """
    shared = counts[:, columns_for(labels)].astype(np.float64)
    totals = shared.sum(axis=1, keepdims=True)
    onehot = np.eye(len(labels))[targets]
    return np.where(totals > 0, shared / np.maximum(totals, 1), onehot).astype(np.float32)


def label_targets(targets: np.ndarray, counts: np.ndarray, labels: Sequence[str], mix: float) -> np.ndarray:
    """``mix`` of the vote distribution plus the rest on the original label (0: the label, 1: the votes)."""
    onehot = np.eye(len(labels), dtype=np.float32)[targets]
    return ((1.0 - mix) * onehot + mix * vote_distribution(counts, labels, targets)).astype(np.float32)


def agreement(predicted: np.ndarray, counts: np.ndarray, labels: Sequence[str]) -> dict[str, float | int]:
    """How predictions (class indices into ``labels``) agree with the annotators.

    ``agreement``: share of images whose FER+ majority label is one of ``labels``' classes (rows
    that are contempt, unclear or not a face are left out) on which the prediction is that label.
    ``annotator_share``: over every image, the mean share of its annotators who voted for the
    predicted class.
    """
    columns = columns_for(labels)
    winner = majority(counts)
    predicted_column = columns[np.asarray(predicted, dtype=np.int64)]
    scored = np.isin(winner, columns)
    totals = np.maximum(counts.sum(axis=1), 1)
    chosen = counts[np.arange(len(counts)), predicted_column]
    return {
        "agreement": float((predicted_column[scored] == winner[scored]).mean()) if scored.any() else 0.0,
        "agreement_images": int(scored.sum()),
        "annotator_share": float((chosen / totals).mean()) if len(counts) else 0.0,
        "images": int(len(counts)),
    }


def vote_figures(targets: np.ndarray, predicted: np.ndarray, counts: np.ndarray, labels: Sequence[str],
                 duplicates: np.ndarray | None = None) -> dict[str, object]:
    """Accuracy on the original labels beside the annotators' figures (``agreement``), and all of
    them again without the images flagged in ``duplicates`` (test faces a model may have trained on)."""
    targets, predicted = np.asarray(targets), np.asarray(predicted)

    def figures(keep: np.ndarray) -> dict[str, float | int]:
        scored = agreement(predicted[keep], counts[keep], labels)
        return {"accuracy": float((predicted[keep] == targets[keep]).mean()) if keep.any() else 0.0, **scored}

    result: dict[str, object] = dict(figures(np.ones(len(targets), dtype=bool)))
    if duplicates is not None:
        duplicates = np.asarray(duplicates, dtype=bool)
        result["without_duplicates"] = {"left_out": int(duplicates.sum()), **figures(~duplicates)}
    return result


def format_figures(figures: dict[str, object], what: str = "images that duplicate a training image") -> list[str]:
    """The lines ``fer-train evaluate --votes`` prints."""
    lines = [f"FER+ agreement  {figures['agreement']:.4f} (majority label, {figures['agreement_images']} images; "
             f"contempt, unclear and not-a-face left out)",
             f"annotator share {figures['annotator_share']:.4f} (mean share of the annotators who chose the prediction)"]
    clean = figures.get("without_duplicates")
    if isinstance(clean, dict):
        lines.append(f"without the {clean['left_out']} {what} ({clean['images']} images): accuracy "
                     f"{clean['accuracy']:.4f}, FER+ agreement {clean['agreement']:.4f}, annotator share "
                     f"{clean['annotator_share']:.4f}")
    return lines
