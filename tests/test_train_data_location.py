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
