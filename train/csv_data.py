"""A CSV with its own label column: pixels inline (like fer2013.csv) or a path to an image file per row.

Columns are found by name. Empty names in ``CsvColumns`` mean "the usual one": label is
``emotion``, ``label``, ``class`` or ``expression``; pixels is ``pixels``; an image path is
``path``, ``file``, ``filename`` or ``image``; the split is ``Usage`` or ``split`` (optional:
without it a test split is generated). Pixel rows may hold any square image (48x48 for FER2013).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.image_io import csv_rows
from train.errors import DataError
from train.labels import AUTO, FER2013_LABELS, LabelSpec, is_fer2013
from train.layout import POOL, Tree, split_name

LABEL_NAMES = ("emotion", "label", "class", "expression")
PIXEL_NAMES = ("pixels",)
PATH_NAMES = ("path", "file", "filename", "image", "image_path")
SPLIT_NAMES = ("usage", "split")


@dataclass(frozen=True)
class CsvColumns:
    """Column names; empty means the usual names above."""

    label: str = ""
    pixels: str = ""
    path: str = ""
    split: str = ""


@dataclass(frozen=True)
class CsvRow:
    where: str  # "file.csv row 12", for messages
    payload: str  # pixels text, or an image path relative to the CSV's folder
    kind: str  # "pixels" or "path"
    base: Path


def _find(header: list[str], wanted: str, usual: tuple[str, ...], what: str, path: Path,
          required: bool) -> int | None:
    lowered = [h.strip().lower() for h in header]
    if wanted:
        if wanted.strip().lower() not in lowered:
            raise DataError(f"{path}: no column '{wanted}' (columns: {', '.join(header)})")
        return lowered.index(wanted.strip().lower())
    for name in usual:
        if name in lowered:
            return lowered.index(name)
    if required:
        raise DataError(f"{path}: no {what} column (expected one of {', '.join(usual)}; header {','.join(header)!r})")
    return None


def _label_name(value: str, spec: LabelSpec, where: str) -> str:
    value = value.strip()
    if spec == AUTO:
        if not value:
            raise DataError(f"{where}: empty label")
        return value
    names = FER2013_LABELS if is_fer2013(spec) else tuple(spec)
    if value in names:
        return value
    try:
        index = int(value)
    except ValueError:
        raise DataError(f"{where}: label {value!r} is not one of {', '.join(names)}") from None
    if not 0 <= index < len(names):
        raise DataError(f"{where}: emotion {index} outside 0..{len(names) - 1}")
    return names[index]


def csv_tree(path: Path, spec: LabelSpec, columns: CsvColumns = CsvColumns()) -> Tree:
    """Every row, grouped by split and label name; pixels are parsed only for the split used."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")  # a spreadsheet's byte-order mark is no column name
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    tree: Tree = {}
    with handle:
        reader = csv_rows(handle, path)
        header = next(reader, None)
        if not header:
            raise DataError(f"{path} is empty")
        label_i = _find(header, columns.label, LABEL_NAMES, "label", path, True)
        pixels_i = _find(header, columns.pixels, PIXEL_NAMES, "pixels", path, False)
        path_i = _find(header, columns.path, PATH_NAMES, "image path", path, False)
        split_i = _find(header, columns.split, SPLIT_NAMES, "split", path, False)
        if pixels_i is None and path_i is None:
            raise DataError(f"{path}: needs a pixels column or an image path column (header {','.join(header)!r})")
        payload_i, kind = (pixels_i, "pixels") if pixels_i is not None else (path_i, "path")
        needed = 1 + max(i for i in (label_i, payload_i, split_i) if i is not None)
        for row_number, row in enumerate(reader, start=2):
            if not row:
                continue
            where = f"{path} row {row_number}"
            if len(row) < needed or len(row) > len(header):  # more: an unquoted comma shifted the columns
                raise DataError(f"{where}: expected {len(header)} fields, got {len(row)}")
            split = split_name(row[split_i]) if split_i is not None else POOL
            name = _label_name(row[label_i], spec, where)  # type: ignore[index]
            tree.setdefault(split, {}).setdefault(name, []).append(
                CsvRow(where, row[payload_i], kind, path.parent))  # type: ignore[index]
    if not tree:
        raise DataError(f"{path} has no rows")
    return tree


def row_image(row: CsvRow) -> tuple[np.ndarray | None, bytes | None]:
    """A pixel row as a greyscale array, or an image path's bytes (decoded by the caller)."""
    if row.kind == "path":
        file = (row.base / row.payload.strip())
        try:
            return None, file.read_bytes()
        except OSError as exc:
            raise DataError(f"{row.where}: cannot read {file}: {exc.strerror}") from None
    try:
        pixels = np.array(row.payload.split(), dtype=np.int64)
    except ValueError:
        raise DataError(f"{row.where}: emotion and pixels must be integers") from None
    side = math.isqrt(pixels.size)
    if pixels.size == 0 or side * side != pixels.size or pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{row.where}: expected a square image of pixels in 0..255 (like 2304 = 48x48), "
                        f"got {pixels.size} values")
    return pixels.reshape(side, side).astype(np.uint8), None


def describe(row: Any) -> str:
    return row.where if isinstance(row, CsvRow) else str(getattr(row, "name", row))
