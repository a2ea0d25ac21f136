"""A real (tiny) training run: run directory contents, resume, and evaluation outputs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from train.__main__ import main
from train.config import load_config
from train.errors import TrainError
from train.training import train

pytestmark = pytest.mark.slow


def tiny_config(sample: Path, epochs: int):
    return load_config(None, [f"data.dir={sample}", "data.val_fraction=0.25", "model.arch=tiny",
                              f"train.epochs={epochs}", "train.warmup_epochs=0", "train.batch_size=32"])


def test_run_directory_and_resume(sample_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train(tiny_config(sample_dir, 2), run, verbose=0)
    assert result.epochs_done == 2
    for name in ("config.toml", "dataset.json", "history.csv", "last.keras", "best.keras", "model.keras", "state.json"):
        assert (run / name).is_file(), name
    info = json.loads((run / "dataset.json").read_text())
    assert len(info["train_fingerprint"]) == 64 and info["train_images"] + info["val_images"] == 112
    with pytest.raises(TrainError, match="already holds a run"):
        train(tiny_config(sample_dir, 2), run, verbose=0)

    # the data may move, but resuming on other images is refused
    moved = tmp_path / "moved"
    shutil.copytree(sample_dir, moved)
    assert train(tiny_config(moved, 4), run, resume=True, verbose=0, stop_after=3).epochs_done == 3
    next(iter(sorted((moved / "train" / "happy").iterdir()))).unlink()
    with pytest.raises(TrainError, match="differ from the ones"):
        train(tiny_config(moved, 4), run, resume=True, verbose=0)
    resumed = train(tiny_config(sample_dir, 4), run, resume=True, verbose=0)
    assert resumed.epochs_done == 4
    with (run / "history.csv").open() as handle:
        epochs = [int(float(row["epoch"])) for row in csv.DictReader(handle)]
    assert epochs == [1, 2, 3, 4]
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 4


def test_resume_without_checkpoint_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--arch", "tiny", "--out", str(tmp_path / "nothing"), "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err


def test_missing_data_folder_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--arch", "tiny", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and "\n" not in err


def test_evaluate_writes_metrics_and_confusion_matrix(sample_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    train(tiny_config(sample_dir, 1), run, verbose=0)
    out = tmp_path / "eval"
    assert main(["evaluate", str(run / "model.keras"), "--data", str(sample_dir), "--split", "test",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "macro-F1" in printed and "disgust" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    matrix = json.loads((out / "confusion_matrix.json").read_text())["matrix"]
    assert metrics["images"] == 70 == sum(map(sum, matrix))
    assert abs(metrics["accuracy"] - sum(matrix[i][i] for i in range(7)) / 70) < 1e-9
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_rejects_a_non_model(tmp_path: Path, sample_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "fake.keras"
    fake.write_text("hello")
    assert main(["evaluate", str(fake), "--data", str(sample_dir)]) == 2
    assert "not a readable Keras model" in capsys.readouterr().err


def test_ship_writes_model_card_with_measured_figures(sample_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    train(tiny_config(sample_dir, 2), run, verbose=0)
    out = tmp_path / "models"
    assert main(["ship", str(run), "--out", str(out), "--name", "tiny", "--data", str(sample_dir)]) == 0
    card = json.loads((out / "tiny.card.json").read_text())
    assert main(["evaluate", str(out / "tiny.keras"), "--data", str(sample_dir), "--split", "test"]) == 0
    printed = capsys.readouterr().out
    assert f"accuracy  {card['evaluation']['accuracy']:.4f}" in printed  # the card's figure, re-measured
    assert main(["evaluate", str(out / "tiny.keras"), "--data", str(sample_dir), "--split", "val", "--tta"]) == 0
    assert f"accuracy  {card['validation']['accuracy_with_flip_tta']:.4f}" in capsys.readouterr().out
    assert card["training"]["epochs_done"] == 2 and card["parameters"] > 0
    assert "fer-train ship" in (out / "tiny.card.md").read_text()
    assert (out / "tiny_eval" / "confusion_matrix.png").is_file()
    assert main(["ship", str(tmp_path / "nothing"), "--out", str(out)]) == 2


def test_stop_after_then_resume_with_a_shorter_schedule(sample_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train(tiny_config(sample_dir, 4), run, verbose=0, stop_after=1).epochs_done == 1
    state = json.loads((run / "state.json").read_text())
    assert state["epochs_done"] == 1 and state["schedule"] == [{"from_epoch": 1, "epochs": 4}]

    assert train(tiny_config(sample_dir, 3), run, resume=True, verbose=0).epochs_done == 3
    state = json.loads((run / "state.json").read_text())
    assert state["schedule"] == [{"from_epoch": 1, "epochs": 4}, {"from_epoch": 2, "epochs": 3}]
    with (run / "history.csv").open() as handle:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(handle)]
    # The 3-epoch cosine (no warm-up) has decayed to zero at its end; the saved 4-epoch one would not have.
    assert rates[-1] < 1e-7 < rates[0]

    out = tmp_path / "models"
    assert main(["ship", str(run), "--out", str(out), "--name", "tiny", "--data", str(sample_dir),
                 "--config-path", "tiny.toml"]) == 0
    card = json.loads((out / "tiny.card.json").read_text())
    assert card["commands"]["train"] == [f"fer-train --config tiny.toml --out {run} --epochs 4 --stop-after 1",
                                         f"fer-train --config tiny.toml --out {run} --resume --epochs 3"]
    assert main(["--arch", "tiny", "--out", str(run), "--resume", "--stop-after", "0"]) == 2


def test_warm_restart_with_lighter_augmentation_is_recorded(sample_dir: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    base = ["--arch", "tiny", "--data", str(sample_dir), "--set", "data.val_fraction=0.25",
            "--set", "train.warmup_epochs=0", "--set", "train.batch_size=32"]
    assert main([*base, "--epochs", "2", "--out", str(run)]) == 0
    # the model and the validation split are fixed by the checkpoint: changing them is refused
    assert main([*base, "--epochs", "3", "--out", str(run), "--resume", "--set", "model.width=8"]) == 2
    assert "model.width cannot change on resume" in capsys.readouterr().err
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 2

    assert main([*base, "--epochs", "3", "--out", str(run), "--resume", "--set", "augment.erasing=0.1",
                 "--set", "train.weight_decay=0.001"]) == 0
    state = json.loads((run / "state.json").read_text())
    # the first part records how the run was started (no config file, its flags), later parts what they changed
    started = [f"data.dir={sample_dir}", "data.val_fraction=0.25", "model.arch=tiny", "train.batch_size=32",
               "train.warmup_epochs=0"]
    assert state["schedule"] == [{"from_epoch": 1, "epochs": 2, "config": None, "set": started},
                                 {"from_epoch": 3, "epochs": 3,
                                  "set": ["augment.erasing=0.1", "train.weight_decay=0.001"]}]
    assert load_config(run / "config.toml").augment.erasing == 0.1

    out = tmp_path / "models"
    assert main(["ship", str(run), "--out", str(out), "--name", "tiny", "--data", str(sample_dir)]) == 0
    commands = json.loads((out / "tiny.card.json").read_text())["commands"]
    # the card names the data as a user's shell finds it, not where it was on this machine
    flags = "".join(f" --set {change}" for change in ["data.dir=$FER2013_DIR", *started[1:]])
    assert commands["train"] == [f"fer-train --out {run} --epochs 2{flags} --stop-after 2",
                                 f"fer-train --out {run} --resume --epochs 3{flags} "
                                 "--set augment.erasing=0.1 --set train.weight_decay=0.001"]
    assert commands["resume"].endswith("--resume --epochs 3" + flags + " --set augment.erasing=0.1 --set train.weight_decay=0.001")


def test_the_cards_command_starts_the_run_as_it_was_started(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run started with --set on top of a recipe file is retraced by its card, not just by the file."""
    import shlex

    run, recipe = tmp_path / "run", tmp_path / "recipe.toml"
    recipe.write_text(f'[data]\ndir = "{sample_dir}"\nval_fraction = 0.25\n[model]\narch = "tiny"\n'
                      "[train]\nepochs = 5\nwarmup_epochs = 0\nbatch_size = 32\n")
    assert main(["--config", str(recipe), "--out", str(run), "--epochs", "1", "--set", "augment.erasing=0.0",
                 "--set", "train.weight_decay=0.002"]) == 0
    out = tmp_path / "models"
    assert main(["ship", str(run), "--out", str(out), "--name", "tiny", "--data", str(sample_dir)]) == 0
    (command,) = json.loads((out / "tiny.card.json").read_text())["commands"]["train"]
    assert command.startswith(f"fer-train --config {recipe} --out {run} --epochs 1 ")
    capsys.readouterr()
    assert main([*shlex.split(command)[1:], "--print-config"]) == 0
    (tmp_path / "replayed.toml").write_text(capsys.readouterr().out)
    assert load_config(tmp_path / "replayed.toml") == load_config(run / "config.toml")
    assert load_config(tmp_path / "replayed.toml") != load_config(recipe, ["train.epochs=1"])


