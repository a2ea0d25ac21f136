"""Fit a model into a run directory that survives being killed and can be resumed.

A run directory holds: ``config.toml``, ``dataset.json`` (sizes, class counts, fingerprint),
``history.csv`` (one row per epoch, flushed), ``last.keras`` (model + optimizer, every epoch),
``best.keras`` (best validation accuracy), ``state.json`` and, at the end, ``model.keras``.
Every file is written to a temporary name and renamed, so a kill never leaves a torn checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from train.config import Config, load_config
from train.data import Dataset
from train.data_location import data_name
from train.errors import TrainError
from train.objectives import class_weights, loss_and_metrics  # noqa: F401  (re-exported)
from train.run_data import prepare_data, soft_targets, split_seed  # noqa: F401  (re-exported)
from train.run_files import atomic_save_model, atomic_write_text, read_history  # noqa: F401  (re-exported)
from train.swa import SWA_FILE

STATE = "state.json"
HISTORY = "history.csv"


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    epochs_done: int
    best_epoch: int
    best_val_accuracy: float | None  # None for a refit (data.val_fraction = 0): nothing was validated
    stopped_early: bool
    average_from: int = 0  # the model is the weight average of epochs average_from..best_epoch (0: not an average)


def make_dataset(tf: Any, data: Dataset, batch_size: int, shuffle: bool, seed: int,
                 augment: Callable[[Any], Any] | None = None,
                 weights: dict[int, float] | None = None, soft_targets: np.ndarray | None = None,
                 teach: Callable[[Any, Any], Any] | None = None,
                 mix: Callable[..., tuple[Any, ...]] | None = None) -> Any:
    """Batches of (pixels, label[, weight]); ``soft_targets`` (N, classes) replace the integer labels.

    ``teach`` (consistent distillation) turns each augmented batch and its labels into the targets, so
    the teachers see exactly the pixels the student does; ``mix`` (mixup) blends the augmented faces,
    labels and weights before the teachers see them.
    """
    images = data.images[..., None].astype(np.float32)
    targets = data.targets.astype(np.int32) if soft_targets is None else soft_targets.astype(np.float32)
    if weights is not None:
        sample_weight = np.asarray([weights[int(t)] for t in data.targets], dtype=np.float32)
        ds = tf.data.Dataset.from_tensor_slices((images, targets, sample_weight))
    else:
        ds = tf.data.Dataset.from_tensor_slices((images, targets))
    if shuffle:
        ds = ds.shuffle(len(targets), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment is not None:
        # One augmenting call at a time: augmenting a batch costs ~12 ms, so one call keeps up with any
        # training step, while AUTOTUNE's parallel calls take cores from the step itself. On 2 cores the
        # shipped VGG's epoch went from 567 s to 521 s, and a step now costs what it does unaugmented.
        ds = ds.map(lambda x, *rest: (augment(x), *rest), num_parallel_calls=1)  # labels[, weights] pass through
    if mix is not None:
        ds = ds.map(mix, num_parallel_calls=1)
    if teach is not None:
        ds = ds.map(lambda x, y, *rest: (x, teach(x, y), *rest), num_parallel_calls=1)
    return ds.prefetch(tf.data.AUTOTUNE)


def append_history(path: Path, row: dict[str, float]) -> None:
    """Append one epoch's row; a new column (say, once weight averaging starts) rewrites the header."""
    fields: list[str] = []
    if path.exists():
        with path.open(newline="") as handle:
            fields = next(csv.reader(handle), [])
    if path.exists() and all(name in fields for name in row):
        with path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=fields, restval="").writerow(row)
            handle.flush()
            os.fsync(handle.fileno())
        return
    rows: list[dict[str, Any]] = []
    if path.exists():
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))  # as written: epochs stay integers
    rows.append(row)
    fields = fields + [name for name in row if name not in fields]
    _write_history(path, fields, rows)


