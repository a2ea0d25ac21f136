"""Your own data set and classes: train on a generated 3-class folder, convert it, run fer-edge detect.

Also the layouts and forms such data comes in, the generated test split, and the bad inputs
that must fail in one line.
"""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.custom_data import CLASSES, pattern, write_dataset
from train.data import load_dataset
from train.errors import DataError

TINY = ["--arch", "tiny", "--labels", "auto", "--epochs", "3", "--set", "train.warmup_epochs=0",
        "--set", "train.learning_rate=0.01", "--set", "train.batch_size=16", "--set", "data.val_fraction=0.2"]


@pytest.fixture(scope="module")
def flat_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("custom") / "data", per_class=30)


@pytest.fixture(scope="module")
def trained(flat_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from train.__main__ import main

    run = tmp_path_factory.mktemp("custom-run") / "run"
    # a non-default generated test split: convert, evaluate and bench must re-apply it, not score training images
    assert main([*TINY, "--data", str(flat_data), "--out", str(run), "--set", "data.test_fraction=0.2"]) == 0
    return run


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], prog: str = "fer-train") -> str:
    from train.__main__ import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{prog}: error:") and "\n" not in err, err
    return err


# --- loading your own classes -------------------------------------------------------------------


def test_auto_labels_are_the_sorted_class_folders_and_images_become_48x48_grey(flat_data: Path) -> None:
    data = load_dataset(flat_data, "train", "auto")
    assert data.labels == ("bored", "confused", "engaged")
    assert data.images.shape[1:] == (48, 48) and data.images.dtype == np.uint8
    assert data.sizes is not None and len(set(map(tuple, data.sizes.tolist()))) > 10  # any size went in
    assert data.info["generated_test_split"]["fraction"] == 0.1


def test_generated_test_split_is_seeded_stratified_and_disjoint(flat_data: Path) -> None:
    train, test = load_dataset(flat_data, "train", "auto"), load_dataset(flat_data, "test", "auto")
    assert len(train) + len(test) == 90
    assert test.class_counts() == {"bored": 3, "confused": 3, "engaged": 3}
    train_rows = {img.tobytes() for img in train.images}
    assert not train_rows & {img.tobytes() for img in test.images}
    assert load_dataset(flat_data, "test", "auto").fingerprint() == test.fingerprint()
    # a larger fraction holds out a superset, so tools using the default never test on trained images
    bigger = load_dataset(flat_data, "test", "auto", test_fraction=0.3)
    assert {img.tobytes() for img in test.images} <= {img.tobytes() for img in bigger.images}


def test_explicit_labels_fix_the_output_order(flat_data: Path) -> None:
    data = load_dataset(flat_data, "test", "engaged,bored,confused")
    auto = load_dataset(flat_data, "test", "auto")
    assert data.labels == ("engaged", "bored", "confused")
    assert [data.labels[t] for t in data.targets] == [auto.labels[t] for t in auto.targets]


def test_split_folders_any_capitalisation_and_a_zip_load_the_same(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "kaggle", per_class=10, layout="splits")
    (root / "train").rename(root / "Train")
    folder = load_dataset(root, "test", "auto")
    assert len(folder) == 6 and "generated_test_split" not in folder.info
    archive = tmp_path / "kaggle.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for file in sorted(root.rglob("*.*")):
            handle.write(file, Path("archive") / file.relative_to(root))
    assert load_dataset(archive, "test", "auto").fingerprint() == folder.fingerprint()
    assert len(load_dataset(archive, "train", "auto")) == 24


def test_csv_with_its_own_label_column_and_image_paths(flat_data: Path, tmp_path: Path) -> None:
    table = tmp_path / "labels.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "mood"])
        for label in CLASSES:
            for path in sorted((flat_data / label).iterdir()):
                writer.writerow([str(path), label])
    from_csv = load_dataset(table, "test", "auto", csv_columns=_columns(label="mood"))
    assert from_csv.fingerprint() == load_dataset(flat_data, "test", "auto").fingerprint()


