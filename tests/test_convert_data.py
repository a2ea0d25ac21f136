"""Where fer-convert's faces come from: --data, else FER2013_DIR, else ./data/fer2013/, else the bundled sample
with one line saying so; never a name or relative path a run recorded, taken as a folder of the working directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from convert.__main__ import _convert_parser, _verify_parser, main
from convert.data import choose_data, conversion_data
from convert.errors import ConvertError
from tests.conftest import SAMPLE
from tests.model_helpers import untrained_classifier
from train.console import log_to_stderr
from train.data_location import WHERE_FROM


def test_the_hint_where_fer2013_comes_from_names_options_fer_convert_takes() -> None:
    """The hint says "pass --data PATH"; fer-convert refused --data as an unrecognized argument."""
    assert "pass --data PATH" in WHERE_FROM
    assert _convert_parser().parse_args(["m.keras", "--data", "d"]).data == "d"
    assert _verify_parser().parse_args(["manifest.json", "--data", "d"]).data == "d"


def test_data_is_the_option_then_fer2013_dir_then_data_fer2013_then_the_sample(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FER2013_DIR", raising=False)
    log_to_stderr("fer-convert")
    sample = choose_data(None)
    assert (sample.path, sample.is_sample) == (SAMPLE, True)
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1 and "bundled sample of 112 training and 70 test faces" in said[0], said
    (tmp_path / "data" / "fer2013").mkdir(parents=True)
    assert (choose_data(None).path, choose_data(None).how) == (Path("data/fer2013"), "./data/fer2013/")
    monkeypatch.setenv("FER2013_DIR", "/elsewhere")
    assert (choose_data(None).path, choose_data(None).how) == (Path("/elsewhere"), "FER2013_DIR")
    assert (choose_data("given").path, choose_data("given").how) == (Path("given"), "--data")


def test_the_sample_is_named_once_for_calibration_and_verification(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FER2013_DIR", raising=False)
    log_to_stderr("fer-convert")
    calibration, verification = conversion_data(None, None, None, calibrates=True)
    assert calibration == verification and verification.is_sample
    assert capsys.readouterr().err.count("bundled sample") == 1
    calibration, verification = conversion_data("all", "cal", None, calibrates=True)
    assert (calibration.path, calibration.how, verification.path, verification.how) == \
        (Path("cal"), "--calibration-data", Path("all"), "--data")
    assert conversion_data(None, None, "ver", calibrates=False) == (None, verification.__class__(Path("ver"),
                                                                                                "--verify-data"))


def test_outside_a_checkout_no_data_is_the_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.setattr("convert.data.SAMPLE", tmp_path / "no-sample")
    with pytest.raises(ConvertError, match="pass --data PATH"):
        choose_data(None)


def test_a_recorded_relative_data_folder_is_not_taken_from_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A run's config.toml that says data.dir = "fer2013" meant the folder where it trained; a folder of that
    name in the working directory is not it. FER2013_DIR is where this machine keeps FER2013, and --data wins."""
    run = tmp_path / "run"
    run.mkdir()
    model = untrained_classifier(run / "model.keras")
    (run / "config.toml").write_text('[data]\ndir = "fer2013"\n')
    shutil.copytree(SAMPLE, tmp_path / "fer2013")  # loadable, and named otherwise than the sample
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FER2013_DIR", str(SAMPLE))

    assert main([str(model), "--out", "out", "--formats", "int8", "--max-drop", "100"]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["calibration"]["data"] == "fer2013_sample"
    assert manifest["artifacts"]["int8"]["metrics"]["data"] == "fer2013_sample/test"
    said = capsys.readouterr().err
    assert f"calibration data: {SAMPLE}, its train split, 112 images (from FER2013_DIR)" in said, said
    assert f"verification data: {SAMPLE}, its test split, 70 images (from FER2013_DIR)" in said, said

    assert main([str(model), "--out", "out2", "--formats", "int8", "--max-drop", "100", "--data", "fer2013"]) == 0
    manifest = json.loads((tmp_path / "out2" / "manifest.json").read_text())
    assert manifest["calibration"]["data"] == "fer2013"
    assert "verification data: fer2013, its test split, 70 images (from --data)" in capsys.readouterr().err


def test_data_that_is_not_there_is_one_line_and_creates_no_output_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = untrained_classifier(tmp_path / "m.keras")
    assert main([str(model), "--out", str(tmp_path / "out"), "--formats", "int8", "--data", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fer-convert: error: calibration data:") and "\n" not in err, err
    assert not (tmp_path / "out").exists()
