"""Bad or unusual inputs to fer-train's subcommands: a one-line error and a non-zero exit, never a
traceback, and nothing already written is lost. Odd but valid inputs (16-bit or EXIF-rotated images,
a CSV with a byte-order mark) load as they would on the device."""

from __future__ import annotations

import csv
import io
import json
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from train.__main__ import main
from train.config import load_config
from train.data import decode_image, load_dataset, read_image
from train.errors import ConfigError, DataError


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("fer-train: error:") and "\n" not in err, err
    return err


def _fer2013_csv(sample: Path, path: Path, bom: bool = False) -> None:
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for index, label in enumerate(("angry", "happy")):
            for image_path in sorted((sample / "train" / label).iterdir())[:3]:
                pixels = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
                writer.writerow([index, " ".join(map(str, pixels.ravel())), "Training"])


# --- images -----------------------------------------------------------------------------------


def test_a_16_bit_png_is_the_same_face_not_a_white_square(sample_dir: Path) -> None:
    face = cv2.imread(str(next((sample_dir / "train" / "happy").iterdir())), cv2.IMREAD_GRAYSCALE)
    deep = face.astype(np.uint16) * 257
    for image in (deep, cv2.merge([deep, deep, deep])):
        ok, png = cv2.imencode(".png", image)
        assert ok
        assert np.array_equal(decode_image(png.tobytes(), "deep.png"), face)


