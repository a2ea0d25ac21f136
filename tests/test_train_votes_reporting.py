"""Reporting against FER+ votes: ``fer-train evaluate --votes``, the card section (``fer-train card``),
fer-bench's scores for our models and the peer, the portraits command, and the shipped card's
figures checked against a fresh evaluation (skipped without the data)."""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from train.__main__ import main
from train.ferplus import vote_figures

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_VOTES = ROOT / "tests" / "data" / "ferplus_sample"
MODELS = ROOT / "models"


def _tiny_model(path: Path, seed: int = 5) -> Path:
    import keras

    from train.config import ModelConfig
    from train.models import build_model

    keras.utils.set_random_seed(seed)
    build_model(ModelConfig(arch="tiny"), 7).save(path)
    return path


def _sample_with_a_duplicate(sample_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The sample with one training face copied into the test split (and votes for it)."""
    data = shutil.copytree(sample_dir, tmp_path / "data")
    face = sorted((data / "train" / "happy").iterdir())[0]
    shutil.copyfile(face, data / "test" / "happy" / "PublicTest_copy.jpg")
    votes = tmp_path / "test.csv"
    text = (SAMPLE_VOTES / "test.csv").read_text()
    votes.write_text(text + "test/happy/PublicTest_copy.jpg,1,9,0,0,0,0,0,0,0,0\n")
    return data, votes


def test_evaluate_votes_prints_every_figure_and_finds_duplicates(sample_dir: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from train.data import load_dataset
    from train.evaluate import load_keras_model, predict_probs

    data, votes = _sample_with_a_duplicate(sample_dir, tmp_path)
    model = _tiny_model(tmp_path / "m.keras")
    assert main(["evaluate", str(model), "--data", str(data), "--votes", str(votes), "--out", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    assert "FER+ agreement" in out and "annotator share" in out and "without the 1 images that duplicate" in out
    saved = json.loads((tmp_path / "e" / "metrics.json").read_text())["ferplus"]

    test = load_dataset(data, "test").with_votes(votes)
    predicted = predict_probs(load_keras_model(model), test.images).argmax(axis=1)
    copy = np.array([name.endswith("PublicTest_copy.jpg") for name in test.names or ()])
    expected = vote_figures(test.targets, predicted, test.votes, test.labels, copy)
    for key in ("accuracy", "agreement", "agreement_images", "annotator_share"):
        assert saved[key] == pytest.approx(expected[key])
        assert saved["without_duplicates"][key] == pytest.approx(expected["without_duplicates"][key])
    assert saved["without_duplicates"]["left_out"] == 1 and saved["without_duplicates"]["images"] == len(test) - 1


def test_evaluate_votes_of_another_split_is_one_line(sample_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    model = _tiny_model(tmp_path / "m.keras")
    assert main(["evaluate", str(model), "--data", str(sample_dir), "--votes", str(SAMPLE_VOTES / "train.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown image train/" in err and "train.csv row 2" in err


def shell_words(command: str, monkeypatch: pytest.MonkeyPatch, fer2013: Path, ferplus: Path) -> list[str]:
    """A card's command as a user's shell reads it, FER2013_DIR and FERPLUS_DIR set to where the data is."""
    monkeypatch.setenv("FER2013_DIR", str(fer2013))
    monkeypatch.setenv("FERPLUS_DIR", str(ferplus))
    return [os.path.expandvars(word) for word in shlex.split(command)]


def test_the_card_section_is_written_once_and_its_command_prints_its_figures(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    model = _tiny_model(tmp_path / "m.keras")
    (tmp_path / "m.card.json").write_text(json.dumps({"name": "m"}))
    (tmp_path / "m.card.md").write_text("# Model card: m\n\n- facts\n\n## Per-class results\n\ntable\n")
    argv = ["card", str(model), "--data", str(sample_dir), "--votes", str(SAMPLE_VOTES / "test.csv")]
    assert main(argv) == 0 and main(argv) == 0
    markdown = (tmp_path / "m.card.md").read_text()
    assert markdown.count("## Against FER+'s ten annotators") == 1 and markdown.index("FER+") < markdown.index(
        "## Per-class results")
    record = json.loads((tmp_path / "m.card.json").read_text())["ferplus"]
    assert record["command"] in markdown
    # the card names the data by placeholder and the votes file by name, not where they are here
    assert record["command"].endswith("--data $FER2013_DIR --split test --votes $FERPLUS_DIR/test.csv")
    assert record["votes"] == "ferplus_sample/test.csv" and str(sample_dir) not in markdown
    capsys.readouterr()
    command = shell_words(record["command"], monkeypatch, sample_dir, SAMPLE_VOTES)
    assert command[:2] == ["fer-train", "evaluate"]
    assert main(command[1:]) == 0
    printed = capsys.readouterr().out
    assert f"FER+ agreement  {record['agreement']:.4f}" in printed
    assert f"annotator share {record['annotator_share']:.4f}" in printed
    assert f"accuracy  {record['accuracy']:.4f}" in printed


def test_a_card_needs_a_card_beside_the_model(sample_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    model = _tiny_model(tmp_path / "m.keras")
    assert main(["card", str(model), "--data", str(sample_dir), "--votes", str(SAMPLE_VOTES / "test.csv")]) == 2
    assert "has no card beside it" in capsys.readouterr().err


def test_crop_faces_scores_whole_photos_and_not_with_votes(sample_dir: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    model = _tiny_model(tmp_path / "m.keras")
    assert main(["evaluate", str(model), "--data", str(sample_dir), "--crop-faces"]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main(["evaluate", str(model), "--data", str(sample_dir), "--crop-faces",
                 "--votes", str(SAMPLE_VOTES / "test.csv")]) == 2


# --- fer-bench ----------------------------------------------------------------------------------


def test_bench_scores_our_artifacts_and_the_peer_on_the_votes(sample_dir: Path) -> None:
    from benchmarks.accuracy import load_faces, measure_accuracy, scored
    from benchmarks.report import _accuracy
    from edge.vision.manifest import load_manifest

    manifest = load_manifest(MODELS / "manifest.json")
    faces = load_faces(sample_dir, "test", manifest.labels, votes=SAMPLE_VOTES / "test.csv")
    assert faces.votes is not None and faces.duplicates is not None and not faces.duplicates.any()
    result, predictions = measure_accuracy(MODELS / "manifest.json", ["int8"], faces, use_keras=False, threads=1)
    int8 = result.models[0]
    assert int8.ferplus == vote_figures(faces.targets, predictions["int8"], faces.votes, faces.labels,
                                        faces.duplicates)
    # the peer goes through the same scoring: any predictions get the same three measures
    peer = scored("fer (TFLite, default)", "peer", faces, np.zeros(len(faces.targets), dtype=np.int64), None)
    assert peer.ferplus is not None and peer.ferplus["annotator_share"] >= 0
    lines = "\n".join(_accuracy({"accuracy": result.to_dict(), "peer": {"accuracy": [peer.to_dict()]}}))
    assert "FER+ agreement (majority label)" in lines and "duplicates left out" in lines
    assert "| measure | int8 | fer (TFLite, default) |" in lines


def test_bench_limit_keeps_votes_beside_their_faces(sample_dir: Path) -> None:
    from benchmarks.accuracy import load_faces
    from train.data import load_dataset

    full = load_dataset(sample_dir, "test").with_votes(SAMPLE_VOTES / "test.csv")
    faces = load_faces(sample_dir, "test", full.labels, limit=10, votes=SAMPLE_VOTES / "test.csv")
    assert faces.votes is not None and len(faces.votes) == len(faces.targets) == 10
    for image, counts in zip(faces.images, faces.votes):
        index = next(i for i, other in enumerate(full.images) if np.array_equal(other, image))
        assert np.array_equal(full.votes[index], counts)


# --- the full data: the shipped card, the portraits ----------------------------------------------


def _ferplus_dir(full: Path) -> Path:
    path = full.parent / "ferplus"
    if not (path / "test.csv").is_file():
        pytest.skip(f"FER+ votes not found beside {full}")
    return path


def test_the_shipped_cards_ferplus_figures_are_what_evaluation_measures(full_data: Path) -> None:
    from train.evaluate import evaluate_model

    votes = _ferplus_dir(full_data) / "test.csv"
    record = json.loads((MODELS / "fer_vgg.card.json").read_text())["ferplus"]
    assert record["command"].startswith("fer-train evaluate models/fer_vgg.keras ")
    assert record["command"] in (MODELS / "fer_vgg.card.md").read_text()
    report = evaluate_model(MODELS / "fer_vgg.keras", full_data, record["split"], votes=votes)
    assert report.ferplus is not None
    for key in ("accuracy", "agreement", "annotator_share"):
        assert record[key] == pytest.approx(report.ferplus[key], abs=6e-5)
        assert record["without_duplicates"][key] == pytest.approx(report.ferplus["without_duplicates"][key], abs=6e-5)
    assert record["without_duplicates"]["left_out"] == report.ferplus["without_duplicates"]["left_out"] > 0
    assert record["votes_sha256"] == report.ferplus["votes_sha256"]


def test_the_portraits_are_scored_with_faces_cropped(full_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    portraits = full_data.parent / "portraits"
    if not (portraits / "angry").is_dir():
        pytest.skip(f"portraits not found beside {full_data}")
    assert main(["evaluate", str(MODELS / "fer_vgg.keras"), "--data", str(portraits), "--crop-faces"]) == 0
    out = capsys.readouterr().out
    assert "(110 images)" in out and float(out.split("accuracy  ")[1].split()[0]) > 0.5


def test_ship_with_votes_writes_the_cards_ferplus_section(sample_dir: Path, tmp_path: Path) -> None:
    run, out = tmp_path / "run", tmp_path / "models"
    assert main(["--arch", "tiny", "--data", str(sample_dir), "--votes", str(SAMPLE_VOTES / "train.csv"),
                 "--out", str(run), "--epochs", "1", "--set", "train.warmup_epochs=0",
                 "--set", "data.val_fraction=0.2"]) == 0
    assert main(["ship", str(run), "--out", str(out), "--name", "m", "--data", str(sample_dir),
                 "--votes", str(SAMPLE_VOTES / "test.csv")]) == 0
    card = json.loads((out / "m.card.json").read_text())
    assert card["ferplus"]["images"] == card["evaluation"]["images"]
    assert card["ferplus"]["accuracy"] == card["evaluation"]["accuracy"]
    assert card["ferplus"]["command"] in (out / "m.card.md").read_text()
