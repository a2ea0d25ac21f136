"""Undoing class weights: the bias shift equals dividing the probabilities, and it is chosen on validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from train.__main__ import main
from train.prior import apply_to_model, choose, corrected, run_class_weights, softmax_layer
from train.training import class_weights, train
from tests.test_train_fit import tiny_config

LABELS = ("a", "b", "c")


def test_shifting_the_softmax_bias_divides_the_probabilities_by_the_weights() -> None:
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    before = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    weights = np.array([0.5, 1.0, 3.0])
    assert softmax_layer(model) is not None
    apply_to_model(model, weights)
    after = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    np.testing.assert_allclose(after, corrected(before, weights), atol=1e-5)


def test_correction_is_applied_only_when_accuracy_rises_and_macro_f1_holds() -> None:
    # the model over-predicts class c (weighted up in training): undoing that fixes two images
    targets = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[0.40, 0.1, 0.50], [0.8, 0.1, 0.1], [0.1, 0.42, 0.48], [0.1, 0.8, 0.1],
                      [0.1, 0.1, 0.8], [0.2, 0.2, 0.6]])
    helped = choose(targets, probs, np.array([1.0, 1.0, 2.0]), LABELS, True)
    assert helped.applied and helped.corrected_val_accuracy == 1.0 and helped.val_accuracy == pytest.approx(4 / 6)
    # undoing a weight the model did not over-predict costs accuracy: kept
    hurt = choose(targets, probs, np.array([1.0, 1.0, 0.1]), LABELS, True)
    assert not hurt.applied and hurt.corrected_val_accuracy < hurt.val_accuracy
    # asked for, it is applied anyway, and the figures that argue against it are still recorded
    forced = choose(targets, probs, np.array([1.0, 1.0, 0.1]), LABELS, True, "undo")
    assert forced.applied and forced.corrected_val_accuracy == hurt.corrected_val_accuracy
    assert not choose(targets, probs, np.array([1.0, 1.0, 2.0]), LABELS, True, "keep").applied
    assert not choose(targets, probs, None, LABELS, True).applied
    assert "softmax" in choose(targets, probs, np.ones(3), LABELS, False).reason


def test_run_class_weights_are_the_ones_training_used(tmp_path: Path) -> None:
    model = tmp_path / "m.keras"
    (tmp_path / "m.config.toml").write_text('[train]\nclass_weight = "sqrt"\n')
    counts = {"a": 10, "b": 40, "c": 50}
    (tmp_path / "m.dataset.json").write_text(json.dumps({"labels": list(counts), "train_class_counts": counts}))
    targets = np.repeat(np.arange(3), list(counts.values()))
    expected = class_weights(targets, 3, "sqrt")
    np.testing.assert_allclose(run_class_weights(model), [expected[i] for i in range(3)])
    (tmp_path / "m.config.toml").write_text('[train]\nclass_weight = "none"\n')
    assert run_class_weights(model) is None


@pytest.mark.slow
def test_ship_records_the_choice_and_the_card_figures_are_the_shipped_models(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    train(tiny_config(sample_dir, 2), run, verbose=0)
    out = tmp_path / "models"
    assert main(["ship", str(run), "--out", str(out), "--name", "tiny", "--data", str(sample_dir)]) == 0
    card = json.loads((out / "tiny.card.json").read_text())
    prior = card["training"]["prior_correction"]
    assert prior["corrected_val_accuracy"] is not None
    shipped_val = prior["corrected_val_accuracy"] if prior["applied"] else prior["val_accuracy"]
    assert card["validation"]["accuracy"] == pytest.approx(shipped_val, abs=1e-4)
    assert "Class weights" in (out / "tiny.card.md").read_text()

    kept = tmp_path / "kept"
    assert main(["ship", str(run), "--out", str(kept), "--name", "tiny", "--data", str(sample_dir),
                 "--keep-class-weights"]) == 0
    card = json.loads((kept / "tiny.card.json").read_text())
    assert not card["training"]["prior_correction"]["applied"]
    assert card["validation"]["accuracy"] == pytest.approx(prior["val_accuracy"], abs=1e-4)
    assert card["commands"]["ship"].endswith("--keep-class-weights")
