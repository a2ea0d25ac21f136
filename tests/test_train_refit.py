"""A refit (data.val_fraction = 0): a recipe chosen on validation, trained on every training image.

With nothing held out there is nothing to choose on, so the schedule's end point (the weight
average, when on) is the model, shipping must be told what validation would have decided, and
nothing pretends to a validation figure.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from train.__main__ import main
from train.config import load_config
from train.errors import TrainError
from train.evaluate import validation_split
from train.prior import as_asked
from train.training import train

pytestmark = pytest.mark.slow


def _refit_config(sample: Path, epochs: int, *extra: str):
    return load_config(None, [f"data.dir={sample}", "data.val_fraction=0", "model.arch=tiny",
                              f"train.epochs={epochs}", "train.warmup_epochs=0", "train.batch_size=32",
                              "train.patience=1", *extra])


def _weights(path: Path) -> list[np.ndarray]:
    import keras

    return [np.asarray(w) for w in keras.saving.load_model(path, compile=False).get_weights()]


def test_refit_trains_on_every_image_and_keeps_the_end_point(sample_dir: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "refit"
    # patience 1 would stop a validated run at once; a refit has nothing to stop on and runs its schedule
    result = train(_refit_config(sample_dir, 3, "train.recalibrate_bn=true"), run, verbose=0)
    assert result.epochs_done == 3 and result.best_epoch == 3 and result.best_val_accuracy is None
    info = json.loads((run / "dataset.json").read_text())
    assert info["train_images"] == 112 and info["val_images"] == 0
    state = json.loads((run / "state.json").read_text())
    assert state["best_val_accuracy"] is None and state["best_epoch"] == 3
    rows = (run / "history.csv").read_text().splitlines()
    assert len(rows) == 4 and "val_accuracy" not in rows[0]
    for ours, last in zip(_weights(run / "best.keras"), _weights(run / "last.keras")):
        np.testing.assert_array_equal(ours, last)

    # the averaging phase: the average, not the last weights, becomes the model
    result = train(_refit_config(sample_dir, 5, "train.schedule=constant", "train.swa=true"), run, resume=True,
                   verbose=0)
    assert result.average_from == 4 and result.best_epoch == 5
    state = json.loads((run / "state.json").read_text())
    assert state["best_epoch"] == 5 and state["best_average_from"] == 4 and state["swa"]["epochs_averaged"] == 2
    for ours, average in zip(_weights(run / "best.keras"), _weights(run / "swa.keras")):
        np.testing.assert_array_equal(ours, average)
    with pytest.raises(TrainError, match="no validation split"):
        validation_split(run / "best.keras", sample_dir)
    # what the command line says the model is
    assert main(["--out", str(run), "--resume", "--epochs", "6"]) == 0
    assert "no validation (a refit): the model is the weight average of epochs 4-6" in capsys.readouterr().out


def test_shipping_a_refit_needs_the_class_weight_decision_stated(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, out = tmp_path / "refit", tmp_path / "models"
    train(_refit_config(sample_dir, 2), run, verbose=0)
    assert main(["ship", str(run), "--out", str(out), "--name", "r", "--data", str(sample_dir)]) != 0
    err = capsys.readouterr().err
    assert "--undo-class-weights or --keep-class-weights" in err and len(err.strip().splitlines()) == 1
    assert not (out / "r.keras").exists()

    assert main(["ship", str(run), "--out", str(out), "--name", "r", "--data", str(sample_dir),
                 "--undo-class-weights"]) == 0
    card = json.loads((out / "r.card.json").read_text())
    assert card["validation"] is None and card["training"]["best_val_accuracy"] is None
    assert card["training"]["prior_correction"]["applied"] and card["commands"]["ship"].endswith("--undo-class-weights")
    text = (out / "r.card.md").read_text()
    assert "**Validation**: none" in text and "112 training images (all of the training split" in text
    assert main(["evaluate", str(out / "r.keras"), "--data", str(sample_dir), "--split", "val"]) != 0
    assert "no validation split" in capsys.readouterr().err


def test_a_refit_without_class_weights_has_nothing_to_undo() -> None:
    assert not as_asked(None, True, "undo").applied
    assert not as_asked(np.ones(3), True, "keep").applied
    assert as_asked(np.ones(3), True, "undo").applied
    with pytest.raises(TrainError, match="no validation split"):
        as_asked(np.ones(3), True, "auto")
