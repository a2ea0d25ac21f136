"""Distillation from a multi-view teacher: the views, the cached targets and a resumable run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from train.__main__ import main
from train.config import load_config
from train.distill import TEACHER_FILE, averaged_predictions, mixed_targets, shifted, views
from train.errors import TrainError
from train.training import read_history, train


def test_shift_moves_pixels_and_mirrors_the_border() -> None:
    images = np.arange(2 * 5 * 5, dtype=np.uint8).reshape(2, 5, 5)
    right = shifted(images, 0, 2)
    np.testing.assert_array_equal(right[:, :, 2:], images[:, :, :3])
    np.testing.assert_array_equal(right[:, :, 1], images[:, :, 1])  # reflected: column 1 mirrors into 1
    down = shifted(images, -1, 0)
    np.testing.assert_array_equal(down[:, :4], images[:, 1:])
    assert shifted(images, 0, 0) is images


def test_views_are_mirrored_pairs_of_each_offset() -> None:
    images = np.random.default_rng(0).integers(0, 255, (3, 8, 8)).astype(np.uint8)
    assert len(views(images, 1)) == 1
    two = views(images, 2)
    np.testing.assert_array_equal(two[1], images[:, :, ::-1])
    assert len(views(images, 6)) == 6 and len(views(images, 10)) == 10
    with pytest.raises(TrainError, match="teacher views must be one of"):
        views(images, 4)


class _MeanBrightness:
    """A stand-in model whose two-class output depends on which half of the face is brighter."""

    def predict(self, batch: np.ndarray, batch_size: int, verbose: int) -> np.ndarray:
        left = batch[:, :, : batch.shape[2] // 2].mean(axis=(1, 2, 3))
        right = batch[:, :, batch.shape[2] // 2:].mean(axis=(1, 2, 3))
        p = 1.0 / (1.0 + np.exp(-(left - right) / 10.0))
        return np.stack([p, 1 - p], axis=1)


def test_averaging_over_mirrored_views_cancels_a_left_right_preference() -> None:
    images = np.zeros((4, 8, 8), dtype=np.uint8)
    images[:, :, :4] = 200
    single = averaged_predictions(_MeanBrightness(), images, 1)
    assert single[0, 0] > 0.99
    mirrored = averaged_predictions(_MeanBrightness(), images, 2)
    np.testing.assert_allclose(mirrored, 0.5, atol=1e-6)


def test_mixed_targets_put_the_rest_on_the_true_label() -> None:
    teacher = np.array([[0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    mixed = mixed_targets(np.array([0, 0]), teacher, 0.7)
    np.testing.assert_allclose(mixed, [[0.44, 0.56], [0.72, 0.28]], atol=1e-6)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-6)


def _tiny_teacher(path: Path, seed: int) -> Path:
    import keras

    from train.config import ModelConfig
    from train.models import build_model

    keras.utils.set_random_seed(seed)
    build_model(ModelConfig(arch="tiny"), 3).save(path)
    return path


def test_several_teachers_are_averaged_and_each_one_keys_the_cache(tmp_path: Path) -> None:
    from train.distill import teacher_targets
    from train.evaluate import load_keras_model

    images = np.random.default_rng(1).integers(0, 255, (6, 48, 48)).astype(np.uint8)
    a, b = _tiny_teacher(tmp_path / "a.keras", 1), _tiny_teacher(tmp_path / "b.keras", 2)
    one = [averaged_predictions(load_keras_model(path), images, 2) for path in (a, b)]
    assert np.abs(one[0] - one[1]).max() > 1e-3  # two different teachers, or the test proves nothing

    both = teacher_targets(f"{a}, {b}", images, "fp", 2, tmp_path / "run", 3)
    np.testing.assert_allclose(both, (one[0] + one[1]) / 2, atol=1e-6)
    with np.load(tmp_path / "run" / TEACHER_FILE) as cached:
        assert len(json.loads(str(cached["key"]))["teacher_sha256"]) == 2
    # the cache belongs to that pair: the first teacher alone is computed afresh
    alone = teacher_targets(str(a), images, "fp", 2, tmp_path / "run", 3)
    np.testing.assert_allclose(alone, one[0], atol=1e-6)
    with pytest.raises(TrainError, match="teacher model .*missing.keras does not exist"):
        teacher_targets(f"{a},{tmp_path / 'missing.keras'}", images, "fp", 2, tmp_path / "run", 3)


def test_the_card_of_an_ensemble_student_points_at_each_teachers_card(tmp_path: Path) -> None:
    from train.model_card import _first_stage_lines, first_stage

    a, b = tmp_path / "a.keras", tmp_path / "b.keras"
    (tmp_path / "a.card.md").write_text("# Model card: a\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(load_config(None, [f"train.teacher={a},{b}", "train.teacher_views=6"]).to_toml())
    stage = first_stage(run)
    assert stage is not None and stage["teachers"] == [{"model": str(a), "card": str(tmp_path / "a.card.md")},
                                                       {"model": str(b), "card": None}]
    lines = "\n".join(_first_stage_lines(stage))
    assert "an ensemble of 2 models" in lines and f"`{a}`, trained as its card" in lines
    assert f"`{b}`, whose training is not recorded beside it" in lines

    # a member without a card but inside a committed run (state.json beside it) is retraced from that run
    member = tmp_path / "teacher_run" / "v1.keras"
    member.parent.mkdir()
    (member.parent / "state.json").write_text(json.dumps({"epochs_done": 9, "schedule": [
        {"from_epoch": 1, "epochs": 12, "config": "recipe.toml", "set": ["train.precision=mixed_bfloat16"]},
        {"from_epoch": 10, "epochs": 9}]}))
    (run / "config.toml").write_text(load_config(None, [f"train.teacher={a},{member}"]).to_toml())
    stage = first_stage(run)
    assert stage is not None and stage["teachers"][1]["run"] == str(member.parent)
    assert stage["teachers"][1]["commands"] == [
        "fer-train --config recipe.toml --out runs/v1 --epochs 12 --set train.precision=mixed_bfloat16 --stop-after 9",
        "fer-train --config recipe.toml --out runs/v1 --resume --epochs 9 --set train.precision=mixed_bfloat16",
        f"fer-train ship runs/v1 --out {member.parent} --name v1"]
    lines = "\n".join(_first_stage_lines(stage))
    assert f"`{member}`, committed beside its run's records, trained by:" in lines
    assert "  fer-train ship runs/v1" in lines


def _config(sample: Path, *overrides: str):
    return load_config(None, [f"data.dir={sample}", "data.val_fraction=0.25", "model.arch=tiny",
                              "train.warmup_epochs=0", "train.batch_size=32", *overrides])


@pytest.mark.slow
def test_distilled_run_starts_from_the_teacher_caches_its_targets_and_resumes(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    teacher_run = tmp_path / "teacher"
    train(_config(sample_dir, "train.epochs=1"), teacher_run, verbose=0)
    teacher = teacher_run / "model.keras"
    student = tmp_path / "student"
    options = ("train.epochs=2", f"train.teacher={teacher}", "train.teacher_views=2", f"train.init={teacher}",
               "train.learning_rate=1e-12", "train.weight_decay=0.0")
    # a negligible learning rate: the student keeps the teacher's weights
    train(_config(sample_dir, *options), student, verbose=0, stop_after=1)
    start = keras.saving.load_model(student / "last.keras", compile=False)
    source = keras.saving.load_model(teacher, compile=False)
    for a, b in zip(start.get_weights(), source.get_weights()):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-6)
    with np.load(student / TEACHER_FILE) as cached:
        probabilities = cached["probabilities"]
        key = json.loads(str(cached["key"]))
    assert key["views"] == 2 and probabilities.shape[1] == 7
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    history = read_history(student / "history.csv")
    assert 0.0 <= history[0]["val_accuracy"] <= 1.0 and history[0]["loss"] > 0

    # resuming reuses the cache (it is not rewritten) and may not swap the teacher
    stamp = (student / TEACHER_FILE).stat().st_mtime_ns
    assert main(["--out", str(student), "--resume", "--set", "train.teacher_views=6"]) == 2
    assert "train.teacher_views cannot change on resume" in capsys.readouterr().err
    train(_config(sample_dir, *options), student, resume=True, verbose=0)
    assert (student / TEACHER_FILE).stat().st_mtime_ns == stamp
    assert json.loads((student / "state.json").read_text())["epochs_done"] == 2
    assert (student / "model.keras").is_file()

    # the card names the teacher and, since it sits in a run directory, the commands that trained it
    out = tmp_path / "models"
    assert main(["ship", str(student), "--out", str(out), "--name", "student", "--data", str(sample_dir)]) == 0
    stage = json.loads((out / "student.card.json").read_text())["training"]["first_stage"]
    assert stage["teacher"] == str(teacher) and stage["teacher_views"] == 2 and stage["run"] == str(teacher_run)
    assert stage["commands"][0].startswith("fer-train --config train/configs/shipped.toml --out runs/first-stage")
    card = (out / "student.card.md").read_text()
    assert f"Distilled from `{teacher}`" in card and stage["commands"][-1] in card


def test_a_missing_teacher_or_mismatched_init_is_a_one_line_error(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--arch", "tiny", "--set", f"data.dir={sample_dir}", "--set", "train.epochs=1", "--set", "train.warmup_epochs=0"]
    assert main([*base, "--out", str(tmp_path / "a"), "--set", f"train.teacher={tmp_path / 'none.keras'}"]) == 2
    assert "teacher model" in capsys.readouterr().err and not (tmp_path / "a" / "last.keras").exists()
    assert main([*base, "--out", str(tmp_path / "b"), "--set", "train.teacher_weight=1.5"]) == 2
    assert "train.teacher_weight must be in [0, 1]" in capsys.readouterr().err


@pytest.mark.slow
def test_init_from_another_architecture_is_refused(sample_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "tiny"
    train(_config(sample_dir, "train.epochs=1"), run, verbose=0)
    assert main(["--out", str(tmp_path / "vgg"), "--set", f"data.dir={sample_dir}", "--set", "model.arch=vgg",
                 "--set", "model.width=4", "--set", "train.epochs=1", "--set", "train.warmup_epochs=0",
                 "--set", f"train.init={run / 'model.keras'}"]) == 2
    assert "train.init" in capsys.readouterr().err and not (tmp_path / "vgg" / "last.keras").exists()


def _random_linear_model(path: Path, seed: int) -> Path:
    """A model whose predictions vary from face to face from the first call: trained tiny models all
    predict the majority class after an epoch, which could not tell one member from the average."""
    import keras

    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(7, activation="softmax",
                                                 kernel_initializer=keras.initializers.RandomNormal(0.0, 1e-3, seed))])
    model.save(path)
    return path


def test_evaluate_scores_an_ensemble_over_views_as_its_members_average(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`fer-train evaluate a.keras,b.keras --views N`: the figure a teacher offers its student."""
    from train.data import load_dataset
    from train.evaluate import confusion_matrix, load_keras_model

    a, b = _random_linear_model(tmp_path / "a.keras", 1), _random_linear_model(tmp_path / "b.keras", 2)
    out = tmp_path / "eval"
    assert main(["evaluate", f"{a},{b}", "--data", str(sample_dir), "--views", "6", "--out", str(out)]) == 0
    assert "6 mirrored and shifted views" in capsys.readouterr().out
    test = load_dataset(sample_dir, "test")
    member = averaged_predictions(load_keras_model(a), test.images, 6)
    pair = member + averaged_predictions(load_keras_model(b), test.images, 6)
    expected = confusion_matrix(test.targets, pair.argmax(axis=1), 7).tolist()
    assert expected != confusion_matrix(test.targets, member.argmax(axis=1), 7).tolist()  # the pair is not one member
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["views"] == 6 and metrics["model"] == f"{a},{b}" and metrics["confusion_matrix"] == expected

    assert main(["evaluate", f"{a},{tmp_path / 'missing.keras'}", "--data", str(sample_dir)]) == 2
    assert "missing.keras does not exist" in capsys.readouterr().err


