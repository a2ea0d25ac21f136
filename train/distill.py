"""Distillation from a test-time-averaged teacher: multi-view accuracy at one view's cost.

Averaging a model's predictions over mirrored and shifted copies of a face is worth about a point
on FER2013 (the shipped model: 0.6845 validation for one view, 0.6912 for six), but costs six
forward passes per face on the device. Training a student on those averaged predictions (Hinton
et al., 2015; Furlanello et al., 2018, "Born-Again Neural Networks") moves that gain into a single
forward pass. Several teachers (``train.teacher = "a.keras,b.keras"``) are averaged too: an
ensemble is better than either member but too big to ship, and its student is not. The teachers'
predictions on the clean training images are computed once and cached in the run directory, so
resuming a run does not repeat them.

That teacher is *fixed*: it judged the clean face while the student sees it rotated, zoomed and
partly erased, so a face whose smile was erased still carries a confident "happy" target. With
``train.teacher_mode = "consistent"`` the teachers judge the very augmented batch the student
trains on (Beyer et al., 2022, "Knowledge distillation: A good teacher is patient and
consistent"), at the price of their forward passes in every training step.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from train.config import CONSISTENT_VIEWS
from train.errors import TrainError
from train.keras_io import load_keras_model, teacher_paths, with_policy
from train.views import TEACHER_VIEWS, VIEW_OFFSETS, averaged_predictions, shifted, views  # noqa: F401  (re-exported)

TEACHER_FILE = "teacher.npz"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def existing_teacher_paths(spec: str) -> list[Path]:
    """``teacher_paths``, each checked to exist before anything is computed or written."""
    paths = teacher_paths(spec)
    for path in paths:
        if not path.is_file():
            raise TrainError(f"teacher model {path} does not exist")
    return paths


def pool_counts(info: dict[str, Any]) -> dict[str, int]:
    """Images per class over a run's training and validation splits together: which pool it split."""
    pool: dict[str, int] = {}
    for part in ("train_class_counts", "val_class_counts"):
        for label, count in (info.get(part) or {}).items():
            pool[label] = pool.get(label, 0) + int(count)
    return pool


def check_teachers_held_out(spec: str, val_fingerprint: str, pool: dict[str, int]) -> None:
    """Refuse a teacher that trained on this run's validation faces.

    Its predictions there are memories, not judgements, so the student would inherit them and its
    validation accuracy (what chooses checkpoints and generations) would be flattered. That is the
    case for a refit (``data.val_fraction = 0``, such as a shipped refit) and for a run that split
    the same pool with another seed or fraction. A teacher from other data, or without a run record
    beside it, cannot be checked and is taken on trust.
    """
    from train.run_info import read_dataset_info

    for path in teacher_paths(spec):
        info = read_dataset_info(path)
        if not info or pool_counts(info) != pool or info.get("val_fingerprint") == val_fingerprint:
            continue
        why = ("it is a refit that held out nothing" if not info.get("val_images")
               else "it held out a different validation split of the same images")
        raise TrainError(f"teacher {path} trained on this run's validation faces ({why}): the student's "
                         f"validation would be flattered; use a teacher whose run held out the same split "
                         f"(same data.val_fraction and data.val_seed, or train.seed), or train this run as a refit")


def load_teacher(path: Path, num_classes: int) -> Any:
    """The teacher in ``path`` as a float32 model, refused when it predicts another number of classes."""
    teacher = load_keras_model(path)
    outputs = int(teacher.output_shape[-1])
    if outputs != num_classes:
        raise TrainError(f"teacher {path} predicts {outputs} classes, the data has {num_classes}")
    return teacher


def teacher_targets(teacher_spec: str | Path, images: np.ndarray, fingerprint: str, count: int,
                    run_dir: Path, num_classes: int) -> np.ndarray:
    """The teachers' averaged probabilities for ``images``, from the run's cache when it matches.

    The cache is keyed by the teacher files' hashes, the images' fingerprint and the view count, so
    a changed teacher or data set is recomputed rather than silently reused.
    """
    paths = existing_teacher_paths(str(teacher_spec))
    digests = [_file_digest(path) for path in paths]
    # one teacher keeps the key it always had, so caches written before ensembles still match
    key = {"teacher_sha256": digests[0] if len(digests) == 1 else digests, "images_fingerprint": fingerprint,
           "views": count}
    cache = Path(run_dir) / TEACHER_FILE
    if cache.is_file():
        try:
            with np.load(cache) as saved:
                if json.loads(str(saved["key"])) == key and saved["probabilities"].shape == (len(images), num_classes):
                    return np.asarray(saved["probabilities"], dtype=np.float32)
        except (OSError, ValueError, KeyError):
            pass  # unreadable or from another layout: recompute below
    total = np.zeros((len(images), num_classes), dtype=np.float64)
    for path in paths:
        teacher = load_teacher(path, num_classes)
        print(f"teacher {path.name}: averaging {count} views of {len(images)} training images", flush=True)
        total += averaged_predictions(teacher, images, count)
    probabilities = (total / len(paths)).astype(np.float32)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.tmp.npz")
    np.savez(tmp, probabilities=probabilities, key=np.asarray(json.dumps(key, sort_keys=True)))
    tmp.replace(cache)
    return probabilities


def mixed_targets(targets: np.ndarray, teacher: np.ndarray, weight: float,
                  labels: np.ndarray | None = None) -> np.ndarray:
    """``weight`` of the teacher's probabilities plus the rest on the true label: one-hot, or the rows
    ``labels`` gives in its place (the original label mixed with FER+ votes, ``ferplus.label_targets``)."""
    onehot = np.eye(teacher.shape[1], dtype=np.float32)[targets] if labels is None else labels
    return (weight * teacher + (1.0 - weight) * onehot).astype(np.float32)


def teacher_models(teacher_spec: str, num_classes: int, precision: str = "float32") -> list[Any]:
    """The teachers named by ``train.teacher``, loaded for consistent teaching in ``precision``.

    They run inside every training step, so on a bfloat16 run they run in bfloat16 too: their
    forward passes then cost about two thirds of what they would in float32, and their
    probabilities move by about 1e-3, far below what a target mixed with a label can tell apart.
    """
    models = []
    for path in existing_teacher_paths(teacher_spec):
        model = load_teacher(path, num_classes)
        if precision != "float32":
            model = with_policy(model, precision)
        model.trainable = False
        models.append(model)
    return models


def consistent_targets(models: list[Any], views: int, weight: float, num_classes: int) -> Any:
    """A graph function from (augmented images, labels) to the mixed targets for that batch.

    The teachers' probabilities are averaged over the models and, with ``views=2``, over the batch
    and its mirror image; then ``weight`` of that plus the rest on the true label, as ``mixed_targets``.
    Labels are integers, or rows of class shares where mixup blended two faces.
    """
    import tensorflow as tf

    if views not in CONSISTENT_VIEWS:
        raise TrainError(f"consistent teaching takes teacher views {' or '.join(map(str, CONSISTENT_VIEWS))}, "
                         f"not {views}")

    def targets(images: Any, labels: Any) -> Any:
        batches = [images, tf.reverse(images, axis=[2])] if views == 2 else [images]
        total = tf.add_n([tf.cast(model(batch, training=False), tf.float32) for model in models for batch in batches])
        probabilities = total / float(len(models) * len(batches))
        if labels.shape.rank == 2:
            onehot = tf.cast(labels, tf.float32)
        else:
            onehot = tf.one_hot(tf.cast(labels, tf.int32), num_classes, dtype=tf.float32)
        return weight * probabilities + (1.0 - weight) * onehot

    return targets