def test_exif_orientation_is_applied_as_on_the_edge(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    portrait = np.zeros((60, 40), dtype=np.uint8)
    portrait[:10] = 255
    exif = pil.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    buffer = io.BytesIO()
    pil.fromarray(portrait).save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    data = buffer.getvalue()
    edge = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # how fer-edge detect reads a photo
    assert read_image(data, "photo.jpg").shape == edge.shape[:2] == (40, 60)


def test_an_image_opencv_refuses_to_open_is_a_data_error() -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    huge = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    with pytest.raises(DataError, match="cannot decode image huge.png"):
        decode_image(huge, "huge.png")


def test_macos_resource_forks_beside_the_images_are_not_images(sample_dir: Path, tmp_path: Path) -> None:
    """A folder copied from a Mac to a USB stick holds a "._<name>.jpg" beside every image."""
    data = tmp_path / "fer2013"
    shutil.copytree(sample_dir, data)
    fork = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "
    (data / "train" / "happy" / "._Training_1.jpg").write_bytes(fork)
    archive = tmp_path / "fer2013.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for file in sorted(data.rglob("*.jpg")):
            handle.write(file, file.relative_to(data))
    expected = load_dataset(sample_dir, "train").fingerprint()
    for source in (data, archive):
        assert load_dataset(source, "train").fingerprint() == expected
        assert len(load_dataset(source, "train", "auto")) == 112


def test_a_zip_with_a_damaged_member_is_a_data_error(sample_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "fer2013.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as handle:
        for file in sorted(sample_dir.rglob("*.jpg")):
            handle.write(file, file.relative_to(sample_dir))
    with zipfile.ZipFile(archive) as handle:
        info = next(i for i in handle.infolist() if i.filename.startswith("train/"))
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 10
    data[start:start + 20] = bytes(20)
    archive.write_bytes(bytes(data))
    for labels in ("fer2013", "auto"):
        with pytest.raises(DataError, match="cannot read .* from zip"):
            load_dataset(archive, "train", labels)


# --- CSV --------------------------------------------------------------------------------------


def test_a_csv_with_a_byte_order_mark_loads(sample_dir: Path, tmp_path: Path) -> None:
    _fer2013_csv(sample_dir, tmp_path / "plain.csv")
    _fer2013_csv(sample_dir, tmp_path / "bom.csv", bom=True)
    assert (tmp_path / "bom.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    for labels in ("fer2013", "angry,happy"):
        assert (load_dataset(tmp_path / "bom.csv", "train", labels).fingerprint()
                == load_dataset(tmp_path / "plain.csv", "train", labels).fingerprint())


def test_a_row_with_an_extra_field_is_an_error_not_skipped(sample_dir: Path, tmp_path: Path) -> None:
    """An unquoted comma in the pixels pushed 'Training' out of the Usage column: the row was silently dropped."""
    path = tmp_path / "fer2013.csv"
    _fer2013_csv(sample_dir, path)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(" ", ",", 1)
    path.write_text("\n".join(lines) + "\n")
    for labels in ("fer2013", "angry,happy"):
        with pytest.raises(DataError, match="row 4: expected 3 fields, got 4"):
            load_dataset(path, "train", labels)


@pytest.mark.parametrize("content", [b"emotion,pixels,Usage\n3,\xe9 1 2,Training\n", bytes(range(256)) * 8])
def test_a_csv_that_is_not_utf8_text_is_a_data_error(content: bytes, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fer2013.csv"
    path.write_bytes(content)
    for labels in ("fer2013", "auto"):
        with pytest.raises(DataError, match="not a UTF-8 text CSV"):
            load_dataset(path, "train", labels)
    _one_line_error(["evaluate", str(tmp_path / "model.keras"), "--data", str(path)], capsys)


def test_pixel_rows_of_large_images_load(tmp_path: Path) -> None:
    """A 200x200 image's pixel row is longer than csv's default field limit (131,072 characters)."""
    rng = np.random.default_rng(0)
    rows = ["label,pixels"] + [f"{'ab'[i % 2]}," + " ".join(map(str, rng.integers(100, 256, 200 * 200)))
                               for i in range(12)]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(rows) + "\n")
    data = load_dataset(path, "train", "auto")
    assert data.labels == ("a", "b") and data.images.shape[1:] == (48, 48)


# --- data paths and splits --------------------------------------------------------------------


def test_a_split_the_folder_does_not_have_is_named(sample_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match="has no 'private' split folder \\(found: test, train\\)"):
        load_dataset(sample_dir, "private")
    err = _one_line_error(["evaluate", str(sample_dir / "absent.keras"), "--data", str(sample_dir), "--split", "bogus"],
                          capsys)
    assert "no 'bogus' split" in err and "unknown class" not in err
    assert len(load_dataset(sample_dir / "test", "test")) == 70  # one split given directly still loads


def test_fer2013_split_folders_in_another_spelling_load(sample_dir: Path, tmp_path: Path) -> None:
    for split, folder in (("train", "Train"), ("test", "PublicTest")):
        shutil.copytree(sample_dir / split, tmp_path / folder)
        assert load_dataset(tmp_path, split).fingerprint() == load_dataset(sample_dir, split).fingerprint()


@pytest.mark.parametrize(("path", "fragment"), [("", "no data given"), ("~no_such_user_here/fer2013", "cannot expand")])
def test_an_empty_or_unexpandable_data_path_is_a_data_error(path: str, fragment: str) -> None:
    """An empty --data used to load the current folder (whose train/ is this package) as FER2013."""
    with pytest.raises(DataError, match=fragment):
        load_dataset(path, "train")


def test_the_report_does_not_count_a_single_split_twice(sample_dir: Path, tmp_path: Path) -> None:
    """FER2013 class folders without split folders are one split: reported as train and test, every
    "test" face had an exact copy in train."""
    from train.report import write_report

    summary = write_report(sample_dir / "test", tmp_path / "report")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert list(report["splits"]) == ["train"] and "exact copy in train" not in summary
    assert any("single split" in note for note in report["notes"])


# --- config -----------------------------------------------------------------------------------


def test_a_config_file_that_cannot_be_read_is_a_config_error(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "folder.toml").mkdir()
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe[train]\n")
    for name in ("folder.toml", "binary.toml"):
        with pytest.raises(ConfigError, match="cannot read config file"):
            load_config(tmp_path / name)
        _one_line_error(["--config", str(tmp_path / name), "--out", str(tmp_path / "run")], capsys)


@pytest.mark.parametrize("override", ["train.seed=-5", "train.seed=4294967296", "train.learning_rate=inf",
                                      "train.weight_decay=inf", "train.epochs=99999999999999999999"])
def test_values_that_crash_or_diverge_training_are_config_errors(override: str) -> None:
    with pytest.raises(ConfigError):
        load_config(None, [override])


# --- output paths -----------------------------------------------------------------------------


def test_an_out_that_is_a_file_is_refused_and_kept(sample_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    err = _one_line_error(["--arch", "tiny", "--data", str(sample_dir), "--out", str(precious)], capsys)
    assert "is a file" in err
    _one_line_error(["--arch", "tiny", "--data", str(sample_dir), "--out", str(precious / "run")], capsys)
    err = _one_line_error(["evaluate", str(tmp_path / "m.keras"), "--data", str(sample_dir), "--out",
                           str(precious)], capsys)
    assert "is a file" in err
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.keras").write_bytes(b"checked later")
    assert "is a file" in _one_line_error(["ship", str(run), "--out", str(precious)], capsys)
    assert "--name" in _one_line_error(["ship", str(run), "--out", str(tmp_path / "m"), "--name", "a/b"], capsys)
    assert "is a file" in _one_line_error(["report", str(sample_dir), "--out", str(precious)], capsys)
    assert "cannot create" in _one_line_error(["report", str(sample_dir), "--out", str(precious / "r")], capsys)
    assert precious.read_text() == "keep me"


def test_resuming_from_a_torn_state_file_is_a_train_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.keras").write_bytes(b"")
    (run / "state.json").write_text("{bad")
    assert "state.json" in _one_line_error(["--arch", "tiny", "--out", str(run), "--resume"], capsys)


# --- with a trained run (one epoch of the tiny model) ------------------------------------------


def _tiny_config():  # type: ignore[no-untyped-def]
    from tests.conftest import SAMPLE

    return load_config(None, [f"data.dir={SAMPLE}", "data.val_fraction=0.25", "model.arch=tiny", "train.epochs=1",
                              "train.warmup_epochs=0", "train.batch_size=32", "train.patience=1"])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from train.training import train

    run = tmp_path_factory.mktemp("trained") / "run"
    train(_tiny_config(), run, verbose=0)
    return run


@pytest.mark.slow
def test_a_run_interrupted_before_its_first_checkpoint_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C during epoch 1 leaves config.toml and dataset.json; the message says to --resume, so that must work."""
    import train.training as training

    def interrupt(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt  # Ctrl-C before the first epoch's checkpoint

    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(training, "make_dataset", interrupt)
        with pytest.raises(KeyboardInterrupt):
            training.train(_tiny_config(), run, verbose=0)
    assert sorted(p.name for p in run.iterdir()) == ["config.toml", "dataset.json"]
    assert main(["--out", str(run), "--resume"]) == 0, capsys.readouterr().err
    state = json.loads((run / "state.json").read_text())
    assert state["epochs_done"] == 1 and (run / "model.keras").is_file()


@pytest.mark.slow
def test_an_epoch_whose_checkpoint_was_not_recorded_is_listed_once(trained_run: Path, tmp_path: Path) -> None:
    """A kill after epoch 2's history row but before its state.json: epoch 2 runs again on resume."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    history = (run / "history.csv").read_text().splitlines()
    (run / "history.csv").write_text("\n".join(history + ["2" + history[1][1:]]) + "\n")
    assert main(["--out", str(run), "--resume", "--epochs", "2"]) == 0
    with (run / "history.csv").open() as handle:
        assert [int(float(row["epoch"])) for row in csv.DictReader(handle)] == [1, 2]


@pytest.mark.slow
def test_a_failed_ship_keeps_the_model_already_shipped(trained_run: Path, sample_dir: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "m.keras").write_bytes(b"the shipped model")
    (models / "m.config.toml").write_text("its config")
    err = _one_line_error(["ship", str(trained_run), "--out", str(models), "--name", "m", "--data", str(sample_dir),
                           "--split", "private"], capsys)
    assert "no 'private' split" in err
    assert (models / "m.keras").read_bytes() == b"the shipped model"
    assert (models / "m.config.toml").read_text() == "its config"


@pytest.mark.slow
def test_evaluate_with_a_malformed_recorded_csv_columns_is_one_line(trained_run: Path, sample_dir: Path,
                                                                    tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """dataset.json is the run's record and users edit it: an unknown column key names it."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    info = json.loads((run / "dataset.json").read_text())
    info["load_options"] = {"csv_columns": {"no_such_column": "x"}}
    (run / "dataset.json").write_text(json.dumps(info))
    err = _one_line_error(["evaluate", str(run / "model.keras"), "--data", str(sample_dir)], capsys)
    assert "'load_options' is malformed" in err


@pytest.mark.slow
@pytest.mark.parametrize("labels", ["angry,happy", [], ["happy", "happy"], ["angry", 3]])
def test_recorded_labels_that_are_not_a_list_of_names_are_one_line(labels: object, trained_run: Path,
                                                                   sample_dir: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """An edited dataset.json's labels are the model's output order for evaluate, ship and convert: a
    string was silently replaced by FER2013's seven (or read letter by letter), so it names the file."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    info = json.loads((run / "dataset.json").read_text())
    info["labels"] = labels
    (run / "dataset.json").write_text(json.dumps(info))
    err = _one_line_error(["evaluate", str(run / "model.keras"), "--data", str(sample_dir)], capsys)
    assert "dataset.json: 'labels' must be a list of distinct class names" in err
    err = _one_line_error(["ship", str(run), "--out", str(tmp_path / "shipped"), "--data", str(sample_dir)], capsys)
    assert "dataset.json: 'labels' must be a list" in err and not (tmp_path / "shipped").exists()


@pytest.mark.slow
def test_shipping_a_run_without_its_dataset_record_names_it(trained_run: Path, sample_dir: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "dataset.json").unlink()
    err = _one_line_error(["ship", str(run), "--out", str(tmp_path / "shipped"), "--data", str(sample_dir)], capsys)
    assert "cannot read" in err and "dataset.json" in err
