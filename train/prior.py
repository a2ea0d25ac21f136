"""Undoing the class weights at prediction time: the training loss's prior back to the data's.

Training with class weights w (``train.class_weight``) teaches the model probabilities proportional
to w_y * p(y | x): the rare classes' gradients are louder, which helps the features, but the
outputs then over-predict those classes. Dividing by w_y (Menon et al., 2021, "Long-tail learning
via logit adjustment") restores the estimate of p(y | x) that maximises accuracy. For a final
softmax layer that division is exactly a shift of its bias by -log(w_y), so the corrected model
has the same size and cost. Whether it is applied is decided on validation when a run is shipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.errors import TrainError


MODES = ("auto", "keep", "undo")  # decide on validation, or as the shipping command says


@dataclass(frozen=True)
class PriorChoice:
    """What shipping measured on validation (nothing, for a refit), and whether the correction was applied."""

    applied: bool
    reason: str
    val_accuracy: float | None = None
    val_macro_f1: float | None = None
    corrected_val_accuracy: float | None = None
    corrected_val_macro_f1: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def run_class_weights(model_path: Path) -> np.ndarray | None:
    """The per-class weights the model's run trained with, from the config and dataset.json beside it.

    None when the run used no weights (nothing to undo) or its files are missing.
    """
    from train.config import load_config
    from train.run_info import dataset_info_path, read_dataset_record, run_file
    from train.objectives import class_weights

    config_path, info_path = run_file(model_path, "config.toml"), dataset_info_path(model_path)
    if config_path is None or info_path is None:
        return None
    mode = load_config(config_path).train.class_weight
    info = read_dataset_record(info_path)
    labels, counts = info.get("labels") or [], info.get("train_class_counts") or {}
    if mode == "none" or not labels or not counts:
        return None
    targets = np.repeat(np.arange(len(labels)), [int(counts.get(label, 0)) for label in labels])
    weights = class_weights(targets, len(labels), mode)
    assert weights is not None
    return np.asarray([weights[i] for i in range(len(labels))], dtype=np.float64)


def corrected(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``probs`` divided by the class weights and renormalised."""
    adjusted = probs / weights[None, :]
    return adjusted / adjusted.sum(axis=1, keepdims=True)


def softmax_layer(model: Any) -> Any | None:
    """The model's final Dense softmax layer with a bias, or None when it ends otherwise."""
    import keras

    last = model.layers[-1]
    if (isinstance(last, keras.layers.Dense) and last.use_bias
            and getattr(last.activation, "__name__", "") == "softmax"):
        return last
    return None


def apply_to_model(model: Any, weights: np.ndarray) -> None:
    """Shift the final softmax's bias by -log(weights): the model then predicts ``corrected`` probabilities."""
    layer = softmax_layer(model)
    if layer is None:
        raise TrainError(f"{model.name} does not end in a softmax Dense layer; its class weights cannot be undone")
    import keras

    bias = keras.ops.convert_to_numpy(layer.bias).astype(np.float64)
    layer.bias.assign((bias - np.log(weights)).astype("float32"))


def _unavailable(weights: np.ndarray | None, model_has_softmax: bool, mode: str) -> str | None:
    """Why the correction is not applied whatever validation says, or None when it is a choice."""
    if mode == "keep":
        return "turned off (--keep-class-weights)"
    if weights is None:
        return "the run used no class weights"
    if not model_has_softmax:
        return "the model does not end in a softmax Dense layer"
    return None


def choose(targets: np.ndarray, probs: np.ndarray, weights: np.ndarray | None, labels: Any,
           model_has_softmax: bool, mode: str = "auto") -> PriorChoice:
    """Apply the correction only when it raises validation accuracy without lowering macro-F1.

    Accuracy alone would accept trading the rare classes' recall for the common ones'; requiring
    macro-F1 to hold keeps the class weights' purpose. ``mode`` "undo" applies it regardless (the
    figures are still measured and shown), "keep" never does.
    """
    from train.evaluate import score

    plain = score(targets, probs.argmax(axis=1), labels)
    base = dict(val_accuracy=plain["accuracy"], val_macro_f1=plain["macro_f1"])
    reason = _unavailable(weights, model_has_softmax, mode)
    if reason is not None or weights is None:
        return PriorChoice(False, reason or "", **base)
    fixed = score(targets, corrected(probs, weights).argmax(axis=1), labels)
    better = fixed["accuracy"] > plain["accuracy"] and fixed["macro_f1"] >= plain["macro_f1"]
    if mode == "undo":
        return PriorChoice(True, "asked for (--undo-class-weights)", **base,
                           corrected_val_accuracy=fixed["accuracy"], corrected_val_macro_f1=fixed["macro_f1"])
    reason = ("raises validation accuracy and keeps macro-F1" if better
              else "does not raise validation accuracy without lowering macro-F1")
    return PriorChoice(better, reason, **base, corrected_val_accuracy=fixed["accuracy"],
                       corrected_val_macro_f1=fixed["macro_f1"])


def as_asked(weights: np.ndarray | None, model_has_softmax: bool, mode: str) -> PriorChoice:
    """The choice for a run with no validation split (a refit): the shipping command's, unmeasured.

    A refit's recipe was chosen on an earlier run's validation, and so was this; there is nothing left
    to measure it on without touching the test split.
    """
    if mode == "auto":
        raise TrainError("a refit (data.val_fraction = 0) has no validation split to decide on: ship it with "
                         "--undo-class-weights or --keep-class-weights, as decided for its recipe")
    reason = _unavailable(weights, model_has_softmax, mode)
    if reason is not None:
        return PriorChoice(False, reason)
    return PriorChoice(True, "asked for (--undo-class-weights)")
