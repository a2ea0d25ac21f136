"""Load a labelled face data set: FER2013 in its three forms (Kaggle folders, Kaggle's zip,
fer2013.csv), or the user's own folder-per-class data, zip or CSV with its own classes.

Everything is turned into 48x48 uint8 greyscale arrays with integer labels in one order, so the
rest of training never cares which form the data came in. FER2013's fixed label order is the
default and keeps the original loaders exactly (the shipped run resumes on this code); the
``auto`` and explicit label modes go through ``layout``, which checks the classes and generates
a test split when the data has none.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from train.errors import DataError
from train.image_io import (  # noqa: F401  (re-exported: loaders, tests and benchmarks import them from here)
    IMAGE_SUFFIXES, Decode, ImageDecoder, csv_rows, decode_image, read_image, read_member, to_8bit, to_face_array,
    zip_images)
from train.labels import FER2013_LABELS, IMAGE_SIZE, LabelSpec, is_fer2013, parse_label_spec
from train.layout import DEFAULT_TEST_FRACTION, SPLIT_SEED, split_name

if TYPE_CHECKING:  # the CSV module is imported where it is used
    from train.csv_data import CsvColumns

CSV_USAGE = {"train": "Training", "test": "PublicTest", "private": "PrivateTest"}


@dataclass(frozen=True)
class Dataset:
    """Images (N, 48, 48) uint8 and labels (N,) int64 indexing ``labels``."""

    images: np.ndarray
    targets: np.ndarray
    labels: tuple[str, ...]
    source: str
    sizes: np.ndarray | None = None  # (N, 2) height and width before conversion, for the data report
    info: Mapping[str, Any] = field(default_factory=dict)  # how it was made: generated split, face cropping
    # each image's path as ``<split folder>/<class>/<file>`` (folder data only), what a votes file names
    names: tuple[str, ...] | None = None
    votes: np.ndarray | None = None  # (N, 10) FER+ votes per image (train.ferplus.COLUMNS), when given

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
        sizes = None if self.sizes is None else self.sizes[index]
        names = None if self.names is None else tuple(self.names[int(i)] for i in np.arange(len(self))[index])
        votes = None if self.votes is None else self.votes[index]
        return Dataset(self.images[index], self.targets[index], self.labels, self.source, sizes, self.info,
                       names, votes)

    def with_votes(self, path: str | Path) -> "Dataset":
        """This data with the FER+ votes file ``path`` matched to its images by file name (all checked)."""
        import dataclasses

        from train.ferplus import read_votes

        votes = read_votes(path)
        info = {**self.info, "votes": {"file": str(path), "sha256": votes.sha256}}
        return dataclasses.replace(self, votes=votes.for_images(self.names, self.source), info=info)


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


def load_folder(root: Path, labels: tuple[str, ...] = FER2013_LABELS, decode: Decode = decode_image) -> Dataset:
    """A folder of ``<class>/<image>`` files (one split of Kaggle's layout)."""
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"data folder {root} has no class folders (expected {root}/<class>/*.jpg)")
    _check_labels((p.name for p in class_dirs), str(root), labels)
    items: list[tuple[np.ndarray, int]] = []
    names: list[str] = []
    for class_dir in class_dirs:
        target = labels.index(class_dir.name)
        for path in sorted(class_dir.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):  # not macOS's ._ files
                image = decode(path.read_bytes(), str(path))
                if image is not None:
                    items.append((image, target))
                    names.append(f"{root.name}/{class_dir.name}/{path.name}")
    dataset = _stack(items, labels, str(root))
    return Dataset(dataset.images, dataset.targets, labels, dataset.source, names=tuple(names))


