"""``fer-train report DATA``: what a data set holds before anyone trains on it.

Class counts, sample faces per class, image sizes before conversion, brightness, and
duplicates within and across splits, written as ``report.md`` with PNG charts and
``report.json`` with the same figures. Duplicates across train and test inflate test accuracy
(FER2013 is known to have them); duplicates with different labels are label noise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from train.data import Dataset, load_dataset
from train.errors import DataError
from train.labels import AUTO, FER2013, parse_label_spec
from train.layout import DEFAULT_TEST_FRACTION
from train.outputs import output_folder

SAMPLES_PER_CLASS = 8
UNIFORM_STD = 2.0  # an image whose pixels vary less than this is blank, not a face


def load_splits(data: str | Path, labels: str, test_fraction: float) -> tuple[dict[str, Dataset], str, list[str]]:
    """Every split the data has (train, test, and private for fer2013.csv), the label mode used, and notes."""
    mode: Any = labels
    if labels == "detect":
        try:
            first = load_dataset(data, "train", FER2013, test_fraction=test_fraction)
            mode = FER2013
        except DataError as exc:
            if "unknown class" not in str(exc):
                raise
            mode = AUTO
            first = load_dataset(data, "train", AUTO, test_fraction=test_fraction)
    else:
        mode = parse_label_spec(labels)
        first = load_dataset(data, "train", mode, test_fraction=test_fraction)
    splits = {"train": first}
    notes: list[str] = []
    path = Path(data)
    candidates = ["test"] + (["private"] if path.suffix.lower() == ".csv" or (path / "fer2013.csv").is_file() else [])
    for split in candidates:
        try:
            splits[split] = load_dataset(data, split, mode, test_fraction=test_fraction)
        except DataError as exc:
            notes.append(f"no {split} split: {exc}")
            continue
        if splits[split].source == first.source:  # fer2013 class folders given directly: one split, not two
            del splits[split]
            notes.append(f"no {split} split: {data} is a single split (class folders without split folders)")
    label_mode = mode if isinstance(mode, str) else ",".join(mode)
    return splits, label_mode, notes


def duplicate_figures(splits: dict[str, Dataset], near_distance: int) -> dict[str, Any]:
    """Exact and near duplicates within each split and between train and each other split."""
    from train.duplicates import dhash, exact_groups, near_pairs, pixel_digests

    names = list(splits)
    images = np.concatenate([splits[s].images for s in names])
    targets = np.concatenate([splits[s].targets for s in names])
    split_of = np.concatenate([np.full(len(splits[s]), k) for k, s in enumerate(names)])
    group = exact_groups(pixel_digests(images))
    first, second = near_pairs(dhash(images), near_distance)
    near = group[first] != group[second]  # exact copies are counted as exact only
    first, second = first[near], second[near]
    figures: dict[str, Any] = {"near_distance": near_distance, "hash": "dHash 64-bit (9x8)", "within": {}, "across": {}}
    for k, name in enumerate(names):
        members = np.flatnonzero(split_of == k)
        groups, counts = np.unique(group[members], return_counts=True)
        repeated = set(groups[counts > 1].tolist())
        labels_per_group: dict[int, set[int]] = {}
        for index in members:
            if int(group[index]) in repeated:
                labels_per_group.setdefault(int(group[index]), set()).add(int(targets[index]))
        inside = (split_of[first] == k) & (split_of[second] == k)
        figures["within"][name] = {
            "images": int(len(members)),
            "exact_groups": len(repeated),
            "exact_extra_copies": int(len(members) - len(groups)),
            "exact_groups_with_conflicting_labels": sum(1 for s in labels_per_group.values() if len(s) > 1),
            "near_pairs": int(inside.sum()),
            "images_in_near_pairs": int(len(np.unique(np.concatenate([first[inside], second[inside]])))),
        }
    train = np.flatnonzero(split_of == 0)
    num_classes = max(len(splits[names[0]].labels), 1)
    train_groups = set(group[train].tolist())
    train_group_labels = set((group[train] * num_classes + targets[train]).tolist())
    for k, name in enumerate(names[1:], start=1):
        members = np.flatnonzero(split_of == k)
        exact = np.array([int(g) in train_groups for g in group[members]], dtype=bool)
        conflicting = np.array([int(g) * num_classes + int(t) not in train_group_labels
                                for g, t in zip(group[members], targets[members])], dtype=bool) & exact
        crossing = ((split_of[first] == 0) & (split_of[second] == k)) | ((split_of[first] == k) & (split_of[second] == 0))
        other_side = np.where(split_of[first[crossing]] == k, first[crossing], second[crossing])
        near_only = np.setdiff1d(np.unique(other_side), members[exact])
        figures["across"][f"train/{name}"] = {
            f"{name}_images": int(len(members)),
            f"{name}_images_with_exact_copy_in_train": int(exact.sum()),
            "of_which_labelled_differently": int(conflicting.sum()),
            "near_pairs": int(crossing.sum()),
            f"{name}_images_with_near_copy_in_train_only": int(len(near_only)),
        }
    return figures


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_class_counts(splits: dict[str, Dataset], path: Path) -> None:
    plt = _plt()
    labels = splits["train"].labels
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(labels) + 2), 3.6), dpi=110)
    width = 0.8 / len(splits)
    for k, (name, data) in enumerate(splits.items()):
        counts = [data.class_counts()[label] for label in labels]
        bars = ax.bar(np.arange(len(labels)) + k * width, counts, width, label=f"{name} ({len(data)})")
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(np.arange(len(labels)) + width * (len(splits) - 1) / 2, labels, rotation=30, ha="right")
    ax.set_ylabel("images")
    ax.set_title("images per class")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_samples(data: Dataset, path: Path, seed: int = 0) -> None:
    """One mosaic (a row of random faces per class) drawn as a single image: fast for many classes."""
    plt = _plt()
    rng = np.random.default_rng(seed)
    cell = 48 + 2
    rows = len(data.labels)
    mosaic = np.full((rows * cell, SAMPLES_PER_CLASS * cell), 255, dtype=np.uint8)
    for r in range(rows):
        members = np.flatnonzero(data.targets == r)
        chosen = np.sort(rng.choice(members, min(SAMPLES_PER_CLASS, len(members)), replace=False))
        for c, index in enumerate(chosen):
            mosaic[r * cell:r * cell + 48, c * cell:c * cell + 48] = data.images[index]
    fig, ax = plt.subplots(figsize=(SAMPLES_PER_CLASS * 0.75 + 1.2, rows * 0.75 + 0.5), dpi=100)
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([r * cell + 24 for r in range(rows)], data.labels, fontsize=8)
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(f"{data.source}: random faces per class, as the model sees them", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_histograms(splits: dict[str, Dataset], sizes_path: Path, brightness_path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=110)
    for name, data in splits.items():
        sizes = data.sizes if data.sizes is not None else np.full((len(data), 2), 48)
        ax.hist(np.sqrt(sizes[:, 0] * sizes[:, 1]), bins=40, alpha=0.6, label=name)
    ax.set_xlabel("original size, sqrt(height x width) in pixels")
    ax.set_ylabel("images")
    ax.set_title("image sizes before conversion to 48x48")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(sizes_path)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=110)
    for name, data in splits.items():
        ax.hist(data.images.reshape(len(data), -1).mean(axis=1), bins=50, range=(0, 255), alpha=0.6, label=name)
    ax.set_xlabel("mean brightness of the 48x48 grey face (0..255)")
    ax.set_ylabel("images")
    ax.set_title("brightness")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(brightness_path)
    plt.close(fig)


def basic_figures(splits: dict[str, Dataset]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name, data in splits.items():
        flat = data.images.reshape(len(data), -1).astype(np.float64)
        sizes = data.sizes if data.sizes is not None else np.full((len(data), 2), 48)
        figures[name] = {
            "source": data.source, "images": len(data), "class_counts": data.class_counts(),
            "height": {"min": int(sizes[:, 0].min()), "median": float(np.median(sizes[:, 0])), "max": int(sizes[:, 0].max())},
            "width": {"min": int(sizes[:, 1].min()), "median": float(np.median(sizes[:, 1])), "max": int(sizes[:, 1].max())},
            "not_48x48": int(np.sum((sizes[:, 0] != 48) | (sizes[:, 1] != 48))),
            "brightness_mean": round(float(flat.mean()), 2), "brightness_std_between_images": round(float(flat.mean(1).std()), 2),
            "uniform_images": int(np.sum(flat.std(axis=1) < UNIFORM_STD)),
            **({"info": dict(data.info)} if data.info else {}),
        }
    return figures


def _markdown(data: str, label_mode: str, labels: tuple[str, ...], basics: dict[str, Any], dups: dict[str, Any],
              notes: list[str]) -> str:
    names = list(basics)
    lines = [f"# Data report: `{data}`", "",
             f"Labels ({label_mode}, in output order): {', '.join(labels)}", ""]
    lines += ["| class | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(str(basics[n]["class_counts"][label]) for n in names) + " |")
    lines.append("| **total** | " + " | ".join(f"**{basics[n]['images']}**" for n in names) + " |")
    lines += ["", "![images per class](class_counts.png)", ""]
    for note in notes:
        lines.append(f"- {note}")
    for name in names:
        info = basics[name].get("info", {})
        if "generated_test_split" in info:
            g = info["generated_test_split"]
            lines.append(f"- {name}: the data has no test split; test is a seeded stratified {g['fraction']:g} of "
                         f"each class (seed {g['seed']}), the one fer-train holds out")
        if "crop_faces" in info:
            c = info["crop_faces"]
            lines.append(f"- {name}: faces cropped; {c['faces_found']} found, {c['no_face']} without a face "
                         f"({c['no_face_action']})")
    lines += ["", "## Samples", ""] + [f"![{n} samples](samples_{n}.png)" for n in names]
    lines += ["", "## Image sizes and brightness", "",
              "| split | height min / median / max | width min / median / max | not 48x48 | mean brightness | "
              "blank images |", "|---|---|---|---:|---:|---:|"]
    for n in names:
        b = basics[n]
        h, w = b["height"], b["width"]
        lines.append(f"| {n} | {h['min']} / {h['median']:g} / {h['max']} | {w['min']} / {w['median']:g} / {w['max']} | "
                     f"{b['not_48x48']} | {b['brightness_mean']} | {b['uniform_images']} |")
    lines += ["", "![sizes](sizes.png) ![brightness](brightness.png)", "",
              f"Blank images: pixel standard deviation below {UNIFORM_STD}.", "",
              "## Duplicates", "",
              f"Exact: identical 48x48 pixels (sha256). Near: {dups['hash']} within Hamming distance "
              f"{dups['near_distance']}, not counting exact copies.", "",
              "| within | images | exact groups | extra exact copies | groups with conflicting labels | near pairs | "
              "images in near pairs |", "|---|---:|---:|---:|---:|---:|---:|"]
    for n, f in dups["within"].items():
        lines.append(f"| {n} | {f['images']} | {f['exact_groups']} | {f['exact_extra_copies']} | "
                     f"{f['exact_groups_with_conflicting_labels']} | {f['near_pairs']} | {f['images_in_near_pairs']} |")
    if dups["across"]:
        lines += ["", "| across | images | with an exact copy in train | of which labelled differently | near pairs | "
                  "with only a near copy in train |", "|---|---:|---:|---:|---:|---:|"]
        for pair, f in dups["across"].items():
            name = pair.split("/")[1]
            lines.append(f"| {pair} | {f[f'{name}_images']} | {f[f'{name}_images_with_exact_copy_in_train']} | "
                         f"{f['of_which_labelled_differently']} | {f['near_pairs']} | "
                         f"{f[f'{name}_images_with_near_copy_in_train_only']} |")
    lines.append("")
    return "\n".join(lines)


def write_report(data: str | Path, out: Path, labels: str = "detect", test_fraction: float | None = None,
                 near_distance: int = 2) -> str:
    """Write report.md, report.json and the PNGs into ``out``; return a one-paragraph summary."""
    if not 0 <= near_distance <= 16:
        raise DataError("--near-distance must be in 0..16")
    out = output_folder(out, "the report")
    splits, label_mode, notes = load_splits(data, labels, DEFAULT_TEST_FRACTION if test_fraction is None
                                            else test_fraction)
    basics = basic_figures(splits)
    dups = duplicate_figures(splits, near_distance)
    plot_class_counts(splits, out / "class_counts.png")
    for name, split in splits.items():
        plot_samples(split, out / f"samples_{name}.png")
    plot_histograms(splits, out / "sizes.png", out / "brightness.png")
    labels_used = splits["train"].labels
    (out / "report.json").write_text(json.dumps({"data": str(data), "label_mode": label_mode,
                                                 "labels": list(labels_used), "splits": basics,
                                                 "duplicates": dups, "notes": notes}, indent=2) + "\n")
    (out / "report.md").write_text(_markdown(str(data), label_mode, labels_used, basics, dups, notes))
    summary = [f"report: {out / 'report.md'}",
               ", ".join(f"{n} {b['images']}" for n, b in basics.items()) + f" images in {len(labels_used)} classes"]
    for n, f in dups["within"].items():
        summary.append(f"within {n}: {f['exact_extra_copies']} extra exact copies, {f['near_pairs']} near pairs")
    for pair, f in dups["across"].items():
        name = pair.split("/")[1]
        summary.append(f"{name} images with an exact copy in train: {f[f'{name}_images_with_exact_copy_in_train']}, "
                       f"with only a near copy: {f[f'{name}_images_with_near_copy_in_train_only']}")
    return "\n".join(summary)