def _write_history(path: Path, fields: list[str], rows: list[dict[str, Any]]) -> None:
    """The whole file anew, beside it and then renamed, so a kill mid-write leaves the old one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def drop_unsaved_epochs(path: Path, epochs_done: int) -> None:
    """Remove history rows past the last checkpoint: a run stopped after an epoch's row was appended but
    before its state.json was written runs that epoch again, and must not list it twice."""
    if not path.exists():
        return
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = list(reader.fieldnames or []), list(reader)
    kept = [row for row in rows if int(float(row["epoch"])) <= epochs_done]
    if len(kept) == len(rows):
        return
    _write_history(path, fields, kept)


def _make_callback(keras: Any, run_dir: Path, patience: int, best: tuple[int, float, int], total_epochs: int,
                   schedule: list[dict[str, Any]], average: Any = None, val_ds: Any = None,
                   swa_from: int = 0, config_text: str = "", calibration: np.ndarray | None = None,
                   val_votes: Dataset | None = None) -> Any:
    class RunCheckpoint(keras.callbacks.Callback):
        """Per-epoch history row, last/best checkpoints and early stopping, all resumable from disk.

        With weight averaging on, the average is folded in, validated and saved every epoch too, and
        whichever of the two models validates better is the candidate for best.keras. With batch-norm
        recalibration on, the model's statistics are re-measured on ``calibration`` and the model is
        validated here rather than by ``fit`` (the statistics only serve inference, so training
        carries on unaffected).
        """

        def __init__(self) -> None:
            super().__init__()
            self.best_epoch, self.best_value, self.best_average_from = best
            self.stopped_early = False

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            if calibration is not None:
                from train.recalibrate import recalibrate_batch_norm

                recalibrate_batch_norm(self.model, calibration)
                if val_ds is not None:
                    result = self.model.evaluate(val_ds, verbose=0, return_dict=True)
                    if logs is not None:  # the same dict the progress line prints
                        logs["val_loss"], logs["val_accuracy"] = float(result["loss"]), float(result["accuracy"])
            logs = dict(logs or {})
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            if val_votes is not None and val_votes.votes is not None:  # the annotators' view, for the record
                from train.ferplus import agreement

                probs = self.model.predict(val_votes.images[..., None].astype(np.float32), batch_size=256, verbose=0)
                figures = agreement(np.asarray(probs).argmax(axis=1), val_votes.votes, val_votes.labels)
                logs["val_ferplus_agreement"] = figures["agreement"]
                logs["val_annotator_share"] = figures["annotator_share"]
                print(f"epoch {epoch + 1}: validation FER+ agreement {figures['agreement']:.4f}, annotator share "
                      f"{figures['annotator_share']:.4f}", flush=True)
            candidate, value = self.model, float(logs.get("val_accuracy", logs.get("accuracy", 0.0)))
            if average is not None:
                average.update(self.model)
                atomic_save_model(average.average_model, run_dir / SWA_FILE)
                if val_ds is not None:
                    logs["swa_val_loss"], logs["swa_val_accuracy"] = average.evaluate(val_ds)
                    if logs["swa_val_accuracy"] >= value:
                        candidate, value = average.average_model, logs["swa_val_accuracy"]
                else:
                    candidate = average.average_model
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in sorted(logs.items())}}
            append_history(run_dir / HISTORY, row)
            # a refit has nothing to choose on: the recipe's end point (the latest model, or the average) is the model
            if val_ds is None or value > self.best_value:
                self.best_epoch, self.best_value = epoch + 1, value
                # the first epoch a weight-averaged best.keras averages from; 0 when it is a plain checkpoint
                self.best_average_from = swa_from if average is not None and candidate is average.average_model else 0
                atomic_save_model(candidate, run_dir / "best.keras")
            atomic_save_model(self.model, run_dir / "last.keras")
            state: dict[str, Any] = {
                "epochs_done": epoch + 1, "total_epochs": total_epochs, "schedule": schedule,
                "best_epoch": self.best_epoch,
                "best_val_accuracy": self.best_value if val_ds is not None else None,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            if average is not None:
                state["swa"] = {"from_epoch": swa_from, "epochs_averaged": average.count}
            state["best_average_from"] = self.best_average_from
            if config_text:
                atomic_write_text(run_dir / "config.toml", config_text)
            atomic_write_text(run_dir / STATE, json.dumps(state, indent=2) + "\n")
            if val_ds is not None and epoch + 1 - self.best_epoch >= patience:
                self.stopped_early = True
                self.model.stop_training = True
                print(f"early stopping: no better validation accuracy for {patience} epochs", flush=True)

    return RunCheckpoint()


def _best_so_far(state: dict[str, Any]) -> float:
    """The best validation accuracy a resumed run must beat (none recorded: a refit, or a new run)."""
    value = state.get("best_val_accuracy")
    return -1.0 if value is None else float(value)


def _learning_rate(keras: Any, config: Config, steps_per_epoch: int) -> Any:
    t = config.train
    if t.schedule == "constant":
        # a schedule object, not a float: an optimizer built with a schedule only accepts another one
        return keras.optimizers.schedules.ExponentialDecay(t.learning_rate, decay_steps=1, decay_rate=1.0)
    warmup = t.warmup_epochs * steps_per_epoch
    decay = max(1, (t.epochs - t.warmup_epochs) * steps_per_epoch)
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(t.learning_rate, decay, alpha=0.0)
    return keras.optimizers.schedules.CosineDecay(
        t.learning_rate / 10, decay, alpha=0.0, warmup_target=t.learning_rate, warmup_steps=warmup
    )


def _loading_record(config: Config, data: Dataset) -> dict[str, Any]:
    """How the data was read, so evaluate, convert and the report load the same images the same way."""
    import dataclasses

    from train.run_info import load_options

    options = load_options(config.data)
    options["csv_columns"] = dataclasses.asdict(options["csv_columns"])
    return {"label_mode": config.data.labels, "load_options": options, **dict(data.info)}


# What a resumed run may change: the augmentation, the optimizer's schedule and weight decay, weight
# averaging, and the precision (the weights are float32 either way). Everything else is baked into
# the checkpoint (the model) or decides which images are validation.
RESUMABLE_KEYS = ("augment.", "train.epochs", "train.learning_rate", "train.weight_decay", "train.patience",
                  "train.schedule", "train.swa", "train.precision", "train.recalibrate_bn")


def _compile(keras: Any, model: Any, learning_rate: Any, weight_decay: float, name: str = "adamw",
             soft: bool = False) -> Any:
    """Compile for training with AdamW or Nesterov SGD; returns the optimizer."""
    if name == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9, nesterov=True,
                                         weight_decay=weight_decay)
    else:
        optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    loss, metrics = loss_and_metrics(keras, soft)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return optimizer


def bfloat16_native(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether the CPU computes bfloat16 itself (AMX or AVX512-BF16 on x86, BF16 on ARM); None if unknown.

    Elsewhere TensorFlow emulates it and a mixed_bfloat16 epoch takes several times as long as a
    float32 one, which matters when a long run is resumed on another machine.
    """
    from edge.vision.cpu_flags import cpu_flags

    flags = cpu_flags(cpuinfo)
    return None if flags is None else bool(flags & {"amx_bf16", "avx512_bf16", "bf16"})