def test_csv_with_pixel_rows_of_any_square_size_and_a_split_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    table = tmp_path / "faces.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "pixels", "split"])
        for i in range(24):
            label = ("calm", "tense")[i % 2]
            image = cv2.cvtColor(pattern(("bored", "engaged")[i % 2], rng), cv2.COLOR_BGR2GRAY)
            square = cv2.resize(image, (64, 64))
            writer.writerow([label, " ".join(map(str, square.ravel())), "test" if i < 6 else "train"])
    data = load_dataset(table, "test", "auto")
    assert data.labels == ("calm", "tense") and len(data) == 6 and data.images.shape[1:] == (48, 48)


def _columns(**names: str):  # type: ignore[no-untyped-def]
    from train.csv_data import CsvColumns

    return CsvColumns(**names)


def test_fer2013_stays_the_default(sample_dir: Path) -> None:
    from train.config import load_config
    from train.labels import FER2013_LABELS

    config = load_config(Path(__file__).resolve().parents[1] / "train" / "configs" / "shipped.toml")
    assert (config.data.labels, config.data.crop_faces) == ("fer2013", False)
    data = load_dataset(sample_dir, "train")
    assert data.labels == FER2013_LABELS and "generated_test_split" not in data.info
    # a FER2013 split folder given directly is still that split, whole
    assert len(load_dataset(sample_dir / "test")) == 70


# --- bad input: one line, exit 2 ----------------------------------------------------------------


def test_a_folder_with_one_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_dataset(tmp_path / "one", per_class=4, classes=("happy",))
    err = _one_line_error([*TINY, "--data", str(root), "--out", str(tmp_path / "run")], capsys)
    assert "one class (happy)" in err and "at least 2" in err


def test_an_empty_class_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_dataset(tmp_path / "data", per_class=4, classes=("engaged", "bored"))
    (root / "confused").mkdir()
    err = _one_line_error([*TINY, "--data", str(root), "--out", str(tmp_path / "run")], capsys)
    assert "confused is empty" in err


def test_mixed_label_sets_between_train_and_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_dataset(tmp_path / "data", per_class=5, layout="splits")
    (root / "test" / "confused").rename(root / "test" / "puzzled")
    err = _one_line_error([*TINY, "--data", str(root), "--out", str(tmp_path / "run")], capsys)
    assert "mixed label sets" in err and "only in train: confused" in err and "only in test: puzzled" in err


