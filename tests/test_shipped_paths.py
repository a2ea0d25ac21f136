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


def _is_text(path: Path) -> bool:
    return b"\0" not in path.read_bytes()[:8192]


def text_files_beside_the_models() -> list[Path]:
    """Every text file in models/ (cards, configs, data records, evaluations, manifests, READMEs, and the
    run records kept beside the shipped model's teachers in checkpoints/)."""
    return sorted(p for p in MODELS.rglob("*") if p.is_file() and _is_text(p))


def machine_paths_in(files: list[Path], root: Path) -> dict[str, list[str]]:
    found = {}
    for path in files:
        hits = MACHINE_PATH.findall(path.read_bytes().decode("latin-1"))
        if hits:
            found[str(path.relative_to(root))] = sorted(set(hits))
    return found


def test_no_shipped_file_holds_a_machine_path() -> None:
    assert not machine_paths_in(shipped_files(), ROOT)


def test_no_record_beside_a_model_holds_a_machine_path() -> None:
    """A user reads a card's, config's or evaluation's path as one on their own machine."""
    files = text_files_beside_the_models()
    names = {str(p.relative_to(MODELS)) for p in files}
    # what the test must look at is there (a wrong glob would pass on nothing)
    assert {"fer_vgg.card.md", "fer_vgg.card.json", "fer_vgg.config.toml", "fer_vgg.dataset.json",
            "fer_vgg_eval/metrics.json", "manifest.json",
            "checkpoints/born_again/fer_vgg_born_again.card.md", "checkpoints/shipped/config.toml",
            "checkpoints/shipped/dataset.json"} <= names, sorted(names)
    assert not any(p.suffix in (".keras", ".tflite", ".onnx", ".png") for p in files)
    assert not machine_paths_in(files, ROOT)


def test_a_shipped_config_finds_the_data_where_a_user_keeps_it() -> None:
    """data.dir is empty (FER2013_DIR, else data/fer2013/), FER+ votes are $FERPLUS_DIR/train.csv."""
    from train.config import load_config

    for path in [p for p in text_files_beside_the_models() if p.name.endswith(".config.toml")]:
        data = load_config(path).data
        assert data.dir == "", path
        assert data.votes in ("", "$FERPLUS_DIR/train.csv"), path


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


# --- what the writers write -----------------------------------------------------------------------


def test_commands_name_data_by_placeholder_and_leave_the_rest_as_written() -> None:
    from train.machine_free import machine_free_command, machine_free_setting

    old = ("fer-train evaluate models/m.keras --data /work/shared/data/fer2013 --split test "
           "--votes ../shared/data/ferplus/test.csv")
    new = "fer-train evaluate models/m.keras --data $FER2013_DIR --split test --votes $FERPLUS_DIR/test.csv"
    assert machine_free_command(old) == new and machine_free_command(new) == new
    run = ("fer-train --config c.toml --out runs/r --epochs 3 --set data.dir=/home/me/fer2013 "
           "--set data.votes=/home/me/ferplus/train.csv --set 'train.teacher=a b.keras' --set train.seed=7")
    assert machine_free_command(run) == (
        "fer-train --config c.toml --out runs/r --epochs 3 --set data.dir=$FER2013_DIR "
        "--set data.votes=$FERPLUS_DIR/train.csv --set 'train.teacher=a b.keras' --set train.seed=7")
    # data of a user's own is named by its folder, not by a FER2013 placeholder
    assert machine_free_command("fer-train evaluate m.keras --data /Users/me/my_faces", fer2013=False) == \
        "fer-train evaluate m.keras --data my_faces"
    assert machine_free_setting("data.dir=") is None and machine_free_setting("train.epochs=3") is None


def test_an_old_config_is_rewritten_in_its_data_lines_only() -> None:
    from train.model_card import shipped_config

    old = ('[data]\ndir = "/work/shared/data/fer2013"\nsplit = "train"\nvotes = "/work/shared/data/ferplus/train.csv"\n'
           '\n[train]\nteacher = "models/t.keras"\n')
    assert shipped_config(old) == ('[data]\ndir = ""\nsplit = "train"\nvotes = "$FERPLUS_DIR/train.csv"\n'
                                   '\n[train]\nteacher = "models/t.keras"\n')
    assert shipped_config(shipped_config(old)) == shipped_config(old)