def test_an_ensemble_is_scored_on_validation_only_where_its_members_share_the_split(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b, other = tmp_path / "a", tmp_path / "b", tmp_path / "other"
    train(_config(sample_dir, "train.epochs=1"), a, verbose=0)
    train(_config(sample_dir, "train.epochs=1", "train.learning_rate=0.01"), b, verbose=0)
    train(_config(sample_dir, "train.epochs=1", "train.seed=7"), other, verbose=0)  # another validation split
    assert main(["evaluate", f"{a / 'model.keras'},{b / 'model.keras'}", "--data", str(sample_dir),
                 "--split", "val"]) == 0
    assert "the run's validation split" in capsys.readouterr().out
    assert main(["evaluate", f"{a / 'model.keras'},{other / 'model.keras'}", "--data", str(sample_dir),
                 "--split", "val"]) == 2
    assert "held out the same validation images" in capsys.readouterr().err


def test_consistent_targets_average_every_teacher_on_the_batch_and_its_mirror(tmp_path: Path) -> None:
    """The teachers judge the pixels handed to them (the augmented batch), not the clean faces."""
    import tensorflow as tf

    from train.distill import consistent_targets, teacher_models
    from train.evaluate import load_keras_model

    a, b = _random_linear_model(tmp_path / "a.keras", 1), _random_linear_model(tmp_path / "b.keras", 2)
    images = np.random.default_rng(3).uniform(0, 255, (5, 48, 48)).astype(np.float32)
    labels = np.array([0, 3, 6, 1, 2])
    targets = consistent_targets(teacher_models(f"{a},{b}", 7), 2, 0.7, 7)
    got = targets(tf.constant(images[..., None]), tf.constant(labels)).numpy()
    members = [load_keras_model(path) for path in (a, b)]
    # by hand: each model on the batch and on its mirror, averaged, then 0.3 on the true label
    expected = mixed_targets(labels, sum(averaged_predictions(m, images, 2) for m in members) / 2, 0.7)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # neither one member nor the unmirrored batch gives the same targets, or this test proves nothing
    assert np.abs(mixed_targets(labels, averaged_predictions(members[0], images, 2), 0.7) - expected).max() > 1e-4
    assert np.abs(mixed_targets(labels, averaged_predictions(members[0], images, 1) / 2
                                + averaged_predictions(members[1], images, 1) / 2, 0.7) - expected).max() > 1e-4
    with pytest.raises(TrainError, match="consistent teaching takes teacher views 1 or 2"):
        consistent_targets(teacher_models(str(a), 7), 6, 0.7, 7)
    with pytest.raises(TrainError, match="teacher model .*missing.keras does not exist"):
        teacher_models(f"{a},{tmp_path / 'missing.keras'}", 7)
    with pytest.raises(TrainError, match="predicts 7 classes, the data has 3"):
        teacher_models(str(a), 3)


def test_consistent_teachers_run_in_the_training_precision(tmp_path: Path) -> None:
    """On a bfloat16 run the teachers run in bfloat16 too (cheaper), with probabilities close to float32's."""
    import keras

    from train.config import ModelConfig
    from train.distill import teacher_models
    from train.evaluate import load_keras_model
    from train.models import build_model

    keras.utils.set_random_seed(5)
    path = tmp_path / "vgg.keras"
    build_model(ModelConfig(arch="vgg", width=4), 7).save(path)
    [fast] = teacher_models(str(path), 7, "mixed_bfloat16")
    assert any(layer.compute_dtype == "bfloat16" for layer in fast.layers)
    images = np.random.default_rng(0).uniform(0, 255, (8, 48, 48, 1)).astype(np.float32)
    exact = load_keras_model(path).predict(images, verbose=0)
    approx = keras.ops.convert_to_numpy(keras.ops.cast(fast(images, training=False), "float32"))
    np.testing.assert_allclose(approx, exact, atol=2e-2)


def test_the_input_pipeline_hands_the_teacher_the_augmented_batch(sample_dir: Path) -> None:
    """make_dataset applies ``teach`` after augmentation: the targets are the teacher's on what the student sees."""
    import tensorflow as tf

    from train.data import load_dataset
    from train.training import make_dataset

    data = load_dataset(sample_dir, "test")
    seen: list[float] = []

    def darken(images):  # a stand-in augmentation the targets must reflect
        return images * 0.0

    def teach(images, labels):  # "probability" of class 0 = the batch's mean pixel, as the teacher saw it
        mean = tf.reduce_mean(images, axis=[1, 2, 3])
        return tf.stack([mean] + [tf.cast(labels, tf.float32)] * 6, axis=1)

    for x, y in make_dataset(tf, data, 16, False, 0, darken, None, None, teach).take(2):
        seen += list(y.numpy()[:, 0])
        assert float(tf.reduce_max(x)) == 0.0
    assert seen and max(seen) == 0.0  # the clean faces average ~120: the teacher saw the augmented ones
    _, y = next(iter(make_dataset(tf, data, 16, False, 0, None, None, None, teach)))
    assert y.numpy()[:, 0].min() > 10.0  # and without augmentation, the faces themselves


def test_consistent_mode_takes_one_or_two_views_and_is_checked_before_training(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--arch", "tiny", "--set", f"data.dir={sample_dir}", "--set", "train.epochs=1", "--set", "train.warmup_epochs=0"]
    assert main([*base, "--out", str(tmp_path / "a"), "--set", "train.teacher_mode=consistent"]) == 2
    assert "train.teacher_mode=consistent takes train.teacher_views 1 or 2" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "b"), "--set", "train.teacher_mode=online"]) == 2
    assert "train.teacher_mode must be one of fixed, consistent" in capsys.readouterr().err
    # a missing teacher stops the run before its directory is written
    assert main([*base, "--out", str(tmp_path / "c"), "--set", "train.teacher_mode=consistent", "--set",
                 "train.teacher_views=1", "--set", f"train.teacher={tmp_path / 'none.keras'}"]) == 2
    assert "teacher model" in capsys.readouterr().err and not (tmp_path / "c").exists()
    # mixup needs teachers that judge the blends
    assert main([*base, "--out", str(tmp_path / "d"), "--set", "augment.mixup=0.4"]) == 2
    assert "augment.mixup needs consistent teaching" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "e"), "--set", "augment.mixup=-1"]) == 2
    assert "augment.mixup must be in [0, 10]" in capsys.readouterr().err


