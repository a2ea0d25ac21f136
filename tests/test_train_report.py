"""fer-train report: counts, charts and duplicates; the fast near-duplicate search finds what brute force finds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from train.duplicates import dhash, near_pairs, popcount


def test_near_pairs_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, 300, dtype=np.uint64)
    flips = np.uint64(1) << rng.integers(0, 64, (300, 3)).astype(np.uint64)
    near = base ^ flips[:, 0] ^ (flips[:, 1] * (rng.random(300) < 0.5).astype(np.uint64))
    hashes = np.concatenate([base, near, base[:20]])
    for distance in (0, 2, 4, 7):
        got = set(zip(*(a.tolist() for a in near_pairs(hashes, distance))))
        dist = popcount(hashes[:, None] ^ hashes[None, :])
        i, j = np.nonzero(np.triu(dist <= distance, k=1))
        assert got == set(zip(i.tolist(), j.tolist())), distance


def test_dhash_ignores_brightness_and_tells_faces_apart(sample_dir: Path) -> None:
    from train.data import load_dataset

    faces = load_dataset(sample_dir, "test").images[:10]
    brighter = np.clip(faces.astype(np.int16) + 20, 0, 255).astype(np.uint8)
    assert (popcount(dhash(faces) ^ dhash(brighter)) <= 4).all()  # a near duplicate (saturation flips a few bits)
    assert len(set(dhash(faces).tolist())) == 10


def test_report_on_the_bundled_sample_counts_planted_duplicates(sample_dir: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from train.__main__ import main

    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    happy = sorted((data / "train" / "happy").glob("*.jpg"))
    shutil.copy(happy[0], data / "test" / "happy" / "copy_of_train.jpg")  # exact, same label
    shutil.copy(happy[1], data / "test" / "sad" / "relabelled.jpg")  # exact, other label
    shutil.copy(happy[2], data / "train" / "happy" / "twice.jpg")  # exact within train
    out = tmp_path / "report"
    assert main(["report", str(data), "--out", str(out)]) == 0
    assert "test images with an exact copy in train: 2" in capsys.readouterr().out
    figures = json.loads((out / "report.json").read_text())
    assert figures["label_mode"] == "fer2013" and figures["splits"]["train"]["images"] == 113
    across = figures["duplicates"]["across"]["train/test"]
    assert across["test_images_with_exact_copy_in_train"] == 2 and across["of_which_labelled_differently"] == 1
    assert figures["duplicates"]["within"]["train"]["exact_extra_copies"] == 1
    markdown = (out / "report.md").read_text()
    for png in ("class_counts.png", "samples_train.png", "samples_test.png", "sizes.png", "brightness.png"):
        assert png in markdown and (out / png).read_bytes()[:4] == b"\x89PNG"


def test_report_on_own_classes_without_a_test_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.custom_data import write_dataset
    from train.__main__ import main

    data = write_dataset(tmp_path / "data", per_class=10)
    assert main(["report", str(data), "--out", str(tmp_path / "report")]) == 0
    figures = json.loads((tmp_path / "report" / "report.json").read_text())
    assert figures["label_mode"] == "auto" and figures["labels"] == ["bored", "confused", "engaged"]
    assert figures["splits"]["test"]["images"] == 3 and figures["splits"]["train"]["not_48x48"] == 27
    assert "seeded stratified" in (tmp_path / "report" / "report.md").read_text()


def test_report_on_missing_data_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from train.__main__ import main

    assert main(["report", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fer-train: error:") and "does not exist" in err and "\n" not in err


@pytest.mark.parametrize("fraction", ["3", "-1", "half"])
def test_report_refuses_a_test_fraction_training_would_refuse(fraction: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from train.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["report", str(tmp_path), "--test-fraction", fraction])
    assert stop.value.code == 2
    assert "--test-fraction" in capsys.readouterr().err
