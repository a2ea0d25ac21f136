"""What ships holds no path of the machine that made it: manifests name their data set by name and
fingerprint, and no default config or model file points into a home folder or this team's workspace."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from edge.vision.manifest import check_artifact, load_manifest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
MACHINE_PATH = re.compile(r"/work/|/root/|/home/|/Users/|/tmp/|\.\./shared|[A-Za-z]:\\\\")


def shipped_files() -> list[Path]:
    """What the wheel carries from models/, every model's manifest under models/, and edge's default configs."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    files = [MODELS / name for name in setuptools["package-data"]["edge.models"]]
    files += [p for p in MODELS.rglob("manifest.json") if "checkpoints" not in p.relative_to(MODELS).parts]
    files += sorted((ROOT / "edge" / "configs").glob("*.toml"))
    return sorted(set(files))


def test_no_shipped_file_holds_a_machine_path() -> None:
    found = {}
    for path in shipped_files():
        hits = MACHINE_PATH.findall(path.read_bytes().decode("latin-1"))
        if hits:
            found[str(path.relative_to(ROOT))] = sorted(set(hits))
    assert not found, found


def test_shipped_manifests_name_their_data_and_still_match_their_artifacts() -> None:
    for path in [p for p in shipped_files() if p.name == "manifest.json"]:
        raw = json.loads(path.read_text())
        records = [a["metrics"] for a in raw["artifacts"].values()] + [raw["float_metrics"], raw["calibration"]]
        for record in records:
            assert re.fullmatch(r"[\w.-]+(/\w+)?", record["data"]), (path, record["data"])
            assert re.fullmatch(r"[0-9a-f]{64}", record["data_fingerprint"]), path
        manifest = load_manifest(path)
        for name in manifest.artifacts:
            if manifest.artifact_path(name).is_file():
                check_artifact(manifest, name)  # sha256 and size: the edit touched no artifact


def test_the_shipped_fingerprints_are_those_of_fer2013(full_data: Path) -> None:
    from train.data import load_dataset
    from train.run_info import manifest_options

    raw = json.loads((MODELS / "manifest.json").read_text())
    options = manifest_options(raw)
    test = load_dataset(full_data, "test", tuple(raw["labels"]), **options).fingerprint()
    assert raw["artifacts"]["int8"]["metrics"]["data_fingerprint"] == raw["float_metrics"]["data_fingerprint"] == test
    train = load_dataset(full_data, "train", tuple(raw["labels"]), **options).fingerprint()
    assert raw["calibration"]["data_fingerprint"] == train


def test_a_manifest_that_records_its_data_as_a_path_still_loads(tmp_path: Path) -> None:
    """Manifests written before data was named (a path, no fingerprint) stay readable by the edge."""
    from edge.vision.classifier import Classifier

    raw = json.loads((MODELS / "manifest.json").read_text())
    int8 = raw["artifacts"]["int8"]
    int8["metrics"] = {**{k: v for k, v in int8["metrics"].items() if k != "data_fingerprint"},
                       "data": "/somewhere/fer2013/test"}
    raw["artifacts"] = {"int8": int8}
    raw["calibration"] = {"data": "../elsewhere/fer2013", "split": "train", "images": 500}
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    shutil.copyfile(MODELS / int8["path"], tmp_path / int8["path"])
    manifest = load_manifest(tmp_path / "manifest.json")
    assert manifest.artifact("int8").metrics["data"] == "/somewhere/fer2013/test"
    with Classifier(manifest, "int8") as classifier:
        assert classifier.labels == tuple(raw["labels"])


@pytest.mark.parametrize("config", sorted((ROOT / "train" / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_training_recipes_name_no_data_folder_of_this_team(config: Path) -> None:
    assert not MACHINE_PATH.search(config.read_text()), config
