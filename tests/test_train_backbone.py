"""Transfer-learning backbones: user-supplied weights load (or fail in one line), nothing is downloaded,
and the model keeps the 48x48x1 raw-pixel input the manifest and the device expect."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from train.config import ModelConfig, load_config
from train.errors import ConfigError, TrainError

pytestmark = pytest.mark.slow
SMALL = ["model.arch=mobilenetv2", "model.alpha=0.35", "model.input_size=32"]


def small_config(**changes: object) -> ModelConfig:
    return dataclasses.replace(load_config(None, SMALL).model, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def legacy_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """A from-scratch backbone's weights in the legacy .h5 format keras.applications' ImageNet files use."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from train.backbones import build_base

    keras.utils.set_random_seed(7)
    base = build_base(small_config())
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2_weights_0.35_no_top.h5"
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, base)
    return path, base.get_weights()


def test_supplied_weights_are_loaded_behind_the_compact_cnn_input(
        legacy_weights: tuple[Path, list[np.ndarray]]) -> None:
    from train.models import build_model

    path, expected = legacy_weights
    model = build_model(small_config(weights=str(path)), 3)
    assert tuple(model.input_shape) == (None, 48, 48, 1) and tuple(model.output_shape) == (None, 3)
    base = next(layer for layer in model.layers if layer.name.startswith("mobilenetv2"))
    loaded = base.get_weights()
    assert len(loaded) == len(expected) and all(np.array_equal(a, b) for a, b in zip(loaded, expected))


def test_weights_that_do_not_fit_are_one_line_errors(legacy_weights: tuple[Path, list[np.ndarray]],
                                                     tmp_path: Path) -> None:
    from train.backbones import build_base

    path, _ = legacy_weights
    with pytest.raises(TrainError, match=r"does not fit mobilenetv2 .*alpha 0.5.*Shape mismatch") as info:
        build_base(small_config(alpha=0.5, weights=str(path)))
    assert "\n" not in str(info.value)
    with pytest.raises(TrainError, match="does not exist"):
        build_base(small_config(weights=str(tmp_path / "absent.h5")))


def test_cli_reports_a_bad_weights_file_in_one_line(sample_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from train.__main__ import main

    text = tmp_path / "imagenet.h5"
    text.write_text("<html>proxy error</html>")  # what a failed download often leaves behind
    argv = ["--data", str(sample_dir), "--arch", "mobilenetv2", "--weights", str(text), "--set", "model.alpha=0.35",
            "--set", "model.input_size=32", "--epochs", "1", "--set", "train.warmup_epochs=0", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fer-train: error: --weights") and "does not fit" in err and "\n" not in err


@pytest.mark.parametrize("override, fragment", [
    ("model.weights=x.h5", "model.weights needs a backbone"),
    ("model.alpha=0.6", "model.alpha must be one of"),
])
def test_backbone_config_is_validated(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_config(None, [override] if "weights" in override else [*SMALL, override])


def test_a_mobilenetv2_int8_takes_raw_pixels_and_runs_on_the_edge_classifier(tmp_path: Path) -> None:
    """A backbone model converted to int8 runs through the device's own code path, and the in-graph resize
    to the backbone's input does not cost the artifact its raw-pixel input. Its predictions are not compared
    with Keras: a backbone trained for seconds answers every face alike, so agreement would prove nothing
    (tests/test_convert.py compares every format on a model that does tell faces apart). The from-scratch
    MobileNetV2 once shipped in models/mnv2, which was compared, left the tree: docs/experiments.md."""
    import cv2

    from convert.__main__ import main as convert
    from edge.vision.classifier import Classifier
    from tests.conftest import SAMPLE
    from train.training import train

    config = load_config(None, [*SMALL, f"data.dir={SAMPLE}", "train.epochs=1", "train.warmup_epochs=0",
                                "data.val_fraction=0.25"])
    train(config, tmp_path / "run", verbose=0)
    out = tmp_path / "converted"
    assert convert([str(tmp_path / "run" / "model.keras"), "--out", str(out), "--formats", "int8",
                    "--calibration-data", str(SAMPLE), "--verify-data", str(SAMPLE), "--max-drop", "100"]) == 0
    faces = np.stack([cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in
                      sorted((SAMPLE / "test").glob("*/*.jpg"))[:8]])
    with Classifier(out / "manifest.json", "int8") as classifier:
        # uint8 in; the scale is ~1 (the converter takes the range after the in-graph resize)
        assert classifier.input_spec.dtype == "uint8" and 0.9 < classifier.input_spec.scale <= 1.0
        probs = classifier.predict(faces)
    assert probs.shape == (len(faces), len(classifier.labels)) == (8, 7)
    assert np.allclose(probs.sum(1), 1.0, atol=0.05)
