"""A data set's shape before any pixel is decoded: splits, classes and items, and how a split is chosen.

Folders, zips and CSV files all become a ``Tree`` (split -> class -> items), so the rules users
meet are the same whatever form their data has: every split holds the same classes, no class is
empty, there are at least two classes, and data without a test split gets a seeded, stratified
one. The test split is a pure function of the item list, the fraction and the seed, so fer-train,
fer-train evaluate, fer-convert and fer-bench all hold out the same images.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

from train.errors import DataError
from train.labels import AUTO, FER2013_LABELS, LabelSpec, is_fer2013

T = TypeVar("T")
Tree = dict[str, dict[str, list[Any]]]  # split ("" when the data has no splits) -> class -> items in order
POOL = ""
DEFAULT_TEST_FRACTION = 0.1
SPLIT_SEED = 20240229  # fixed, not train.seed: changing the training seed must not move test images into training
SPLIT_ALIASES = {"training": "train", "train": "train", "publictest": "test", "test": "test", "testing": "test",
                 "privatetest": "private", "private": "private", "val": "val", "valid": "val", "validation": "val"}


def split_name(value: str) -> str:
    """Kaggle's and FER2013's spellings of a split (Training, PublicTest, Test, ...) as train/test/private/val."""
    key = value.strip().lower()
    return SPLIT_ALIASES.get(key, key)


def check_not_empty(tree: Tree, where: str) -> None:
    for split, classes in tree.items():
        for name, items in classes.items():
            if not items:
                place = f"{where}/{split}/{name}" if split else f"{where}/{name}"
                raise DataError(f"class folder {place} is empty")


def resolve_labels(tree: Tree, spec: LabelSpec, where: str) -> tuple[str, ...]:
    """The label order for ``spec``, after checking that every split holds the same classes."""
    found = {split: set(classes) for split, classes in tree.items()}
    if is_fer2013(spec):
        unknown = sorted(set().union(*found.values()) - set(FER2013_LABELS))
        if unknown:
            raise DataError(f"unknown class(es) {', '.join(unknown)} in {where}; expected some of: "
                            f"{', '.join(FER2013_LABELS)} (set data.labels = \"auto\" for your own classes)")
        return FER2013_LABELS
    splits = sorted(found, key=lambda s: (s != "train", s))
    reference = splits[0]
    for other in splits[1:]:
        if found[other] != found[reference]:
            only_ref = sorted(found[reference] - found[other])
            only_other = sorted(found[other] - found[reference])
            parts = [f"only in {name}: {', '.join(names)}" for name, names in
                     ((reference, only_ref), (other, only_other)) if names]
            raise DataError(f"mixed label sets in {where}: {reference} and {other} have different classes "
                            f"({'; '.join(parts)})")
    names = found[reference] if found else set()
    if spec == AUTO:
        labels = tuple(sorted(names))
    else:
        labels = tuple(spec)
        missing, extra = sorted(set(labels) - names), sorted(names - set(labels))
        if missing or extra:
            parts = ([f"listed but not found: {', '.join(missing)}"] if missing else []) + \
                    ([f"found but not listed: {', '.join(extra)}"] if extra else [])
            raise DataError(f"classes in {where} differ from the expected labels {','.join(labels)} "
                            f"({'; '.join(parts)})")
    if len(labels) < 2:
        what = f"one class ({labels[0]})" if labels else "no classes"
        raise DataError(f"{where} has {what}: a classifier needs at least 2 class folders")
    return labels


def held_out(counts: dict[str, int], labels: tuple[str, ...], fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Per class, the positions (into that class's item list) that form the generated test split.

    One permutation per class, drawn in label order from one seeded generator; the first
    ``round(n * fraction)`` positions are test. A larger fraction therefore holds out a superset
    of a smaller one, so a tool using the default fraction never tests on images a run with a
    larger fraction trained on.
    """
    rng = np.random.default_rng(seed)
    chosen: dict[str, np.ndarray] = {}
    for label in labels:
        n = counts.get(label, 0)
        order = rng.permutation(n)
        k = int(round(n * fraction))
        if fraction > 0 and n > 1:
            k = min(n - 1, max(1, k))
        chosen[label] = np.sort(order[:k])
    return chosen


def choose_split(tree: Tree, split: str, labels: tuple[str, ...], where: str, test_fraction: float,
                 seed: int = SPLIT_SEED, generate: bool = True) -> tuple[list[tuple[Any, int]], dict[str, Any]]:
    """The items of ``split`` with their targets, and a note of how the split was made.

    When the data has no test split and ``generate`` is set, train and test come from the train
    split (or the whole pool) by ``held_out``.
    """
    index = {label: i for i, label in enumerate(labels)}
    if split in tree and not (split == "train" and "test" not in tree and generate and test_fraction > 0):
        return [(item, index[name]) for name in sorted(tree[split]) for item in tree[split][name]], {}
    if not generate and set(tree) == {POOL}:  # FER2013 mode: a folder without splits is one split given directly
        return [(item, index[name]) for name in sorted(tree[POOL]) for item in tree[POOL][name]], {}
    pool_name = "train" if "train" in tree else POOL if POOL in tree else None
    if pool_name is None or split not in ("train", "test") or "test" in tree or not generate:
        present = ", ".join(s or "(none)" for s in sorted(tree))
        raise DataError(f"{where} has no '{split}' split (splits found: {present})")
    pool = tree[pool_name]
    if split == "test" and test_fraction <= 0:
        raise DataError(f"{where} has no test split and data.test_fraction is 0: set it to hold one out")
    test_positions = held_out({name: len(items) for name, items in pool.items()}, labels, test_fraction, seed)
    items: list[tuple[Any, int]] = []
    for name in sorted(pool):
        is_test = np.zeros(len(pool[name]), dtype=bool)
        is_test[test_positions[name]] = True
        items.extend((item, index[name]) for item, t in zip(pool[name], is_test) if t == (split == "test"))
    note = {"generated_test_split": {"from": pool_name or "all images", "fraction": test_fraction, "seed": seed}}
    return items, note