def test_mixup_blends_faces_labels_and_weights_in_the_same_share() -> None:
    """Each blend's label row and weight must say how much of which face it holds, or the targets lie."""
    import tensorflow as tf

    from train.augment import make_mixer

    tf.random.set_seed(0)
    classes = np.arange(7)
    images = np.broadcast_to((classes * 10.0)[:, None, None, None], (7, 48, 48, 1)).astype(np.float32)
    weights = np.linspace(0.5, 2.0, 7).astype(np.float32)  # face i has class i, value 10 i, weight w_i
    blended, shares, blended_weights = (t.numpy() for t in make_mixer(0.4, 7)(
        tf.constant(images), tf.constant(classes), tf.constant(weights)))
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-6)
    assert (shares >= 0).all() and (np.count_nonzero(shares > 1e-3, axis=1) <= 2).all()  # at most two faces each
    np.testing.assert_allclose(blended[:, 0, 0, 0], shares @ (classes * 10.0), atol=1e-3)
    np.testing.assert_allclose(blended.std(axis=(1, 2, 3)), 0.0, atol=1e-3)  # whole faces blended, not patches
    np.testing.assert_allclose(blended_weights, shares @ weights, atol=1e-5)
    assert shares.max(axis=1).min() < 0.95  # Beta(0.4, 0.4): some face is really blended
    # without weights, two outputs
    assert len(make_mixer(0.4, 7)(tf.constant(images), tf.constant(classes))) == 2