def test_plain_resume_from_the_recipe_file_keeps_earlier_parts_changes(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--config FILE --resume` continues the run as it was left, not as the file first described it."""
    run, recipe = tmp_path / "run", tmp_path / "tiny.toml"
    recipe.write_text(f'[data]\ndir = "{sample_dir}"\nval_fraction = 0.25\n[model]\narch = "tiny"\n'
                      "[augment]\nerasing = 0.25\n[train]\nepochs = 5\nwarmup_epochs = 0\nbatch_size = 32\n")
    assert main(["--config", str(recipe), "--out", str(run), "--stop-after", "1"]) == 0
    assert main(["--config", str(recipe), "--out", str(run), "--resume", "--epochs", "3",
                 "--set", "augment.erasing=0.1", "--stop-after", "2"]) == 0
    capsys.readouterr()

    assert main(["--config", str(recipe), "--out", str(run), "--resume"]) == 0
    out = capsys.readouterr().out
    assert "train.epochs=3 (the file says 5)" in out and "augment.erasing=0.1 (the file says 0.25)" in out
    state = json.loads((run / "state.json").read_text())
    assert state["epochs_done"] == 3
    assert state["schedule"] == [{"from_epoch": 1, "epochs": 5, "config": str(recipe)},
                                 {"from_epoch": 2, "epochs": 3, "set": ["augment.erasing=0.1"]}]
    assert load_config(run / "config.toml").augment.erasing == 0.1


def test_card_limitations_follow_the_data() -> None:
    from train.model_card import _limitations

    fer = _limitations({"labels": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
                        "training": {"train_images": 100}})
    assert "FER2013" in fer
    own = _limitations({"labels": ["bored", "confused", "engaged"],
                        "training": {"train_images": 90, "class_counts": {"bored": 40, "confused": 10, "engaged": 40}}})
    assert "FER2013" not in own and "confused, has 10 training images" in own


def test_evaluate_on_the_runs_own_validation_split(sample_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    train(tiny_config(sample_dir, 1), run, verbose=0)
    info = json.loads((run / "dataset.json").read_text())
    assert main(["evaluate", str(run / "model.keras"), "--data", str(sample_dir), "--split", "val"]) == 0
    printed = capsys.readouterr().out
    assert f"({info['val_images']} images" in printed and "validation split" in printed
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "m.keras").write_bytes((run / "model.keras").read_bytes())
    assert main(["evaluate", str(alone / "m.keras"), "--data", str(sample_dir), "--split", "val"]) == 2
    assert "needs the run's config" in capsys.readouterr().err


def test_card_commands_carry_earlier_parts_changes() -> None:
    from train.model_card import train_commands

    schedule = [{"from_epoch": 1, "epochs": 10},
                {"from_epoch": 6, "epochs": 8, "set": ["augment.erasing=0.1"]},
                {"from_epoch": 9, "epochs": 12, "set": ["train.swa=true", "augment.erasing=0.2"]}]
    commands = train_commands("c.toml", Path("run"), schedule)
    # each command starts from c.toml, so the third part must repeat the second part's change (updated)
    assert commands[1].endswith("--epochs 8 --set augment.erasing=0.1 --stop-after 8")
    assert commands[2].endswith("--resume --epochs 12 --set train.swa=true --set augment.erasing=0.2")


def test_the_resnet_teacher_arch_builds_trains_and_resumes(sample_dir: Path, tmp_path: Path) -> None:
    """model.arch = "resnet": the teacher recipe's shape, then a real (narrow) run through the CLI."""
    import keras
    import numpy as np

    from train.data import load_dataset
    from train.models import build_model

    recipe = load_config(ROOT / "train" / "configs" / "resnet_teacher.toml", [])
    model = build_model(recipe.model, 7)
    assert model.name == "fer_resnet" and model.count_params() == 2_801_063
    # eight residual blocks; downsampling by stride in stages 2-4 only: 48 -> 6 at the last stage
    assert len([layer for layer in model.layers if isinstance(layer, keras.layers.Add)]) == 8
    assert tuple(model.get_layer("stage4_block2_out").output.shape[1:3]) == (6, 6)

    # The subsampled 1x1 shortcut is the strided one it replaced (a 1x1 convolution with stride 2 reads
    # every other row and column), so runs saved with strided 1x1 convolutions (resnet_teacher in git
    # history) give their weights to today's graph unchanged. Checked against that arithmetic in numpy:
    # TensorFlow's own strided 1x1 kernel is the one this graph avoids.
    subsample = model.get_layer("stage2_block1_subsample")
    projection = model.get_layer("stage2_block1_proj")
    block_input = keras.Model(model.inputs, subsample.input)
    shortcut = keras.Model(model.inputs, projection.output)
    faces = load_dataset(sample_dir, "test").images[::5, ..., None].astype(np.float32)
    x = block_input.predict(faces, verbose=0)
    strided = np.einsum("nhwc,cf->nhwf", x[:, ::2, ::2, :], projection.get_weights()[0][0, 0])
    assert x.shape[1] % 2 == 0 and strided.shape[1:3] == (x.shape[1] // 2, x.shape[2] // 2)
    np.testing.assert_allclose(shortcut.predict(faces, verbose=0), strided, rtol=1e-4, atol=1e-4)

    run = tmp_path / "resnet"
    base = ["--arch", "resnet", "--set", f"data.dir={sample_dir}", "--set", "model.width=4",
            "--set", "data.val_fraction=0.25", "--set", "train.warmup_epochs=0", "--set", "train.batch_size=32"]
    assert main([*base, "--out", str(run), "--epochs", "2", "--stop-after", "1"]) == 0
    assert main(["--out", str(run), "--resume"]) == 0
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 2
    saved = keras.saving.load_model(run / "model.keras", compile=False)
    probs = saved.predict(np.zeros((2, 48, 48, 1), dtype=np.float32), verbose=0)
    assert saved.name == "fer_resnet" and probs.shape == (2, 7)
