"""edge.toml is validated: unknown keys, wrong types and impossible values fail at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.__main__ import main
from edge.config import load_config
from edge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_configs_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate-config", str(ROOT / "edge" / "configs" / "demo.toml")]) == 0
    assert "ok" in capsys.readouterr().out
    config = load_config(ROOT / "edge" / "configs" / "edge.toml")
    assert config.source.uri == "picamera2" and config.http.host == "127.0.0.1"
    assert config.events.save_images is False


def test_relative_paths_follow_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "edge.toml"
    path.parent.mkdir()
    path.write_text('[events]\npath = "logs/events.jsonl"\n')
    assert load_config(path).events.path == str(tmp_path / "conf" / "logs" / "events.jsonl")


@pytest.mark.parametrize("text, fragment", [
    ("[source]\nurl = 'x'\n", "unknown config key source.url"),
    ("[camera]\nuri = 'x'\n", "unknown config section [camera]"),
    ("[http]\nport = 'eighty'\n", "http.port: expected int"),
    ("[http]\nport = 70000\n", "http.port must be in"),
    ("[tracker]\nsmoothing = 0\n", "tracker.smoothing"),
    ("[model\n", "not valid TOML"),
])
def test_bad_config(tmp_path: Path, text: str, fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert fragment in str(info.value)
    assert str(path) in str(info.value)  # the file it is in, whichever way the command found it
    assert main(["validate-config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fer-edge: error:") and "\n" not in err


def test_a_config_error_names_the_file_a_command_found_by_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[model]\nthreds = 2\n")
    monkeypatch.setenv("FER_EDGE_CONFIG", str(path))
    assert main(["validate-config"]) == 2
    assert capsys.readouterr().err == (f"fer-edge: error: {path}: unknown config key model.threds "
                                       "(known: manifest, artifact, threads)\n")
    with pytest.raises(ConfigError, match=r"^unknown config key model\.threds"):  # from --set: no file to name
        load_config(None, ["model.threds=2"])


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text("[model]\nthreads = 1\n")
    config = load_config(path, ["model.threads=3", "mqtt.enabled=true"])
    assert config.model.threads == 3 and config.mqtt.enabled is True
    with pytest.raises(ConfigError, match="unknown config key model.thread"):
        load_config(path, ["model.thread=2"])


def test_missing_model_is_reported_by_validate_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(f"[model]\nmanifest = '{tmp_path / 'nope.json'}'\n")
    assert main(["validate-config", str(path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def _model_copy(tmp_path: Path) -> Path:
    """The shipped manifest and its int8 artifact in a folder the test may break."""
    import json
    import shutil

    manifest = ROOT / "models" / "manifest.json"
    models = tmp_path / "models"
    models.mkdir()
    data = json.loads(manifest.read_text())
    data["artifacts"] = {"int8": data["artifacts"]["int8"]}
    shutil.copy(manifest.parent / data["artifacts"]["int8"]["path"], models)
    (models / "manifest.json").write_text(json.dumps(data))
    return models / "manifest.json"


def _refused(tmp_path: Path, text: str, fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    """validate-config on ``text`` exits 2 with one line naming ``fragment``."""
    path = tmp_path / "edge.toml"
    path.write_text(text)
    assert main(["validate-config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fer-edge: error:") and "\n" not in err and fragment in err


@pytest.mark.parametrize("problem, fragment", [
    ("missing artifact file", "does not exist"),
    ("labels one short", "the model has 7 outputs but the manifest names 6 labels"),
    ("input size", "the model takes input [1, 48, 48, 1] but the manifest says input_shape [1, 64, 64, 1]"),
    ("missing video", "no such file or folder"),
])
def test_validate_config_refuses_what_run_would_refuse(problem: str, fragment: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """validate-config is install.sh's check and the one before a reload: an ok from it must
    mean the daemon starts, so it loads the model, the labels against it, and the source."""
    import json

    manifest = _model_copy(tmp_path)
    data = json.loads(manifest.read_text())
    source = "picamera2"
    if problem == "missing artifact file":
        (manifest.parent / data["artifacts"]["int8"]["path"]).unlink()
    if problem == "labels one short":
        data["labels"] = data["labels"][:-1]
    if problem == "input size":
        data["input_shape"] = [1, 64, 64, 1]
        data["preprocessing"]["size"] = [64, 64]
    if problem == "missing video":
        source = str(tmp_path / "nope.mp4")
    manifest.write_text(json.dumps(data))
    _refused(tmp_path, f"[model]\nmanifest = '{manifest}'\n[source]\nuri = '{source}'\n", fragment, capsys)


@pytest.mark.parametrize("edit, fragment", [
    (lambda d: d["artifacts"]["int8"]["input"].update(scale="abc"), "'scale' must be a number"),
    (lambda d: d["preprocessing"].update(size=48), "needs size [width, height]"),
    (lambda d: d["preprocessing"].update(size=[64, 64]), "does not match input_shape"),
    (lambda d: d["artifacts"]["int8"].update(metrics=[1]), "'metrics' has the wrong type"),
])
def test_malformed_manifest_fields_are_one_line_errors(edit, fragment: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import json

    manifest = _model_copy(tmp_path)
    data = json.loads(manifest.read_text())
    edit(data)
    manifest.write_text(json.dumps(data))
    _refused(tmp_path, f"[model]\nmanifest = '{manifest}'\n", fragment, capsys)


def test_mqtt_without_paho_is_caught_by_validate_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "paho.mqtt.client", None)  # import fails as if not installed
    path = tmp_path / "edge.toml"
    path.write_text("[mqtt]\nenabled = true\n")
    assert main(["validate-config", str(path)]) == 2
    assert "install.sh with --with-mqtt" in capsys.readouterr().err


def test_snapshots_default_to_a_folder_beside_the_event_log(tmp_path: Path) -> None:
    """Under systemd the working directory is / (read-only); the event log's folder is writable."""
    from edge.config import snapshots_dir

    path = tmp_path / "edge.toml"
    path.write_text("[events]\npath = '/var/lib/fer-edge/events.jsonl'\nsave_images = true\n")
    assert snapshots_dir(load_config(path).events) == Path("/var/lib/fer-edge/snapshots")
    path.write_text("[events]\nimages_dir = 'shots'\n")
    assert snapshots_dir(load_config(path).events) == tmp_path / "shots"
    assert snapshots_dir(load_config(path, ["events.images_dir="]).events) == Path("snapshots")