def test_consistent_targets_take_blended_label_rows(tmp_path: Path) -> None:
    import tensorflow as tf

    from train.distill import consistent_targets, teacher_models
    from train.evaluate import load_keras_model

    a = _random_linear_model(tmp_path / "a.keras", 1)
    images = np.random.default_rng(4).uniform(0, 255, (3, 48, 48)).astype(np.float32)
    rows = np.array([[0.25, 0, 0, 0.75, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0.5, 0.5]], np.float32)
    got = consistent_targets(teacher_models(str(a), 7), 1, 0.7, 7)(tf.constant(images[..., None]),
                                                                   tf.constant(rows)).numpy()
    teacher = averaged_predictions(load_keras_model(a), images, 1)
    np.testing.assert_allclose(got, 0.7 * teacher + 0.3 * rows, atol=1e-6)


@pytest.mark.slow
def test_a_consistent_run_trains_without_a_cache_and_its_card_says_how_it_was_taught(
        sample_dir: Path, tmp_path: Path) -> None:
    teacher = _random_linear_model(tmp_path / "teacher.keras", 4)
    student = tmp_path / "student"
    options = [f"data.dir={sample_dir}", "data.val_fraction=0.25", "model.arch=tiny", "train.warmup_epochs=0",
               "train.batch_size=32", "train.epochs=2", f"train.teacher={teacher}", "train.teacher_views=2",
               "train.teacher_mode=consistent", "augment.mixup=0.4"]
    assert main(["--out", str(student), "--stop-after", "1", *[a for o in options for a in ("--set", o)]]) == 0
    assert not (student / TEACHER_FILE).exists()
    assert main(["--out", str(student), "--resume"]) == 0
    history = read_history(student / "history.csv")
    assert [row["epoch"] for row in history] == [1, 2] and history[-1]["loss"] > 0
    out = tmp_path / "models"
    assert main(["ship", str(student), "--out", str(out), "--name", "student", "--data", str(sample_dir)]) == 0
    stage = json.loads((out / "student.card.json").read_text())["training"]["first_stage"]
    assert stage["teacher_mode"] == "consistent"
    card = (out / "student.card.md").read_text()
    assert stage["mixup"] == 0.4
    assert ("on the augmented batch the student saw in each step (faces blended in pairs by mixup, Beta(0.4, 0.4)) "
            "and on its mirror image") in card
    assert "train.teacher_mode=consistent" in card  # the command that reproduces it


