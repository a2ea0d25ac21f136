"""``fer-train combine``: an ensemble shipped as one model, scored and converted like any other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SAMPLE
from train.__main__ import main


def _tiny_run(root: Path, name: str, *overrides: str) -> Path:
    from train.config import load_config
    from train.training import train

    config = load_config(None, [f"data.dir={SAMPLE}", "model.arch=tiny", "train.epochs=2", "train.warmup_epochs=0",
                                "data.val_fraction=0.25", *overrides])
    train(config, root / name, verbose=0)
    return root / name / "model.keras"


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two members from different starts on one validation split, and a third on another split."""
    root = tmp_path_factory.mktemp("members")
    return [_tiny_run(root, "a", "train.seed=1", "data.val_seed=7"),
            _tiny_run(root, "b", "train.seed=2", "data.val_seed=7"),
            _tiny_run(root, "c", "train.seed=3")]


def test_combined_model_is_the_ensemble_evaluate_scores(members: list[Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from train.data import load_dataset
    from train.evaluate import evaluate_model, load_keras_model

    out = tmp_path / "pair.keras"
    assert main(["combine", f"{members[0]},{members[1]}", "--out", str(out)]) == 0
    assert "--split val scores it" in capsys.readouterr().out
    faces = load_dataset(SAMPLE, "test").images[..., None].astype(np.float32)
    parts = [load_keras_model(path).predict(faces, verbose=0) for path in members[:2]]
    combined = load_keras_model(out)
    assert combined.count_params() == sum(load_keras_model(path).count_params() for path in members[:2])
    assert np.abs(combined.predict(faces, verbose=0) - np.mean(parts, axis=0)).max() < 1e-6
    assert np.abs(parts[0] - parts[1]).max() > 1e-3  # different starts: the average is not one member
    for split in ("test", "val"):
        whole = evaluate_model(out, SAMPLE, split)
        ensemble = evaluate_model(f"{members[0]},{members[1]}", SAMPLE, split)
        assert (whole.accuracy, whole.confusion) == (ensemble.accuracy, ensemble.confusion), split


def test_members_from_different_splits_combine_without_a_validation_split(members: list[Path], tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mixed.keras"
    assert main(["combine", f"{members[0]},{members[2]}", "--out", str(out)]) == 0
    assert "no validation split" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--data", str(SAMPLE), "--split", "val"]) == 2
    assert "config" in capsys.readouterr().err


def test_combined_model_converts_to_one_artifact(members: list[Path], tmp_path: Path) -> None:
    from convert.__main__ import main as convert
    from edge.vision.classifier import Classifier
    from train.data import load_dataset
    from train.evaluate import load_keras_model

    model = tmp_path / "pair.keras"
    assert main(["combine", f"{members[0]},{members[1]}", "--out", str(model)]) == 0
    out = tmp_path / "artifacts"
    # two epochs on the sample leave the members near chance, so int8's drop there is not the point
    assert convert([str(model), "--out", str(out), "--formats", "int8,float32", "--calibration-data", str(SAMPLE),
                    "--verify-data", str(SAMPLE), "--max-drop", "100"]) == 0
    faces = load_dataset(SAMPLE, "test").images
    expected = load_keras_model(model).predict(faces[..., None].astype(np.float32), verbose=0)
    with Classifier(out, "float32") as classifier:
        assert np.abs(classifier.predict(faces) - expected).max() < 1e-5


@pytest.mark.parametrize("case, message", [
    ("one", "at least two models"),
    ("exists", "already exists"),
    ("sidecar", "out.dataset.json already exists"),
    ("suffix", "must be a .keras file"),
    ("missing", "does not exist"),
])
def test_bad_combine_is_a_one_line_error(case: str, message: str, members: list[Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.keras"
    spec = f"{members[0]},{members[1]}"
    if case == "one":
        spec = str(members[0])
    elif case == "exists":
        out.write_bytes(b"already here")
    elif case == "sidecar":  # another model's record, whose .keras was moved away
        (tmp_path / "out.dataset.json").write_text("already here")
    elif case == "suffix":
        out = tmp_path / "out.h5"
    elif case == "missing":
        spec = f"{members[0]},{tmp_path / 'nope.keras'}"
    assert main(["combine", spec, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    if case == "exists":
        assert out.read_bytes() == b"already here"
    elif case == "sidecar":
        assert (tmp_path / "out.dataset.json").read_text() == "already here" and not out.exists()
    else:
        assert not out.exists()
