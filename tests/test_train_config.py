"""Config files and overrides are validated: unknown keys and wrong types fail before training."""

from __future__ import annotations

import re
import subprocess
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


def _left_the_tree() -> tuple[str, set[str]]:
    """docs/experiments.md's restore commit and the checkpoint folders it lists as having left the tree."""
    page = (ROOT / "docs" / "experiments.md").read_text()
    commit = re.search(r"git checkout (\w+) -- models/checkpoints/<name>", page)
    bullet = re.search(r"^- \*\*Left the tree\*\*:(.*?)(?=^- \*\*)", page, re.M | re.S)
    assert commit and bullet, "docs/experiments.md lost its restore command or its list of folders that left"
    return commit[1], set(re.findall(r"`(\w+)`", bullet[1]))


def _in_git(commit: str, path: Path) -> bool | None:
    """Whether ``commit`` holds ``path``; None where that commit is not in this clone (a shallow one)."""
    def git(*args: str) -> int:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True).returncode

    if git("cat-file", "-e", f"{commit}^{{commit}}") != 0:
        return None
    return git("cat-file", "-e", f"{commit}:{path.as_posix()}") == 0


@pytest.mark.parametrize("recipe", sorted((ROOT / "train" / "configs").glob("*.toml")), ids=lambda path: path.name)
def test_every_recipe_loads_and_the_models_it_starts_from_are_committed_or_restorable(recipe: Path) -> None:
    """A recipe whose teacher or initial weights are missing fails only after its data has loaded, so
    each is in the tree, or its folder is listed as having left it with the commit that restores it."""
    from train.distill import teacher_paths

    config = load_config(recipe)
    needed = (teacher_paths(config.train.teacher) if config.train.teacher else []) + (
        [Path(config.train.init)] if config.train.init else [])
    commit, left = _left_the_tree()
    for path in needed:
        if (ROOT / path).is_file():
            continue
        assert path.parts[:2] == ("models", "checkpoints") and path.parts[2] in left, (
            f"{recipe.name} needs {path}: neither in the tree nor listed in docs/experiments.md as left")
        assert _in_git(commit, path) is not False, f"{recipe.name} needs {path}, which {commit} does not hold"


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