def test_a_teacher_that_trained_on_the_validation_faces_is_refused(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its predictions on those faces are memories: the student's validation would be flattered."""
    teacher = _random_linear_model(tmp_path / "teacher.keras", 1)
    record = tmp_path / "teacher.dataset.json"  # what `fer-train ship` writes beside a shipped model
    plain = ["--arch", "tiny", "--set", f"data.dir={sample_dir}", "--set", "train.epochs=1",
             "--set", "train.warmup_epochs=0"]
    assert main([*plain, "--out", str(tmp_path / "probe")]) == 0  # the split a student of these settings holds out
    held_out = json.loads((tmp_path / "probe" / "dataset.json").read_text())
    base = [*plain, "--set", f"train.teacher={teacher}", "--set", "train.teacher_views=1"]

    refit = {**held_out, "train_class_counts": {k: held_out["train_class_counts"][k] + held_out["val_class_counts"][k]
                                                for k in held_out["train_class_counts"]},
             "val_class_counts": {k: 0 for k in held_out["val_class_counts"]}, "val_images": 0, "val_fingerprint": "x"}
    record.write_text(json.dumps(refit))
    assert main([*base, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "trained on this run's validation faces (it is a refit" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists()

    record.write_text(json.dumps({**held_out, "val_fingerprint": "another split"}))
    assert main([*base, "--out", str(tmp_path / "b")]) == 2
    assert "it held out a different validation split" in capsys.readouterr().err

    # a refit student has no validation to flatter; the same split, or other data, is fine
    assert main([*base, "--out", str(tmp_path / "c"), "--set", "data.val_fraction=0"]) == 0
    record.write_text(json.dumps(held_out))
    assert main([*base, "--out", str(tmp_path / "d")]) == 0
    record.write_text(json.dumps({**held_out, "val_fingerprint": "x", "train_class_counts": {"happy": 1}}))
    assert main([*base, "--out", str(tmp_path / "e")]) == 0
