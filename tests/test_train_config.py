"""Config files and overrides are validated: unknown keys and wrong types fail before training."""

from __future__ import annotations

from pathlib import Path

import pytest

from train.__main__ import main
from train.config import load_config
from train.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_config_loads() -> None:
    config = load_config(ROOT / "train" / "configs" / "shipped.toml")
    assert config.model.arch == "vgg"
    assert config.train.epochs >= 100


@pytest.mark.parametrize("recipe", sorted((ROOT / "train" / "configs").glob("*.toml")), ids=lambda path: path.name)
def test_every_recipe_loads_and_the_models_it_starts_from_are_committed(recipe: Path) -> None:
    """A recipe whose teacher or initial weights are missing fails only after its data has loaded."""
    from train.distill import teacher_paths

    config = load_config(recipe)
    needed = (teacher_paths(config.train.teacher) if config.train.teacher else []) + (
        [Path(config.train.init)] if config.train.init else [])
    for path in needed:
        assert (ROOT / path).is_file(), f"{recipe.name} needs {path}"


def test_overrides_are_typed() -> None:
    config = load_config(None, ["train.epochs=7", "augment.flip=false", "train.learning_rate=0.01"])
    assert (config.train.epochs, config.augment.flip, config.train.learning_rate) == (7, False, 0.01)


@pytest.mark.parametrize("override, fragment", [
    ("train.epoch=3", "unknown config key train.epoch"),
    ("nosuch.key=1", "unknown config section"),
    ("train.epochs=many", "train.epochs: expected int"),
    ("model.arch=transformer", "model.arch must be one of"),
    ("data.val_seed=-2", "data.val_seed must be -1"),
    ("epochs=3", "section.key=value"),
    ("train.epochs=1", r"train.warmup_epochs \(3\) .* less than train.epochs \(1\).*--set train.warmup_epochs=0"),
])
def test_bad_override(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_config(None, [override])


def test_config_round_trips_through_toml(tmp_path: Path) -> None:
    config = load_config(None, ["train.epochs=9", "model.width=16"])
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert load_config(path) == config


def test_cli_reports_bad_config_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochs = 'x'\n")
    assert main(["--config", str(bad), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fer-train: error:") and "\n" not in err
    assert main(["--config", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "run")]) == 2
