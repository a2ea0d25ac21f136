"""Stochastic weight averaging: exact batch-norm recalibration and an average that survives resuming."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from train.__main__ import main
from train.config import load_config
from train.training import read_history, train

pytestmark = pytest.mark.slow


def test_recalibration_measures_the_mean_and_variance_of_the_images() -> None:
    import keras

    from train.recalibrate import recalibrate_batch_norm

    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.99)(inputs))
    rng = np.random.default_rng(0)
    images = rng.normal([1.0, -2.0, 5.0], [1.0, 0.5, 3.0], size=(64, 4, 4, 3)).astype("float32")
    recalibrate_batch_norm(model, images, batch_size=16)
    layer = model.layers[-1]
    # equal batches: the running mean of batch means is the mean over all images
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_mean), images.mean(axis=(0, 1, 2)),
                               rtol=1e-5, atol=1e-5)
    batch_variances = images.reshape(4, 16 * 16, 3).var(axis=1).mean(axis=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_variance), batch_variances, rtol=1e-4)
    assert layer.momentum == 0.99  # restored for training


def test_recalibration_measures_activations_with_dropout_off() -> None:
    import keras

    from train.recalibrate import recalibrate_batch_norm

    inputs = keras.Input((4, 4, 3))
    dropped = keras.layers.Dropout(0.5)(inputs)
    model = keras.Model(inputs, keras.layers.BatchNormalization()(dropped))
    rng = np.random.default_rng(1)
    images = rng.normal(3.0, 1.0, size=(64, 4, 4, 3)).astype("float32")
    recalibrate_batch_norm(model, images, batch_size=64)
    layer = model.layers[-1]
    # dropout on would scale kept values by 2 and zero half of them: variance near 10, not 1
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_variance), images.var(axis=(0, 1, 2)),
                               rtol=1e-4)
    assert model.layers[1].rate == 0.5  # restored for training


def _config(sample: Path, *overrides: str):
    return load_config(None, [f"data.dir={sample}", "data.val_fraction=0.25", "model.arch=vgg", "model.width=4",
                              "train.warmup_epochs=0", "train.batch_size=32", *overrides])


def _trainable(path: Path) -> list[np.ndarray]:
    import keras

    model = keras.saving.load_model(path, compile=False)
    return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]


def test_weight_averaging_phase_carries_its_mean_across_a_resume(sample_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_config(sample_dir, "train.epochs=2"), run, verbose=0)
    swa = ("train.epochs=4", "train.swa=true", "train.schedule=constant", "train.learning_rate=0.0005")
    train(_config(sample_dir, *swa), run, resume=True, verbose=0, stop_after=3)
    # one epoch averaged: the average holds exactly that epoch's weights
    epoch3 = _trainable(run / "last.keras")
    for averaged, weight in zip(_trainable(run / "swa.keras"), epoch3):
        np.testing.assert_allclose(averaged, weight, rtol=1e-6, atol=1e-7)

    train(_config(sample_dir, *swa), run, resume=True, verbose=0)
    epoch4 = _trainable(run / "last.keras")
    for averaged, w3, w4 in zip(_trainable(run / "swa.keras"), epoch3, epoch4):
        np.testing.assert_allclose(averaged, (w3 + w4) / 2, rtol=1e-5, atol=1e-6)

    state = json.loads((run / "state.json").read_text())
    assert state["swa"] == {"from_epoch": 3, "epochs_averaged": 2}
    assert state["schedule"][-1]["set"] == ["train.learning_rate=0.0005", "train.schedule=constant", "train.swa=true"]
    rows = read_history(run / "history.csv")
    assert [("swa_val_accuracy" in row) for row in rows] == [False, False, True, True]
    assert (run / "history.csv").read_text().splitlines()[1].startswith("1,")  # rewritten as written
    assert [row["learning_rate"] for row in rows[2:]] == pytest.approx([0.0005, 0.0005])
    best = max(rows, key=lambda row: max(row["val_accuracy"], row.get("swa_val_accuracy", 0.0)))
    assert state["best_val_accuracy"] == pytest.approx(max(best["val_accuracy"], best.get("swa_val_accuracy", 0)))
    from_average = best.get("swa_val_accuracy", -1.0) >= best["val_accuracy"]
    assert state["best_average_from"] == (3 if from_average else 0)

    out = tmp_path / "models"
    assert main(["ship", str(run), "--out", str(out), "--name", "small", "--data", str(sample_dir)]) == 0
    card = json.loads((out / "small.card.json").read_text())
    assert card["training"]["weight_average_from"] == state["best_average_from"]
    assert card["training"]["best_val_accuracy"] == pytest.approx(state["best_val_accuracy"], abs=1e-4)
    assert "--set train.swa=true" in card["commands"]["resume"]


def test_resume_moves_a_float32_run_to_bfloat16_with_its_optimizer_state(
        sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A float32 run that resumes on a host with AVX512-BF16 or AMX must really train in bfloat16 there.

    Loading a float32 checkpoint under the mixed_bfloat16 policy gives the model wrapper that policy
    but not the layers that compute, which once made the resume think it had nothing to move.
    """
    import keras

    from train import training

    run = tmp_path / "run"
    base = ("model.arch=tiny", "train.epochs=2", "train.precision=auto")
    monkeypatch.setattr(training, "bfloat16_native", lambda: False)
    train(_config(sample_dir, *base), run, verbose=0, stop_after=1)
    saved = keras.saving.load_model(run / "last.keras")
    assert training.precision_of(saved) == "float32"
    steps = int(keras.ops.convert_to_numpy(saved.optimizer.iterations))
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:  # what the resume sees: the float32 checkpoint loaded under the bfloat16 policy
        assert training.precision_of(keras.saving.load_model(run / "last.keras")) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    capsys.readouterr()

    monkeypatch.setattr(training, "bfloat16_native", lambda: True)
    train(_config(sample_dir, *base), run, resume=True, verbose=0)
    assert "continuing in mixed_bfloat16 (the checkpoint was float32)" in capsys.readouterr().out
    moved = keras.saving.load_model(run / "last.keras")
    assert training.precision_of(moved) == "mixed_bfloat16"
    assert any(layer.compute_dtype == "bfloat16" for layer in moved.layers if layer.weights)
    assert int(keras.ops.convert_to_numpy(moved.optimizer.iterations)) == 2 * steps  # the step count carried on


