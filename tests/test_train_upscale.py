"""model.upscale: the VGG resizes the face inside the model, so everything downstream still sees 48x48."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from train.config import ConfigError, load_config


@pytest.mark.parametrize("override, fragment", [
    (["model.upscale=40"], r"model.upscale must be 0 or in \(48, 192\]"),
    (["model.upscale=48"], r"model.upscale must be 0 or in \(48, 192\]"),
    (["model.arch=resnet", "model.upscale=64"], "model.upscale needs model.arch = vgg"),
])
def test_bad_upscale_is_a_config_error(override: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_config(None, override)


def test_upscaling_keeps_the_parameters_and_enlarges_the_maps() -> None:
    from train.models import build_model

    plain = build_model(load_config(None, []).model, 7)
    upscaled = build_model(load_config(None, ["model.upscale=64"]).model, 7)
    assert upscaled.count_params() == plain.count_params() == 1_176_359
    assert tuple(plain.get_layer("block4_pool").output.shape[1:3]) == (3, 3)
    assert tuple(upscaled.get_layer("block4_pool").output.shape[1:3]) == (4, 4)
    assert tuple(upscaled.input.shape[1:]) == (48, 48, 1)


@pytest.mark.slow
def test_an_upscaled_run_trains_resumes_and_converts_to_int8(sample_dir: Path, tmp_path: Path) -> None:
    """The resize must survive full-int8 conversion and run through edge/'s classifier like any model."""
    from convert.__main__ import main as convert_main
    from edge.vision.classifier import Classifier
    from train.__main__ import main as train_main
    from train.data import load_dataset
    from train.evaluate import load_keras_model

    run = tmp_path / "run"
    base = ["--set", f"data.dir={sample_dir}", "--set", "model.width=4", "--set", "model.upscale=64",
            "--set", "data.val_fraction=0.25", "--set", "train.warmup_epochs=0", "--set", "train.batch_size=32"]
    assert train_main([*base, "--out", str(run), "--epochs", "2", "--stop-after", "1"]) == 0
    assert train_main(["--out", str(run), "--resume"]) == 0
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 2
    assert load_config(run / "config.toml").model.upscale == 64

    out = tmp_path / "converted"
    assert convert_main([str(run / "model.keras"), "--out", str(out), "--formats", "int8",
                         "--data", str(sample_dir), "--name", "upscaled"]) == 0
    faces = load_dataset(sample_dir, "test").images[::8]
    reference = load_keras_model(run / "model.keras").predict(faces[..., None].astype(np.float32), verbose=0)
    with Classifier(out, "int8") as classifier:
        probs = classifier.predict(faces)
    assert probs.shape == reference.shape
    assert np.abs(probs - reference).max() <= 5e-2
