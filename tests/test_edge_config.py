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
    assert main(["validate-config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fer-edge: error:") and "\n" not in err


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
