"""Loading FER2013 in its three forms gives the same pixels and labels; bad data fails clearly."""

from __future__ import annotations

import csv
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from train.data import load_dataset, stratified_split, to_face_array
from train.errors import DataError
from train.labels import FER2013_LABELS


def write_csv(sample: Path, path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for split, usage in (("train", "Training"), ("test", "PublicTest")):
            for index, label in enumerate(FER2013_LABELS):
                for image_path in sorted((sample / split / label).iterdir()):
                    pixels = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
                    writer.writerow([index, " ".join(map(str, pixels.ravel())), usage])


def write_zip(sample: Path, path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(sample.rglob("*.jpg")):
            archive.write(file, Path("archive") / file.relative_to(sample))


def test_sample_has_all_seven_classes(sample_dir: Path) -> None:
    data = load_dataset(sample_dir, "train")
    assert data.labels == FER2013_LABELS
    assert data.images.shape[1:] == (48, 48) and data.images.dtype == np.uint8
    assert all(count > 0 for count in data.class_counts().values())


def test_folder_zip_and_csv_load_identically(sample_dir: Path, tmp_path: Path) -> None:
    write_csv(sample_dir, tmp_path / "fer2013.csv")
    write_zip(sample_dir, tmp_path / "fer2013.zip")
    for split in ("train", "test"):
        folder = load_dataset(sample_dir, split)
        from_zip = load_dataset(tmp_path / "fer2013.zip", split)
        from_csv = load_dataset(tmp_path / "fer2013.csv", split)
        # the csv lists images in label order, folders alphabetically: compare as sorted sets
        key = lambda d: sorted(zip(d.targets.tolist(), [img.tobytes() for img in d.images]))  # noqa: E731
        assert key(folder) == key(from_csv)
        assert folder.fingerprint() == from_zip.fingerprint()


def test_zip_takes_the_split_spellings_and_bare_class_folders_the_folder_loader_takes(
        sample_dir: Path, tmp_path: Path) -> None:
    """A zip is the same data as the folder it was made from, however its folders are spelled."""
    spelled = tmp_path / "spelled.zip"
    with zipfile.ZipFile(spelled, "w") as archive:
        for file in sorted(sample_dir.rglob("*.jpg")):
            split, *rest = file.relative_to(sample_dir).parts
            archive.write(file, Path("FER") / {"train": "Training", "test": "PublicTest"}[split] / Path(*rest))
    bare = tmp_path / "bare.zip"
    with zipfile.ZipFile(bare, "w") as archive:
        for file in sorted((sample_dir / "test").rglob("*.jpg")):
            archive.write(file, file.relative_to(sample_dir / "test"))
    for split in ("train", "test"):
        assert load_dataset(spelled, split).fingerprint() == load_dataset(sample_dir, split).fingerprint()
    assert load_dataset(bare, "test").fingerprint() == load_dataset(sample_dir / "test").fingerprint()
    train_only = tmp_path / "train_only.zip"
    with zipfile.ZipFile(train_only, "w") as archive:
        for file in sorted((sample_dir / "train").rglob("*.jpg")):
            archive.write(file, file.relative_to(sample_dir))
    with pytest.raises(DataError, match=r"has no 'test' split folder \(found: train\)"):
        load_dataset(train_only, "test")


def test_split_folder_given_directly(sample_dir: Path) -> None:
    assert load_dataset(sample_dir / "test").fingerprint() == load_dataset(sample_dir, "test").fingerprint()


def test_any_size_and_colour_becomes_48x48_grey() -> None:
    colour = np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8)
    assert to_face_array(colour).shape == (48, 48)
    assert to_face_array(colour[:, :, :1].repeat(4, axis=2)).shape == (48, 48)


def test_stratified_split_is_seeded_and_keeps_every_class(sample_dir: Path) -> None:
    targets = load_dataset(sample_dir, "train").targets
    a_train, a_val = stratified_split(targets, 0.25, seed=1)
    b_train, b_val = stratified_split(targets, 0.25, seed=1)
    assert np.array_equal(a_val, b_val) and np.array_equal(a_train, b_train)
    assert set(targets[a_val]) == set(targets)
    assert not set(a_train) & set(a_val)


def test_val_seed_holds_the_split_while_train_seed_changes_the_start(sample_dir: Path) -> None:
    """Ensemble members from different starts must hold out the same faces, or their ensemble's
    validation figure is scored partly on faces some member trained on."""
    from train.config import load_config
    from train.training import prepare_data

    def held_out(*overrides: str) -> np.ndarray:
        config = load_config(None, [f"data.dir={sample_dir}", "data.val_fraction=0.25", *overrides])
        return np.sort(prepare_data(config)[1].images.reshape(-1, 48 * 48), axis=0)

    assert np.array_equal(held_out("train.seed=1", "data.val_seed=7"), held_out("train.seed=2", "data.val_seed=7"))
    assert np.array_equal(held_out("train.seed=7"), held_out("train.seed=3", "data.val_seed=7"))
    assert not np.array_equal(held_out("train.seed=1"), held_out("train.seed=2"))


@pytest.mark.parametrize("case", ["missing", "empty", "unknown_class", "corrupt", "bad_row", "bad_pixels", "bad_header"])
def test_bad_data_is_a_one_line_error(case: str, sample_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "data"
    if case == "missing":
        pass
    elif case == "empty":
        target.mkdir()
    elif case in ("unknown_class", "corrupt"):
        shutil.copytree(sample_dir / "test", target)
        if case == "unknown_class":
            (target / "confused").mkdir()
        else:
            (target / "happy" / "broken.jpg").write_bytes(b"not a jpeg")
    else:
        target = tmp_path / "fer2013.csv"
        good = " ".join(["0"] * 2304)
        rows = {
            "bad_row": f"emotion,pixels,Usage\n3,{good},Training\n3,{good}\n",
            "bad_pixels": f"emotion,pixels,Usage\n3,{good},Training\n3,1 2 3,Training\n",
            "bad_header": "label,data\n",
        }
        target.write_text(rows[case])
    with pytest.raises(DataError) as info:
        load_dataset(target, "train")
    message = str(info.value)
    assert "\n" not in message
    if case == "corrupt":
        assert "broken.jpg" in message
    if case in ("bad_row", "bad_pixels"):
        assert "row 3" in message
    if case == "unknown_class":
        assert "confused" in message