def resolved_precision(precision: str) -> str:
    """The Keras policy ``train.precision`` stands for on this CPU.

    ``auto`` exists because a long run moves between machines across sessions: fixing bfloat16 in the
    recipe makes it crawl on AVX2-only hosts, fixing float32 wastes the ones with AMX. An unknown CPU
    gets float32, which is never emulated.
    """
    if precision != "auto":
        return precision
    return "mixed_bfloat16" if bfloat16_native() else "float32"


def precision_of(model: Any) -> str:
    """The training precision a model was built under, from its layers' compute dtypes.

    Only the layers that compute count: a model loaded while the global policy is mixed_bfloat16
    gives its Functional wrapper and InputLayer that policy whatever its saved layers say, and
    counting them made a float32 checkpoint look bfloat16, so a resume never moved it.
    """
    import keras

    wrappers = (keras.Model, keras.layers.InputLayer)
    bfloat16 = any(getattr(layer, "compute_dtype", "float32") == "bfloat16"
                   for layer in model._flatten_layers(include_self=False) if not isinstance(layer, wrappers))
    return "mixed_bfloat16" if bfloat16 else "float32"


def _with_precision(keras: Any, model: Any, config: Config, num_classes: int, learning_rate: Any) -> Any:
    """The loaded model rebuilt under ``config.train.precision``, with its weights and optimizer state.

    bfloat16 is fast only on CPUs with AMX or AVX512-BF16; elsewhere it is emulated and several
    times slower, so a run moved to another machine may need to continue in float32.
    """
    from train.models import build_model

    rebuilt = build_model(config.model, num_classes)
    rebuilt.set_weights(model.get_weights())
    optimizer = _compile(keras, rebuilt, learning_rate, config.train.weight_decay, config.train.optimizer,
                         soft_targets(config))
    optimizer.build(rebuilt.trainable_variables)
    old = model.optimizer.variables
    if len(old) != len(optimizer.variables):
        raise TrainError(f"cannot move {model.name}'s optimizer state to {config.train.precision}: "
                         f"{len(old)} variables, expected {len(optimizer.variables)}")
    for new, saved in zip(optimizer.variables, old):
        new.assign(keras.ops.cast(saved, new.dtype))
    print(f"continuing in {config.train.precision} (the checkpoint was {precision_of(model)})", flush=True)
    return rebuilt


