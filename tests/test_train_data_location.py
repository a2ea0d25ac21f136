"""Where FER2013 is when no --data is given: FER2013_DIR, then data/fer2013/ in the working directory; no
default names a folder of this team's workspace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from train.data_location import WHERE_FROM, data_name, find_fer2013, require_fer2013
from train.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def test_precedence_is_flag_then_environment_then_the_working_folder(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_fer2013(None, {}) is None
    with pytest.raises(DataError, match="FER2013 not found: download it from Kaggle"):
        require_fer2013(None, {})
    (tmp_path / "data" / "fer2013").mkdir(parents=True)
    assert find_fer2013(None, {}) == Path("data/fer2013")
    assert find_fer2013(None, {"FER2013_DIR": "/elsewhere"}) == Path("/elsewhere")
    assert find_fer2013("given", {"FER2013_DIR": "/elsewhere"}) == Path("given")
    assert "\n" not in WHERE_FROM


def test_data_sets_are_named_without_the_machine_path() -> None:
    assert data_name("/any/where/fer2013", "test") == "fer2013/test"
    assert data_name("/any/where/fer2013/test", "test") == "fer2013/test"
    assert data_name("/any/where/fer2013.csv", "train") == "fer2013/train"
    assert data_name("/any/where/fer2013") == "fer2013"


def test_no_code_test_or_config_default_points_into_the_team_workspace() -> None:
    """The team's copy is reached through FER2013_DIR (Makefile, .ci/run), never a default in code or tests."""
    offenders = []
    this, its_twin = Path(__file__).name, "test_shipped_paths.py"  # they spell the pattern they look for
    for folder in ("train", "convert", "edge", "benchmarks", "tests"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".toml", ".sh") and not {"results", "data"} & set(path.relative_to(ROOT).parts) \
                    and path.name not in (this, its_twin):
                if re.search(r"\.\./shared|/work/shared", path.read_text()):
                    offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders


@pytest.mark.slow
def test_a_run_on_fer2013_found_by_looking_records_no_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FER2013_DIR is where this machine keeps FER2013; the run records the data by name, and the next
    host's FER2013_DIR (or data/fer2013/) is where fer-convert looks again."""
    import tomllib

    from train.config import load_config
    from train.run_info import recorded_data
    from train.training import train

    sample = ROOT / "tests" / "data" / "fer2013_sample"
    monkeypatch.setenv("FER2013_DIR", str(sample))
    run = tmp_path / "run"
    train(load_config(None, ["model.arch=tiny", "train.epochs=1", "train.warmup_epochs=0",
                             "data.val_fraction=0.25"]), run, verbose=0)
    assert tomllib.loads((run / "config.toml").read_text())["data"]["dir"] == ""
    dataset = (run / "dataset.json").read_text()
    assert '"source": "fer2013_sample/train"' in dataset and str(sample) not in dataset
    assert recorded_data(run / "model.keras") is None  # so fer-convert looks where this host keeps FER2013