def test_listed_labels_that_the_data_does_not_have(flat_data: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error([*TINY, "--labels", "engaged,bored,sleepy", "--data", str(flat_data),
                           "--out", str(tmp_path / "run")], capsys)
    assert "listed but not found: sleepy" in err and "found but not listed: confused" in err
    assert "need at least 2" in _one_line_error([*TINY, "--labels", "solo", "--data", str(flat_data),
                                                 "--out", str(tmp_path / "run")], capsys)


def test_own_classes_under_the_fer2013_default_name_the_fix(flat_data: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error(["--arch", "tiny", "--data", str(flat_data), "--out", str(tmp_path / "run")], capsys)
    assert "unknown class folder(s) bored, confused, engaged" in err


# --- the whole chain ----------------------------------------------------------------------------


@pytest.mark.slow
def test_train_convert_and_detect_with_three_custom_labels(trained: Path, flat_data: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from convert.__main__ import main as convert
    from edge.__main__ import main as edge
    from tests.edge_helpers import SAMPLE, face_frame

    info = json.loads((trained / "dataset.json").read_text())
    assert info["labels"] == ["bored", "confused", "engaged"] and info["train_images"] + info["val_images"] == 72
    models = tmp_path / "models"
    assert convert([str(trained / "model.keras"), "--out", str(models), "--formats", "int8,float32,onnx",
                    "--calibration-data", str(flat_data), "--verify-data", str(flat_data), "--name", "mood",
                    # 9 test images: one int8 flip is 11 points, so the accuracy gate would only test luck here
                    "--max-drop", "100"]) == 0
    manifest = json.loads((models / "manifest.json").read_text())
    assert manifest["labels"] == ["bored", "confused", "engaged"]
    assert manifest["artifacts"]["int8"]["metrics"]["images"] == 18  # the run's generated test split
    assert manifest["data_loading"]["test_fraction"] == 0.2

    frame, _ = face_frame([sorted((SAMPLE / "test" / "happy").glob("*.jpg"))[0]], size=160)
    image = tmp_path / "face.jpg"
    cv2.imwrite(str(image), frame)
    capsys.readouterr()
    assert edge(["detect", str(image), "--manifest", str(models / "manifest.json")]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert len(line["faces"]) == 1
    assert set(line["faces"][0]["probs"]) == {"bored", "confused", "engaged"}
    assert line["faces"][0]["label"] in {"bored", "confused", "engaged"}


    # the same commands benchmark it: scored on its own 18 held-out images, by its own labels
    from benchmarks.__main__ import main as bench

    results = tmp_path / "bench"
    assert bench(["run", "--quick", "--manifest", str(models / "manifest.json"), "--data", str(flat_data),
                  "--no-peer", "--out", str(results)]) == 0
    report = json.loads((results / "results.json").read_text())
    assert report["accuracy"]["images"] == 18 and report["accuracy"]["labels"] == ["bored", "confused", "engaged"]

    # and deploy it: the bundle installs and the installed daemon reports the three classes
    from tests.deploy_helpers import build, install, run_demo, system_python, unpack

    top = unpack(build(tmp_path / "bundle", "--manifest", str(models / "manifest.json")), tmp_path / "unpacked")
    prefix = tmp_path / "prefix"
    install(top, "--prefix", str(prefix), "--no-systemd", "--no-apt", "--python", system_python())
    _, events = run_demo(prefix, frames=30)
    faces = [face for event in events for face in event["faces"]]
    assert faces and {face["label"] for face in faces} <= {"bored", "confused", "engaged"}
    assert set(faces[0]["probs"]) == {"bored", "confused", "engaged"}


@pytest.mark.slow
def test_evaluate_uses_the_model_labels_and_refuses_other_data(trained: Path, flat_data: Path, sample_dir: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from train.__main__ import main

    assert main(["evaluate", str(trained / "model.keras"), "--data", str(flat_data)]) == 0
    printed = capsys.readouterr().out
    assert "(18 images" in printed and "engaged" in printed
    err = _one_line_error(["evaluate", str(trained / "model.keras"), "--data", str(sample_dir)], capsys)
    assert "differ from the expected labels bored,confused,engaged" in err


# --- face cropping with the edge's detector -----------------------------------------------------


def test_crop_faces_uses_the_edge_detector_and_counts_images_without_a_face(tmp_path: Path) -> None:
    from tests.edge_helpers import SAMPLE, face_frame
    from train.labels import DEFAULT_CROP_MARGIN

    root = tmp_path / "photos"
    rng = np.random.default_rng(5)
    # sample faces Haar finds at this size (it misses some real faces, as on the device)
    for label, source, picks in (("smiling", "happy", (0, 1, 3)), ("startled", "surprise", (4, 5, 7))):
        (root / label).mkdir(parents=True)
        faces = sorted((SAMPLE / "test" / source).glob("*.jpg"))
        for i in picks:
            frame, _ = face_frame([faces[i]], size=160, seed=i)
            cv2.imwrite(str(root / label / f"{i}.jpg"), frame)
        cv2.imwrite(str(root / label / "no_face.png"), rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    kept = load_dataset(root, "train", "auto", test_fraction=0, crop_faces=True)
    summary = kept.info["crop_faces"]
    assert (summary["faces_found"], summary["no_face"], summary["no_face_action"]) == (6, 2, "keep")
    assert summary["margin"] == DEFAULT_CROP_MARGIN and len(kept) == 8
    skipped = load_dataset(root, "train", "auto", test_fraction=0, crop_faces=True, no_face="skip")
    assert len(skipped) == 6 and skipped.info["crop_faces"]["no_face"] == 2
    # the crop is the edge's: the same 48x48 tensor edge.vision.faces makes from the same frame
    from edge.vision.faces import FaceDetector, crop_face
    from train.face_crop import SHIPPED_CASCADE

    gray = cv2.imread(str(root / "smiling" / "0.jpg"), cv2.IMREAD_GRAYSCALE)
    box = FaceDetector(SHIPPED_CASCADE).detect(gray)[0]
    expected = crop_face(gray, box, (48, 48), DEFAULT_CROP_MARGIN)
    assert any(np.array_equal(expected, image) for image in skipped.images)