def _zip_members(archive: zipfile.ZipFile, split: str, path: Path) -> list[tuple[str, str]]:
    """(member, class) under ``.../<split>/<class>/<file>`` at whatever depth the zip nests them.

    Split folders are spelled as the folder loader takes them (``Train/``, ``Training/``,
    ``PublicTest/``); a zip of bare ``<class>/`` folders is the split asked for, as a bare folder is.
    """
    images = zip_images(archive)
    splits = sorted({parts[-3] for _, parts in images
                     if len(parts) >= 3 and split_name(parts[-3]) in ("train", "test", "private", "val")})
    if not splits:
        return [(name, parts[-2]) for name, parts in images]
    chosen = [(name, parts[-2]) for name, parts in images if len(parts) >= 3 and split_name(parts[-3]) == split]
    if not chosen:
        raise DataError(f"zip {path} has no '{split}' split folder (found: {', '.join(splits)})")
    return chosen


def load_zip(path: Path, split: str, labels: tuple[str, ...] = FER2013_LABELS, decode: Decode = decode_image) -> Dataset:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"cannot open zip {path}: {exc}") from None
    with archive:
        members = _zip_members(archive, split, path)
        if not members:
            raise DataError(f"zip {path} has no '<class>/' or '{split}/<class>/' images")
        _check_labels((name for _, name in members), f"{path}:{split}/", labels)
        decoded = [
            (decode(read_member(archive, member, path), f"{path}:{member}"), labels.index(name))
            for member, name in sorted(members)
        ]
        items = [(image, target) for image, target in decoded if image is not None]
    return _stack(items, labels, f"{path}:{split}")


def load_csv(path: Path, split: str, labels: tuple[str, ...] = FER2013_LABELS) -> Dataset:
    """The original ``fer2013.csv``: ``emotion,pixels,Usage`` with 2304 space-separated pixels."""
    if split not in CSV_USAGE:
        raise DataError(f"unknown split '{split}' for {path}; choose one of {', '.join(CSV_USAGE)}")
    usage = CSV_USAGE[split]
    items: list[tuple[np.ndarray, int]] = []
    try:
        handle = path.open(newline="", encoding="utf-8-sig")  # a spreadsheet's byte-order mark is no column name
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv_rows(handle, path)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["emotion", "pixels", "Usage"]:
            raise DataError(f"{path}: expected header 'emotion,pixels,Usage', got {header!r}")
        for row_number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 3 or len(row) > len(header):  # more: an unquoted comma shifted the Usage column
                raise DataError(f"{path} row {row_number}: expected {len(header)} fields, got {len(row)}")
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


def _is_fer2013_csv(path: Path) -> bool:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv_rows(handle, path), None)
    except (OSError, DataError):
        return True  # let load_csv report it
    return header is not None and [h.strip() for h in header[:3]] == ["emotion", "pixels", "Usage"]


def load_dataset(path: str | Path, split: str = "train", labels: str | Sequence[str] = FER2013_LABELS, *,
                 test_fraction: float = DEFAULT_TEST_FRACTION, split_seed: int = SPLIT_SEED,
                 crop_faces: bool = False, no_face: str = "keep",
                 csv_columns: "CsvColumns | None" = None) -> Dataset:
    """Load ``split`` from a folder (split folders, a bare ``<class>/`` folder, or one split given
    directly), a zip, or a CSV.

    ``labels`` is ``"fer2013"`` (FER2013's fixed order, the default, loaded exactly as before),
    ``"auto"`` (the sorted class names found) or the class names in output order. With your own
    labels, data without a test split gets one: ``test_fraction`` of each class, chosen by
    ``split_seed``. ``crop_faces`` crops the largest Haar face of each image first.
    """
    spec = parse_label_spec(labels)
    if not str(path).strip():  # Path("") is the current folder, which is no data set
        from train.data_location import WHERE_FROM

        raise DataError(f"no data given; {WHERE_FROM}")  # no --data, FER2013_DIR or data/fer2013/
    try:
        path = Path(path).expanduser()
    except RuntimeError:  # ~someone who does not exist
        raise DataError(f"data path {path}: cannot expand '~' (no such user or no home folder)") from None
    if not path.exists():
        raise DataError(f"data path {path} does not exist")
    cropper = None
    if crop_faces:
        from train.face_crop import FaceCropper

        cropper = FaceCropper(no_face=no_face)
    decoder = ImageDecoder(cropper)
    default_csv = csv_columns is None or csv_columns == _default_columns()
    dataset: Dataset | None = None
    if is_fer2013(spec):
        dataset = _load_fer2013(path, split, decoder, legacy_csv=default_csv and not crop_faces)
    if dataset is None:
        dataset = _load_tree(path, split, spec, decoder, test_fraction, split_seed, csv_columns)
    info = dict(dataset.info)
    if cropper is not None:
        info["crop_faces"] = cropper.summary()
    sizes = np.asarray(decoder.sizes, dtype=np.int64) if len(decoder.sizes) == len(dataset) else None
    return Dataset(dataset.images, dataset.targets, dataset.labels, dataset.source, sizes, info, dataset.names)


