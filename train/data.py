"""Load FER2013 from any of the three forms users have: Kaggle folders, Kaggle's zip, fer2013.csv.

Everything is turned into 48x48 uint8 greyscale arrays with integer labels in one fixed order,
so the rest of training never cares which form the data came in.
"""

from __future__ import annotations

import csv
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from train.errors import DataError
from train.labels import FER2013_LABELS, IMAGE_SIZE

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm"}
CSV_USAGE = {"train": "Training", "test": "PublicTest", "private": "PrivateTest"}


@dataclass(frozen=True)
class Dataset:
    """Images (N, 48, 48) uint8 and labels (N,) int64 indexing ``labels``."""

    images: np.ndarray
    targets: np.ndarray
    labels: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.targets, minlength=len(self.labels))
        return {label: int(c) for label, c in zip(self.labels, counts)}

    def fingerprint(self) -> str:
        """sha256 of pixels and labels: the same data gives the same value in any of the three forms."""
        digest = hashlib.sha256()
        digest.update(",".join(self.labels).encode())
        digest.update(np.ascontiguousarray(self.targets, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(self.images, dtype=np.uint8).tobytes())
        return digest.hexdigest()

    def subset(self, index: np.ndarray) -> "Dataset":
        return Dataset(self.images[index], self.targets[index], self.labels, self.source)


def to_face_array(image: np.ndarray) -> np.ndarray:
    """Any size or colour to 48x48 greyscale uint8, the one transform training and the edge share."""
    import cv2

    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code) if image.shape[2] in (3, 4) else image[:, :, 0]
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        interpolation = cv2.INTER_AREA if min(image.shape) > IMAGE_SIZE else cv2.INTER_LINEAR
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=interpolation)
    return image


def decode_image(data: bytes, name: str) -> np.ndarray:
    import cv2

    buffer = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    if image is None:
        raise DataError(f"cannot decode image {name}: corrupt or not an image")
    return to_face_array(image)


def _check_labels(found: Iterable[str], where: str, labels: tuple[str, ...]) -> None:
    unknown = sorted(set(found) - set(labels))
    if unknown:
        raise DataError(
            f"unknown class folder(s) {', '.join(unknown)} in {where}; expected some of: {', '.join(labels)}"
        )


def _stack(items: list[tuple[np.ndarray, int]], labels: tuple[str, ...], source: str) -> Dataset:
    if not items:
        raise DataError(f"no images found in {source}")
    images = np.stack([image for image, _ in items]).astype(np.uint8)
    targets = np.asarray([target for _, target in items], dtype=np.int64)
    return Dataset(images, targets, labels, source)


def load_folder(root: Path, labels: tuple[str, ...] = FER2013_LABELS) -> Dataset:
    """A folder of ``<class>/<image>`` files (one split of Kaggle's layout)."""
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"data folder {root} has no class folders (expected {root}/<class>/*.jpg)")
    _check_labels((p.name for p in class_dirs), str(root), labels)
    items: list[tuple[np.ndarray, int]] = []
    for class_dir in class_dirs:
        target = labels.index(class_dir.name)
        for path in sorted(class_dir.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                items.append((decode_image(path.read_bytes(), str(path)), target))
    return _stack(items, labels, str(root))


def _zip_members(archive: zipfile.ZipFile, split: str) -> Iterator[tuple[zipfile.ZipInfo, str]]:
    """Members under ``.../<split>/<class>/<file>`` at whatever depth the zip nests them."""
    for info in archive.infolist():
        if info.is_dir():
            continue
        parts = Path(info.filename).parts
        if "__MACOSX" in parts or len(parts) < 3 or parts[-3] != split:
            continue
        if Path(parts[-1]).suffix.lower() in IMAGE_SUFFIXES:
            yield info, parts[-2]


def load_zip(path: Path, split: str, labels: tuple[str, ...] = FER2013_LABELS) -> Dataset:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"cannot open zip {path}: {exc}") from None
    with archive:
        members = list(_zip_members(archive, split))
        if not members:
            raise DataError(f"zip {path} has no '{split}/<class>/' images")
        _check_labels((name for _, name in members), f"{path}:{split}/", labels)
        items = [
            (decode_image(archive.read(info), f"{path}:{info.filename}"), labels.index(name))
            for info, name in sorted(members, key=lambda m: m[0].filename)
        ]
    return _stack(items, labels, f"{path}:{split}")


def load_csv(path: Path, split: str, labels: tuple[str, ...] = FER2013_LABELS) -> Dataset:
    """The original ``fer2013.csv``: ``emotion,pixels,Usage`` with 2304 space-separated pixels."""
    if split not in CSV_USAGE:
        raise DataError(f"unknown split '{split}' for {path}; choose one of {', '.join(CSV_USAGE)}")
    usage = CSV_USAGE[split]
    items: list[tuple[np.ndarray, int]] = []
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["emotion", "pixels", "Usage"]:
            raise DataError(f"{path}: expected header 'emotion,pixels,Usage', got {header!r}")
        for row_number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 3:
                raise DataError(f"{path} row {row_number}: expected 3 fields, got {len(row)}")
            if row[2].strip() != usage:
                continue
            try:
                target = int(row[0])
                pixels = np.array(row[1].split(), dtype=np.int64)
            except ValueError:
                raise DataError(f"{path} row {row_number}: emotion and pixels must be integers") from None
            if not 0 <= target < len(labels):
                raise DataError(f"{path} row {row_number}: emotion {target} outside 0..{len(labels) - 1}")
            if pixels.size != IMAGE_SIZE * IMAGE_SIZE or pixels.min() < 0 or pixels.max() > 255:
                raise DataError(
                    f"{path} row {row_number}: expected {IMAGE_SIZE * IMAGE_SIZE} pixels in 0..255, got {pixels.size}"
                )
            items.append((pixels.reshape(IMAGE_SIZE, IMAGE_SIZE).astype(np.uint8), target))
    return _stack(items, labels, f"{path}:{usage}")


def load_dataset(path: str | Path, split: str = "train", labels: tuple[str, ...] = FER2013_LABELS) -> Dataset:
    """Load ``split`` from a Kaggle folder (root or the split itself), a zip, or fer2013.csv."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"data path {path} does not exist")
    if path.is_file():
        if path.suffix.lower() == ".zip":
            return load_zip(path, split, labels)
        if path.suffix.lower() == ".csv":
            return load_csv(path, split, labels)
        raise DataError(f"{path}: expected a folder, a .zip or fer2013.csv")
    if (path / split).is_dir():
        return load_folder(path / split, labels)
    if (path / "fer2013.csv").is_file():
        return load_csv(path / "fer2013.csv", split, labels)
    return load_folder(path, labels)


def stratified_split(targets: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): each class keeps its share, and the same seed gives the same split."""
    rng = np.random.default_rng(seed)
    train_index: list[np.ndarray] = []
    val_index: list[np.ndarray] = []
    for cls in np.unique(targets):
        members = np.flatnonzero(targets == cls)
        rng.shuffle(members)
        n_val = int(round(len(members) * fraction))
        if fraction > 0 and len(members) > 1:
            n_val = max(1, n_val)
        val_index.append(members[:n_val])
        train_index.append(members[n_val:])
    return np.sort(np.concatenate(train_index)), np.sort(np.concatenate(val_index))