def test_unknown_schedule_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--arch", "tiny", "--out", str(tmp_path / "run"), "--set", "train.schedule=step"]) == 2
    assert "train.schedule must be one of cosine, constant" in capsys.readouterr().err


def test_resume_moves_a_bfloat16_run_to_float32_with_its_optimizer_state(sample_dir: Path, tmp_path: Path) -> None:
    """bfloat16 is emulated (several times slower) on CPUs without AMX or AVX512-BF16."""
    import keras

    from train.evaluate import load_keras_model
    from train.training import precision_of

    run = tmp_path / "run"
    base = ("model.arch=tiny", "train.epochs=2")
    train(_config(sample_dir, *base, "train.precision=mixed_bfloat16"), run, verbose=0, stop_after=1)
    assert keras.mixed_precision.global_policy().name == "float32"  # the run gave the process its policy back
    saved = keras.saving.load_model(run / "last.keras")
    assert precision_of(saved) == "mixed_bfloat16"
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert precision_of(load_keras_model(run / "last.keras")) == "float32"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"  # the loader kept the caller's
    finally:
        keras.mixed_precision.set_global_policy("float32")
    steps = int(keras.ops.convert_to_numpy(saved.optimizer.iterations))

    # killed before the new part's first epoch ended: nothing about the part is recorded yet
    assert main(["--arch", "tiny", "--out", str(run), "--resume", "--set", "train.precision=float32",
                 "--stop-after", "1"]) == 0
    assert load_config(run / "config.toml").train.precision == "mixed_bfloat16"

    train(_config(sample_dir, *base, "train.precision=float32"), run, resume=True, verbose=0)
    moved = keras.saving.load_model(run / "last.keras")
    assert precision_of(moved) == "float32"
    assert int(keras.ops.convert_to_numpy(moved.optimizer.iterations)) == 2 * steps  # the step count carried on
    state = json.loads((run / "state.json").read_text())
    assert state["schedule"][-1] == {"from_epoch": 2, "epochs": 2, "set": ["train.precision=float32"]}
    assert load_config(run / "config.toml").train.precision == "float32"