def _default_columns() -> "CsvColumns":
    from train.csv_data import CsvColumns

    return CsvColumns()


def _load_fer2013(path: Path, split: str, decode: Decode, legacy_csv: bool) -> Dataset | None:
    """FER2013's three forms, loaded as they always were; None for a CSV the legacy reader cannot take."""
    if path.is_file():
        if path.suffix.lower() == ".zip":
            return load_zip(path, split, FER2013_LABELS, decode)
        if path.suffix.lower() == ".csv":
            return load_csv(path, split) if legacy_csv and _is_fer2013_csv(path) else None
        raise DataError(f"{path}: expected a folder, a .zip or fer2013.csv")
    if (path / split).is_dir():
        return load_folder(path / split, FER2013_LABELS, decode)
    if (path / "fer2013.csv").is_file():
        csv_path = path / "fer2013.csv"
        return load_csv(csv_path, split) if legacy_csv and _is_fer2013_csv(csv_path) else None
    splits = sorted(p.name for p in path.iterdir()
                    if p.is_dir() and split_name(p.name) in ("train", "test", "private", "val"))
    spelled = [name for name in splits if split_name(name) == split]  # Train/, Training/, PublicTest/
    if len(spelled) == 1:
        return load_folder(path / spelled[0], FER2013_LABELS, decode)
    if splits:  # split folders, just not this one (their names are no class folders to complain about)
        raise DataError(f"{path} has no '{split}' split folder (found: {', '.join(splits)})")
    return load_folder(path, FER2013_LABELS, decode)


def _load_tree(path: Path, split: str, spec: LabelSpec, decoder: ImageDecoder, test_fraction: float,
               split_seed: int, csv_columns: "CsvColumns | None") -> Dataset:
    """Your own classes (or a FER2013-labelled CSV with other columns): list, check, choose the split, decode."""
    from train.csv_data import CsvRow, csv_tree, row_image
    from train.folders import ImageRef, folder_tree, zip_tree
    from train.layout import check_not_empty, choose_split, resolve_labels

    columns = csv_columns or _default_columns()
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".zip":
            tree = zip_tree(path)
        elif suffix == ".csv":
            tree = csv_tree(path, spec, columns)
        else:
            raise DataError(f"{path}: expected a folder, a .zip or a .csv")
    elif (path / "fer2013.csv").is_file() and not any(p.is_dir() for p in path.iterdir()):
        path = path / "fer2013.csv"
        tree = csv_tree(path, spec, columns)
    else:
        tree = folder_tree(path)
    check_not_empty(tree, str(path))
    labels = resolve_labels(tree, spec, str(path))
    chosen, note = choose_split(tree, split, labels, str(path), test_fraction, split_seed,
                                generate=not is_fer2013(spec))
    items: list[tuple[np.ndarray, int]] = []
    for item, target in chosen:
        if isinstance(item, ImageRef):
            image = decoder(item.read(), item.name)
        else:
            assert isinstance(item, CsvRow)
            array, data = row_image(item)
            image = decoder.convert(array) if array is not None else decoder(data or b"", item.where)
        if image is not None:
            items.append((image, target))
    source = f"{path}:{split}" + (f" (generated, {test_fraction:g} of each class)" if note and split == "test" else "")
    dataset = _stack(items, labels, source)
    return Dataset(dataset.images, dataset.targets, labels, source, None, note)


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

