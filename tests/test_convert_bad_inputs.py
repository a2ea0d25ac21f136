"""Bad or unusual inputs to fer-convert and fer-convert verify: a one-line error and exit code 2, never a
traceback, and nothing already in --out (models, manifest) is replaced by an unverified file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from convert.__main__ import main
from tests.conftest import MODELS, SAMPLE

DATA = ["--calibration-data", str(SAMPLE), "--verify-data", str(SAMPLE)]


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("fer-convert: error:") and "\n" not in err, err
    return err


def _model(path: Path, shape: tuple[int, int, int] = (48, 48, 1)) -> Path:
    """An untrained classifier: these tests are about inputs, not accuracy, so no training is needed."""
    import keras

    inputs = keras.Input(shape)
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=4)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x)).save(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _model(tmp_path_factory.mktemp("tiny") / "tiny.keras")


def _manifest_copy(folder: Path, **changes: object) -> Path:
    """models/manifest.json with some fields changed, in ``folder`` (the artifacts it names are not copied)."""
    data = json.loads((MODELS / "manifest.json").read_text())
    data.update(changes)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(data))
    return folder / "manifest.json"


@pytest.mark.parametrize("max_drop", ["nan", "-1"])
def test_a_nan_or_negative_max_drop_is_refused(max_drop: str, tiny: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """NaN compares false with every drop, so the int8 gate passed any model."""
    err = _one_line_error([str(tiny), "--out", str(tmp_path / "out"), "--formats", "int8", *DATA,
                           "--max-drop", max_drop], capsys)
    assert "--max-drop" in err
    assert "--max-drop" in _one_line_error(["verify", str(_manifest_copy(tmp_path / "m")), "--data", str(SAMPLE),
                                            "--max-drop", max_drop], capsys)


@pytest.mark.parametrize("count", ["0", "-5"])
def test_a_calibration_count_below_the_minimum_names_the_option_not_the_data(
        count: str, tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error([str(tiny), "--out", str(tmp_path / "out"), "--formats", "int8", *DATA,
                           "--calibration-count", count], capsys)
    assert "--calibration-count must be at least 16" in err, err


def test_a_name_with_folders_cannot_replace_a_model_in_out_before_verification(
        tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'--name ../x' wrote the unverified artifact out of the staging folder, over --out's own x_float32.tflite."""
    out = tmp_path / "out"
    out.mkdir()
    shipped = out / "x_float32.tflite"
    shipped.write_bytes(b"the verified model the manifest describes")
    for name in ("../x", "sub/x"):
        assert "--name" in _one_line_error([str(tiny), "--out", str(out), "--formats", "float32", *DATA,
                                            "--name", name], capsys)
    assert shipped.read_bytes() == b"the verified model the manifest describes"
    assert sorted(p.name for p in out.iterdir()) == ["x_float32.tflite"]


@pytest.mark.parametrize("source", ["a string", {"path": 5}])
def test_a_malformed_source_model_is_one_line(source: object, tiny: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _manifest_copy(tmp_path / "m", source_model=source)
    assert "'source_model'" in _one_line_error(["verify", str(manifest), "--data", str(SAMPLE)], capsys)
    before = manifest.read_bytes()
    # an existing manifest in --out whose other entries would be kept: which model made them is unreadable
    assert "'source_model'" in _one_line_error([str(tiny), "--out", str(manifest.parent), "--formats", "float16",
                                                *DATA], capsys)
    assert manifest.read_bytes() == before


def test_malformed_recorded_data_loading_is_one_line(tiny: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The CSV column names a run records are passed to CsvColumns(**...): an unknown key was a TypeError."""
    bogus = {"csv_columns": {"no_such_column": "x"}}
    manifest = _manifest_copy(tmp_path / "m", data_loading=bogus)
    assert "'data_loading' is malformed" in _one_line_error(["verify", str(manifest), "--data", str(SAMPLE)], capsys)
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny, run / "model.keras")
    (run / "dataset.json").write_text(json.dumps({"load_options": bogus}))
    assert "'load_options' is malformed" in _one_line_error([str(run / "model.keras"), "--out", str(tmp_path / "out"),
                                                             "--formats", "float32", *DATA], capsys)


@pytest.mark.parametrize("shape", [(48, 48, 3), (64, 64, 1)])
def test_a_model_that_does_not_take_48x48_grey_faces_is_refused_before_converting(
        shape: tuple[int, int, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Calibration faces are 48x48 grey: the TFLite calibrator raised a RuntimeError after the conversion."""
    model = _model(tmp_path / "odd.keras", shape)
    err = _one_line_error([str(model), "--out", str(tmp_path / "out"), "--formats", "int8", *DATA], capsys)
    assert "must take (None, 48, 48, 1)" in err, err
    assert not (tmp_path / "out").exists()  # a refused model leaves no empty folder behind


def test_labels_that_do_not_fit_the_model_are_refused_before_out_is_created(
        tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error([str(tiny), "--out", str(tmp_path / "out"), "--formats", "float32", *DATA,
                           "--labels", "calm,excited"], capsys)
    assert "7 outputs but 2 labels" in err, err
    assert not (tmp_path / "out").exists()
    (tmp_path / "a_file").write_text("keep me")
    err = _one_line_error([str(tiny), "--out", str(tmp_path / "a_file" / "out"), "--formats", "float32", *DATA],
                          capsys)
    assert "cannot create output folder" in err, err
    assert (tmp_path / "a_file").read_text() == "keep me"