def _load_initial_weights(model: Any, path: Path) -> None:
    """Copy a saved model's weights into the freshly built ``model``; both must be the same architecture."""
    from train.keras_io import load_keras_model

    source = load_keras_model(path)
    shapes = [tuple(w.shape) for w in model.weights]
    if [tuple(w.shape) for w in source.weights] != shapes:
        raise TrainError(f"train.init: {path} is not a {model.name} with this config's model settings "
                         f"(its weights have other shapes)")
    model.set_weights(source.get_weights())
    print(f"starting from the weights of {path}", flush=True)


def resume_changes(run_dir: Path, config: Config) -> list[str]:
    """``section.key=value`` for each setting that differs from the run's saved config.

    A warm restart with lighter augmentation is a different recipe from the first part; recording
    it per schedule part lets the model card print commands that retrace the whole run.
    """
    from train.config import load_config

    changes = []
    for name, value, _ in _differences(config, load_config(run_dir / "config.toml")):
        # the data may move (another disk, another session); its fingerprint is checked instead
        if name in ("train.epochs", "data.dir", "data.votes"):  # data.votes: its sha256 is checked
            continue
        if not name.startswith(RESUMABLE_KEYS):
            raise TrainError(f"{name} cannot change on resume (the checkpoint or the validation split "
                             f"depends on it); start a new run with --out")
        # as --set spells it, so the model card's commands replay it
        changes.append(_as_set(name, value))
    return changes


def _differences(config: Config, other: Config) -> Iterator[tuple[str, Any, Any]]:
    """``(section.key, value in config, value in other)`` for each setting the two disagree on."""
    theirs = other.to_dict()
    for section, values in config.to_dict().items():
        for key, value in values.items():
            if theirs[section][key] != value:
                yield f"{section}.{key}", value, theirs[section][key]


def _as_set(name: str, value: Any) -> str:
    """A setting as ``--set`` spells it (TOML's lower-case booleans)."""
    return f"{name}={str(value).lower() if isinstance(value, bool) else value}"