def _moving_statistics(model) -> list[np.ndarray]:
    import keras

    from train.recalibrate import batch_norm_layers

    return [keras.ops.convert_to_numpy(v) for layer in batch_norm_layers(model)
            for v in (layer.moving_mean, layer.moving_variance)]


def test_recalibrated_run_validates_and_saves_clean_statistics(sample_dir: Path, tmp_path: Path) -> None:
    import keras

    from train.evaluate import evaluate_model
    from train.recalibrate import calibration_images, recalibrate_batch_norm
    from train.training import prepare_data

    run = tmp_path / "run"
    train(_config(sample_dir, "train.epochs=1"), run, verbose=0)
    config = _config(sample_dir, "train.epochs=2", "train.recalibrate_bn=true")
    train(config, run, resume=True, verbose=0)

    saved = keras.saving.load_model(run / "last.keras", compile=False)
    measured = _moving_statistics(saved)
    recalibrate_batch_norm(saved, calibration_images(prepare_data(config)[0].images, config.train.seed))
    for before, again in zip(measured, _moving_statistics(saved)):
        np.testing.assert_allclose(before, again, rtol=1e-4, atol=1e-5)  # already the clean images' statistics

    # the logged figure is the saved model's, statistics included
    rows = read_history(run / "history.csv")
    report = evaluate_model(run / "last.keras", sample_dir, "val")
    assert rows[-1]["val_accuracy"] == pytest.approx(report.accuracy, abs=1e-6)
    state = json.loads((run / "state.json").read_text())
    assert state["schedule"][-1]["set"] == ["train.recalibrate_bn=true"]


