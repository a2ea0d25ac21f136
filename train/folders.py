"""Folder-per-class data sets (a folder or a zip) as a ``layout.Tree`` of image references.

Two layouts are recognised: split folders (``root/train/<class>/``, ``root/test/<class>/``, any
capitalisation, Kaggle's ``Training``/``Testing`` too) and a bare ``root/<class>/`` with no
splits. Nothing is decoded here, so listing a large data set and checking its classes is quick.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from train.image_io import IMAGE_SUFFIXES, zip_images
from train.errors import DataError
from train.layout import POOL, SPLIT_ALIASES, Tree, split_name


@dataclass(frozen=True)
class ImageRef:
    """One image file, read only when its split is chosen."""

    name: str
    read: Callable[[], bytes]


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX")


def _class_folders(folder: Path) -> dict[str, list[ImageRef]]:
    classes: dict[str, list[ImageRef]] = {}
    for class_dir in _visible_dirs(folder):
        files = sorted(p for p in class_dir.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        classes[class_dir.name] = [ImageRef(str(p), p.read_bytes) for p in files]
    return classes


def is_split_layout(root: Path) -> bool:
    return any(split_name(p.name) in ("train", "test") for p in _visible_dirs(root))


def folder_tree(root: Path) -> Tree:
    """``split -> class -> images`` for split folders, or ``"" -> class -> images`` for a bare class folder."""
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    dirs = _visible_dirs(root)
    if not dirs:
        raise DataError(f"data folder {root} has no class folders (expected {root}/<class>/*.jpg)")
    if is_split_layout(root):
        tree: Tree = {}
        for split_dir in dirs:
            split = split_name(split_dir.name)
            if split not in SPLIT_ALIASES.values():
                raise DataError(f"{split_dir}: unexpected folder beside the split folders (train, test, val)")
            if split in tree:
                raise DataError(f"{root} has two folders for the {split} split")
            tree[split] = _class_folders(split_dir)
            if not tree[split]:
                raise DataError(f"split folder {split_dir} has no class folders")
        return tree
    return {POOL: _class_folders(root)}


def zip_tree(path: Path) -> Tree:
    """The same layouts inside a zip, at whatever depth it nests them."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"cannot open zip {path}: {exc}") from None
    with archive:
        members = zip_images(archive)
    split_layout = any(len(parts) >= 3 and split_name(parts[-3]) in ("train", "test") for _, parts in members)
    source = _ZipSource(path)
    tree: Tree = {}
    for filename, parts in sorted(members):
        split = split_name(parts[-3]) if split_layout and len(parts) >= 3 else POOL
        if split_layout and split not in SPLIT_ALIASES.values():
            continue
        tree.setdefault(split, {}).setdefault(parts[-2], []).append(
            ImageRef(f"{path}:{filename}", lambda name=filename: source.read(name)))
    if not tree:
        raise DataError(f"zip {path} has no '<class>/' or '<split>/<class>/' images")
    return tree


class _ZipSource:
    """Opens the archive once, on the first read, for all of its members."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._archive: zipfile.ZipFile | None = None

    def read(self, name: str) -> bytes:
        from train.image_io import read_member

        if self._archive is None:
            self._archive = zipfile.ZipFile(self.path)
        return read_member(self._archive, name, self.path)