def _check_same_data(run_dir: Path, config: Config, fingerprints: dict[str, str]) -> None:
    """Refuse to resume on other images: the run's history and best epoch would stop meaning anything."""
    try:
        saved = json.loads((run_dir / "dataset.json").read_text())
    except (OSError, ValueError):
        return  # a run from before fingerprints were kept; nothing to compare
    recorded_votes = (saved.get("votes") or {}).get("sha256") if isinstance(saved.get("votes"), dict) else None
    if fingerprints.get("votes") != recorded_votes:
        raise TrainError(f"the votes file {config.data.votes or '(none)'} differs from the one {run_dir} was trained "
                         f"on (sha256 {str(fingerprints.get('votes'))[:12]} != {str(recorded_votes)[:12]}); resume "
                         f"with the same votes or start a new run with --out")
    for split, fingerprint in fingerprints.items():
        if split == "votes":
            continue
        recorded = saved.get(f"{split}_fingerprint")
        if recorded and recorded != fingerprint:
            raise TrainError(f"the {split} images in {config.data.dir} differ from the ones {run_dir} was trained on "
                             f"(fingerprint {fingerprint[:12]} != {recorded[:12]}); resume on the same data "
                             f"or start a new run with --out")


def train(config: Config, run_dir: Path, resume: bool = False, verbose: int | None = None,
          stop_after: int | None = None, started: dict[str, Any] | None = None) -> RunResult:
    """Train per ``config`` into ``run_dir``; with ``resume``, continue from its ``last.keras``.

    ``stop_after`` ends this invocation after that epoch without touching the schedule, so a long run
    can be split across sessions and each part resumed. ``started`` (``start_record``) is how a new
    run was invoked; its first schedule part keeps it for the model card's commands.
    """
    with _global_policy_kept():
        return _train(config, Path(run_dir), resume, verbose, stop_after, started or {})


def with_data_dir(config: Config) -> Config:
    """``data.dir`` as given, else FER2013 where a user keeps it (FER2013_DIR, data/fer2013/), where
    fer-convert and fer-train recalibrate look again for a run that recorded no data.dir."""
    from train.data_location import find_fer2013

    found = None if config.data.dir.strip() else find_fer2013()
    if found is None:
        return config  # as given; none anywhere is load_dataset's error, saying where FER2013 comes from
    return dataclasses.replace(config, data=dataclasses.replace(config.data, dir=str(found)))


@contextlib.contextmanager
def _global_policy_kept() -> Iterator[None]:
    """Give the global Keras precision policy back as it was: a run in ``train.precision=mixed_bfloat16``
    must not leave later models in the same process (a ship, a convert, a test) built in bfloat16."""
    before = sys.modules["keras"].mixed_precision.global_policy() if "keras" in sys.modules else None
    try:
        yield
    finally:
        if "keras" in sys.modules:
            sys.modules["keras"].mixed_precision.set_global_policy(before or "float32")