def test_recalibrate_command_writes_a_new_model_that_evaluates_beside_its_run_files(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    from train.recalibrate import calibration_images, recalibrate_batch_norm
    from train.training import prepare_data

    run = tmp_path / "run"
    config = _config(sample_dir, "train.epochs=1")
    train(config, run, verbose=0)
    out = tmp_path / "elsewhere" / "clean.keras"
    assert main(["recalibrate", str(run / "last.keras"), "--out", str(out), "--data", str(sample_dir)]) == 0
    assert "recalibrated 8 batch-norm layers" in capsys.readouterr().out

    original = keras.saving.load_model(run / "last.keras", compile=False)
    before = _moving_statistics(original)
    recalibrate_batch_norm(original, calibration_images(prepare_data(config)[0].images, config.train.seed))
    written = _moving_statistics(keras.saving.load_model(out, compile=False))
    for expected, got, old in zip(_moving_statistics(original), written, before):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert not all(np.allclose(old, got) for old, got in zip(before, written))
    # the run's files travel with it, so --split val re-draws the same validation images
    assert (out.parent / "clean.config.toml").is_file() and (out.parent / "clean.dataset.json").is_file()
    assert main(["evaluate", str(out), "--data", str(sample_dir), "--split", "val"]) == 0

    assert main(["recalibrate", str(run / "last.keras"), "--out", str(out), "--data", str(sample_dir)]) == 2
    assert "already exists" in capsys.readouterr().err
    lone = tmp_path / "lone.keras"
    lone.write_bytes((run / "last.keras").read_bytes())
    assert main(["recalibrate", str(lone), "--out", str(tmp_path / "x.keras"), "--data", str(sample_dir)]) == 2
    assert "needs the run's config" in capsys.readouterr().err
    assert main(["recalibrate", str(tmp_path / "none.keras"), "--out", str(tmp_path / "y.keras")]) == 2
    assert "model file" in capsys.readouterr().err and not (tmp_path / "y.keras").exists()


def test_nesterov_sgd_trains_resumes_and_cannot_be_swapped_mid_run(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    run = tmp_path / "run"
    sgd = ("model.arch=tiny", "train.epochs=2", "train.optimizer=sgd", "train.learning_rate=0.01")
    train(_config(sample_dir, *sgd), run, verbose=0, stop_after=1)
    saved = keras.saving.load_model(run / "last.keras")
    assert isinstance(saved.optimizer, keras.optimizers.SGD)
    assert saved.optimizer.nesterov and saved.optimizer.momentum == pytest.approx(0.9)
    assert load_config(run / "config.toml").train.optimizer == "sgd"

    assert main(["--arch", "tiny", "--out", str(run), "--resume", "--set", "train.optimizer=adamw"]) == 2
    assert "train.optimizer cannot change on resume" in capsys.readouterr().err
    train(_config(sample_dir, *sgd), run, resume=True, verbose=0)
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 2
    assert main(["--arch", "tiny", "--out", str(tmp_path / "x"), "--set", "train.optimizer=rmsprop"]) == 2
    assert "train.optimizer must be one of adamw, sgd" in capsys.readouterr().err


def test_bfloat16_support_is_read_from_the_cpus_flags(tmp_path: Path) -> None:
    from train.training import bfloat16_native

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu sse2 avx2 fma\n")
    assert bfloat16_native(cpuinfo) is False
    cpuinfo.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
    assert bfloat16_native(cpuinfo) is True
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp bf16 i8mm\n")  # aarch64 spells it so
    assert bfloat16_native(cpuinfo) is True
    cpuinfo.write_text("model name\t: something without flags\n")
    assert bfloat16_native(cpuinfo) is None
    assert bfloat16_native(tmp_path / "missing") is None


def test_a_bfloat16_run_on_a_cpu_that_emulates_it_says_how_to_continue_in_float32(
        sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from train import training

    monkeypatch.setattr(training, "bfloat16_native", lambda: False)
    train(_config(sample_dir, "model.arch=tiny", "train.epochs=1", "train.precision=mixed_bfloat16"),
          tmp_path / "slow", verbose=0)
    assert "bfloat16 is emulated" in capsys.readouterr().err
    monkeypatch.setattr(training, "bfloat16_native", lambda: True)
    train(_config(sample_dir, "model.arch=tiny", "train.epochs=1", "train.precision=mixed_bfloat16"),
          tmp_path / "fast", verbose=0)
    assert "bfloat16 is emulated" not in capsys.readouterr().err


def test_auto_precision_is_decided_again_on_each_host_a_run_resumes_on(
        sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A long run crosses machines between sessions; auto must not pin the first host's choice."""
    import keras

    from train import training

    run = tmp_path / "run"
    base = ("model.arch=tiny", "train.epochs=2", "train.precision=auto")
    monkeypatch.setattr(training, "bfloat16_native", lambda: True)
    train(_config(sample_dir, *base), run, verbose=0, stop_after=1)
    assert "train.precision=auto: mixed_bfloat16" in capsys.readouterr().out
    assert training.precision_of(keras.saving.load_model(run / "last.keras")) == "mixed_bfloat16"
    assert load_config(run / "config.toml").train.precision == "auto"

    monkeypatch.setattr(training, "bfloat16_native", lambda: False)
    train(_config(sample_dir, *base), run, resume=True, verbose=0)
    assert "train.precision=auto: float32" in capsys.readouterr().out
    assert training.precision_of(keras.saving.load_model(run / "last.keras")) == "float32"
    assert load_config(run / "config.toml").train.precision == "auto"
    # the recipe did not change, so the resume records no change of settings
    assert "set" not in json.loads((run / "state.json").read_text())["schedule"][-1]
    monkeypatch.setattr(training, "bfloat16_native", lambda: None)  # unknown CPU: never emulate
    assert training.resolved_precision("auto") == "float32"
    assert training.resolved_precision("mixed_bfloat16") == "mixed_bfloat16"