@pytest.mark.slow
def test_ship_and_card_write_no_machine_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A tiny run on FER2013 and FER+ votes kept in a folder of this machine: nothing `fer-train ship` or
    `fer-train card` writes beside the model names that folder, and what they write still works there."""
    import os
    import shlex

    from train.__main__ import main
    from train.config import load_config

    here = tmp_path / "this machine's data"
    data = shutil.copytree(ROOT / "tests" / "data" / "fer2013_sample", here / "fer2013")
    votes = shutil.copytree(ROOT / "tests" / "data" / "ferplus_sample", here / "ferplus")
    monkeypatch.chdir(tmp_path)  # the run and the models folder given relative, as the docs do
    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.delenv("FERPLUS_DIR", raising=False)
    assert main(["--arch", "tiny", "--data", str(data), "--votes", str(votes / "train.csv"), "--out", "run",
                 "--epochs", "1", "--set", "train.warmup_epochs=0", "--set", "data.val_fraction=0.2"]) == 0
    assert str(data) in Path("run", "config.toml").read_text()  # a run in progress keeps its real paths
    assert main(["ship", "run", "--out", "models", "--name", "m", "--data", str(data),
                 "--votes", str(votes / "test.csv")]) == 0

    def check(written: list[Path]) -> dict:
        assert len(written) >= 7, written  # card .md/.json, config, dataset, history, metrics, confusion matrix
        texts = {str(p): p.read_text() for p in written}
        assert not machine_paths_in(written, tmp_path)
        assert not [name for name, text in texts.items() if str(here) in text or "this machine" in text]
        card = json.loads(Path("models/m.card.json").read_text())
        assert card["training_data"] == "fer2013/train" and card["evaluation"]["data"] == "fer2013/test"
        assert re.fullmatch(r"[0-9a-f]{64}", card["evaluation"]["data_fingerprint"])
        assert card["ferplus"]["votes"] == "ferplus/test.csv"
        assert card["commands"]["evaluate"] == "fer-train evaluate models/m.keras --data $FER2013_DIR --split test"
        words = card["commands"]["train"][0].split()
        assert "data.dir=$FER2013_DIR" in words and "data.votes=$FERPLUS_DIR/train.csv" in words
        return card

    written = sorted(p for p in (tmp_path / "models").rglob("*") if p.is_file() and _is_text(p))
    card = check(written)
    config = load_config(Path("models/m.config.toml")).data
    assert (config.dir, config.votes) == ("", "$FERPLUS_DIR/train.csv")
    record = json.loads(Path("models/m.dataset.json").read_text())
    assert record["source"] == "fer2013/train" and record["votes"]["file"] == "ferplus/train.csv"

    # on a user's machine the placeholders are filled in by the shell and the environment, and the
    # card's commands reprint its figures; the shipped config finds the votes through FERPLUS_DIR
    monkeypatch.setenv("FER2013_DIR", str(data))
    monkeypatch.setenv("FERPLUS_DIR", str(votes))
    capsys.readouterr()
    assert main([os.path.expandvars(word) for word in shlex.split(card["ferplus"]["command"])][1:]) == 0
    printed = capsys.readouterr().out
    assert f"accuracy  {card['evaluation']['accuracy']:.4f}" in printed
    assert f"FER+ agreement  {card['ferplus']['agreement']:.4f}" in printed
    assert main(["evaluate", "models/m.keras", "--split", "val"]) == 0
    assert f"accuracy  {card['validation']['accuracy']:.4f}" in capsys.readouterr().out

    # records shipped before names were kept (the run's own files, with its paths) are rewritten by `card`
    shutil.copyfile("run/config.toml", "models/m.config.toml")
    shutil.copyfile("run/dataset.json", "models/m.dataset.json")
    assert main(["card", "models/m.keras", "--data", str(data), "--votes", str(votes / "test.csv")]) == 0
    again = check(written)
    assert again["evaluation"] == card["evaluation"] and again["ferplus"] == card["ferplus"]
    assert load_config(Path("models/m.config.toml")) == load_config(Path("run/config.toml"), [
        "data.dir=", "data.votes=$FERPLUS_DIR/train.csv"])
    monkeypatch.delenv("FERPLUS_DIR")  # the placeholder says what to set
    capsys.readouterr()
    assert main(["evaluate", "models/m.keras", "--split", "val"]) == 2
    assert "FERPLUS_DIR is not set" in capsys.readouterr().err