def _train(config: Config, run_dir: Path, resume: bool, verbose: int | None, stop_after: int | None,
           started: dict[str, Any]) -> RunResult:
    if run_dir.exists() and not run_dir.is_dir():
        raise TrainError(f"--out {run_dir} is a file, not a run directory")
    if resume:
        if not (run_dir / "last.keras").exists() or not (run_dir / STATE).exists():
            raise TrainError(f"cannot resume: {run_dir} has no last.keras and state.json")
        try:
            state = json.loads((run_dir / STATE).read_text())
        except (OSError, ValueError) as exc:
            raise TrainError(f"cannot resume: {run_dir / STATE} is not readable JSON ({exc})") from None
    else:
        if (run_dir / "last.keras").exists():
            raise TrainError(f"{run_dir} already holds a run; use --resume or another --out")
        state = {"epochs_done": 0, "best_epoch": 0, "best_val_accuracy": -1.0}
    if stop_after is not None and stop_after < 1:
        raise TrainError(f"--stop-after must be a positive epoch number, not {stop_after}")
    # Which learning-rate schedule (its total length) ran from which epoch: the model card's recipe.
    schedule: list[dict[str, Any]] = [dict(segment) for segment in state.get("schedule", [])] or [
        {"from_epoch": 1, "epochs": int(state.get("total_epochs", config.train.epochs)), **started}]
    changes = resume_changes(run_dir, config) if resume else []
    # the run records train.precision as given (auto stays auto, to be decided again on the next
    # host), and data.dir too (empty: FER2013 wherever the next host keeps it, no path of this one);
    # everything below trains in what they resolve to here
    recorded_config = config.to_toml()
    looked_up = not config.data.dir.strip()
    config = with_data_dir(config)  # after the run folder's checks: a bad --out is named before missing data
    precision = resolved_precision(config.train.precision)
    if precision != config.train.precision:
        print(f"train.precision=auto: {precision} on this CPU", flush=True)
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, precision=precision))
    train_data, val_data = prepare_data(config)
    # data.val_fraction = 0 refits a recipe already chosen on validation to every training image:
    # no validation, no early stopping, and the schedule's end point is the model
    refit = config.data.val_fraction == 0
    if len(val_data) == 0 and not refit:
        raise TrainError("validation split is empty: raise data.val_fraction or provide more images")
    fingerprints = {"train": train_data.fingerprint(), "val": val_data.fingerprint()}
    if train_data.votes is not None:
        fingerprints["votes"] = train_data.info["votes"]["sha256"]
        print(f"FER+ votes {config.data.votes} (sha256 {fingerprints['votes'][:12]}), mixed {config.train.votes_mix:g} "
              f"into the labels; {train_data.info['votes']['not_a_face_left_out']} training images FER+ calls "
              f"not a face left out", flush=True)
    if resume:
        _check_same_data(run_dir, config, fingerprints)
    if config.train.teacher and not refit:
        from train.distill import check_teachers_held_out, pool_counts

        pool = pool_counts({"train_class_counts": train_data.class_counts(),
                            "val_class_counts": val_data.class_counts()})
        check_teachers_held_out(config.train.teacher, fingerprints["val"], pool)

    train_targets = val_targets = teach = labels = None
    if train_data.votes is not None and config.train.votes_mix > 0:
        from train.ferplus import label_targets

        labels = label_targets(train_data.targets, train_data.votes, train_data.labels, config.train.votes_mix)
        train_targets = labels
    if soft_targets(config):  # validation stays on the original labels, as one-hot rows
        val_targets = np.eye(len(val_data.labels), dtype=np.float32)[val_data.targets]
    if config.train.teacher:
        if config.train.teacher_mode == "consistent":
            from train.distill import consistent_targets, teacher_models

            # loaded before the run directory is touched: a missing teacher leaves nothing behind
            teachers = teacher_models(config.train.teacher, len(train_data.labels), config.train.precision)
            teach = consistent_targets(teachers, config.train.teacher_views, config.train.teacher_weight,
                                       len(train_data.labels))
        else:
            from train.distill import mixed_targets, teacher_targets

            teacher = teacher_targets(config.train.teacher, train_data.images, fingerprints["train"],
                                      config.train.teacher_views, run_dir, len(train_data.labels))
            train_targets = mixed_targets(train_data.targets, teacher, config.train.teacher_weight, labels)

    if config.train.precision == "mixed_bfloat16" and bfloat16_native() is False:
        print("warning: train.precision=mixed_bfloat16 on a CPU without AMX or AVX512-BF16: bfloat16 is emulated "
              "and several times slower here; --set train.precision=float32 continues the run in float32",
              file=sys.stderr, flush=True)
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.train.seed + int(state["epochs_done"]))
    # bfloat16 runs ~1.8x faster on CPUs with AMX/AVX512-BF16; exported models are float32 anyway
    keras.mixed_precision.set_global_policy(config.train.precision)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainError(f"cannot create run directory {run_dir}: {exc.strerror}") from None
    if not resume:
        atomic_write_text(run_dir / "config.toml", recorded_config)
    else:
        drop_unsaved_epochs(run_dir / HISTORY, int(state["epochs_done"]))
    # a resumed part's config is written with its first epoch: stopped sooner, the next resume
    # still sees (and records) what this part changed
    dataset_info = {
        # FER2013 found by looking (FER2013_DIR, data/fer2013/) is recorded by name: no path of this machine
        "source": data_name(config.data.dir, config.data.split) if looked_up else train_data.source,
        "labels": list(train_data.labels),
        "train_images": len(train_data),
        "val_images": len(val_data),
        "train_class_counts": train_data.class_counts(),
        "val_class_counts": val_data.class_counts(),
        "train_fingerprint": fingerprints["train"],
        "val_fingerprint": fingerprints["val"],
        **_loading_record(config, train_data),
    }
    atomic_write_text(run_dir / "dataset.json", json.dumps(dataset_info, indent=2) + "\n")

    num_classes = len(train_data.labels)
    steps_per_epoch = int(np.ceil(len(train_data) / config.train.batch_size))
    if resume:
        try:
            model = keras.saving.load_model(run_dir / "last.keras")
        except Exception as exc:  # keras raises many types for a bad file ("File not found" for a torn one)
            raise TrainError(f"cannot resume: {run_dir / 'last.keras'} is not a readable Keras model "
                             f"({str(exc).splitlines()[0][:200]})") from None
        if precision_of(model) != config.train.precision:
            model = _with_precision(keras, model, config, num_classes, _learning_rate(keras, config, steps_per_epoch))
        # The schedule follows this config's epochs, not the one saved in last.keras, so a run can be
        # shortened or extended on resume (--set train.epochs=N); the optimizer's step count carries on.
        model.optimizer.learning_rate = _learning_rate(keras, config, steps_per_epoch)
        model.optimizer.weight_decay = config.train.weight_decay
        if schedule[-1]["epochs"] != config.train.epochs or changes:
            print(f"resuming with a {config.train.epochs}-epoch schedule (was {schedule[-1]['epochs']})"
                  + (f" and {', '.join(changes)}" if changes else "")
                  + "; the learning rate follows the new length", flush=True)
            segment: dict[str, Any] = {"from_epoch": int(state["epochs_done"]) + 1, "epochs": config.train.epochs}
            if changes:
                segment["set"] = changes
            schedule.append(segment)
    else:
        from train.models import build_model

        model = build_model(config.model, num_classes)
        if config.train.init:
            _load_initial_weights(model, Path(config.train.init))
        _compile(keras, model, _learning_rate(keras, config, steps_per_epoch), config.train.weight_decay,
                 config.train.optimizer, soft_targets(config))
    from train.augment import make_augmenter, make_mixer

    augment = make_augmenter(config.augment, config.train.seed)
    mix = make_mixer(config.augment.mixup, num_classes) if config.augment.mixup > 0 else None
    weights = class_weights(train_data.targets, num_classes, config.train.class_weight)
    train_ds = make_dataset(tf, train_data, config.train.batch_size, True, config.train.seed, augment, weights,
                            train_targets, teach, mix)
    val_ds = None if refit else make_dataset(tf, val_data, 256, False, config.train.seed, soft_targets=val_targets)
    average, swa_from, calibration = None, 0, None
    if config.train.recalibrate_bn:
        from train.recalibrate import calibration_images

        calibration = calibration_images(train_data.images, config.train.seed)
    if config.train.swa:
        from train.swa import WeightAverage

        # a new average starts with the schedule part that turned it on; a resumed part carries it on
        previous = state.get("swa") or {}
        average = WeightAverage.start(model, run_dir, int(previous.get("epochs_averaged", 0)),
                                      train_data.images, config.train.seed, soft_targets(config))
        swa_from = int(previous["from_epoch"]) if average.count else int(state["epochs_done"]) + 1
    callback = _make_callback(keras, run_dir, config.train.patience,
                              (int(state["best_epoch"]), _best_so_far(state),
                               int(state.get("best_average_from", 0))), config.train.epochs,
                              schedule, average, val_ds, swa_from, recorded_config, calibration,
                              val_data if val_ds is not None and val_data.votes is not None else None)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    initial_epoch = int(state["epochs_done"])
    last_epoch = config.train.epochs if stop_after is None else min(stop_after, config.train.epochs)
    if initial_epoch < last_epoch:
        checking = ("no validation (data.val_fraction = 0: the last epoch's model"
                    + (", or the weight average," if average is not None else "") + " is kept)"
                    if refit else f"validating on {len(val_data)}")
        print(f"training {model.name} ({model.count_params():,} parameters) on {len(train_data)} images, "
              f"{checking}; epochs {initial_epoch + 1}..{last_epoch} of {config.train.epochs}", flush=True)
        # with recalibration the callback validates, after re-measuring the statistics
        model.fit(train_ds, validation_data=None if calibration is not None else val_ds,
                  epochs=last_epoch, initial_epoch=initial_epoch,
                  callbacks=[callback], verbose=verbose, shuffle=False)  # the dataset shuffles itself, seeded
    history = read_history(run_dir / HISTORY)
    epochs_done = int(history[-1]["epoch"]) if history else initial_epoch
    best_path = run_dir / "best.keras"
    if best_path.exists():
        shutil.copyfile(best_path, run_dir / ".model.tmp.keras")
        os.replace(run_dir / ".model.tmp.keras", run_dir / "model.keras")
    best_value = None if refit else callback.best_value
    return RunResult(run_dir, epochs_done, callback.best_epoch, best_value, callback.stopped_early,
                     callback.best_average_from)


def train_from_files(config_path: str | None, overrides: list[str], run_dir: Path, resume: bool,
                     stop_after: int | None = None) -> RunResult:
    if resume and (run_dir / "config.toml").exists():
        config = resumed_config(config_path, overrides, run_dir)
        if not (run_dir / "last.keras").exists() and not (run_dir / STATE).exists():
            # stopped (Ctrl-C) before its first epoch ended: nothing to continue, so it starts as it was set up
            print(f"{run_dir} was stopped before its first checkpoint: starting it again", flush=True)
            return train(config, run_dir, stop_after=stop_after, started=start_record(config_path, config))
        return train(config, run_dir, resume=resume, stop_after=stop_after)
    config = load_config(config_path, overrides)
    started = None if resume else start_record(config_path, config)
    return train(config, run_dir, resume=resume, stop_after=stop_after, started=started)


def start_record(config_path: str | None, config: Config) -> dict[str, Any]:
    """The config file a new run starts from and what its command line changed in it (as ``--set``).

    Without them a model card could only name a recipe file, and a run started with, say,
    ``--set train.precision=mixed_bfloat16`` or on other data would not be retraced by its own card.
    The schedule length is left out: every schedule part records its own.
    """
    changes = [_as_set(name, value) for name, value, _ in _differences(config, load_config(config_path))
               if name != "train.epochs"]
    return {"config": None if config_path is None else str(config_path), **({"set": changes} if changes else {})}


def resumed_config(config_path: str | None, overrides: list[str], run_dir: Path) -> Config:
    """The run's own settings (its latest part's), changed only by what the command line states.

    "--resume" continues a run as it was left. Starting again from the recipe file would quietly undo
    an earlier part's changes (a shortened schedule, lighter augmentation, weight averaging), so the
    file only says where the data is now; where it disagrees otherwise, the run wins and says so.
    """
    written = load_config(config_path, overrides) if config_path is not None else None
    leading = [f"data.dir={written.data.dir}"] if written is not None and written.data.dir else []
    config = load_config(run_dir / "config.toml", leading + list(overrides))
    if written is not None:
        kept = [f"{_as_set(name, ours)} (the file says {theirs})"
                for name, ours, theirs in _differences(config, written)]
        if kept:
            print(f"resuming as the run was left: {', '.join(kept)}; change a setting with --set or --epochs",
                  flush=True)
    return config
