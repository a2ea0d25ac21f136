"""Which config fer-edge reads without --config: FER_EDGE_CONFIG, then install.sh's, then the packaged defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.config_source import ENV, MARKER, choose_config, installed_config
from edge.errors import ConfigError
from edge.packaged import shipped_cascade, shipped_manifest
from tests.edge_helpers import ROOT


def _config(path: Path, text: str = "[model]\nthreads = 2\n") -> Path:
    path.write_text(text)
    return path


def _installed_prefix(tmp_path: Path, config: Path) -> Path:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / MARKER).write_text(f"CONFIG={config}\n")
    return venv


def test_precedence_is_flag_then_environment_then_installed_then_packaged(tmp_path: Path) -> None:
    flag, env, installed = (_config(tmp_path / f"{n}.toml") for n in ("flag", "env", "installed"))
    prefix = _installed_prefix(tmp_path, installed)
    assert choose_config(flag, {ENV: str(env)}, prefix).path == flag
    assert choose_config(None, {ENV: str(env)}, prefix).path == env
    chosen = choose_config(None, {}, prefix)
    assert (chosen.path, chosen.origin) == (installed, "installed")
    assert chosen.describe() == f"config: {installed} (installed)"
    packaged = choose_config(None, {ENV: ""}, tmp_path / "a-venv-install.sh-did-not-build")
    assert packaged.path is None and packaged.describe() == "config: packaged defaults"


def test_a_missing_config_named_by_the_environment_or_the_install_is_an_error(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=f"{ENV}=.*nope.toml: no such config file"):
        choose_config(None, {ENV: str(tmp_path / "nope.toml")}, tmp_path)
    prefix = _installed_prefix(tmp_path, tmp_path / "gone.toml")
    with pytest.raises(ConfigError, match="installed config .*gone.toml does not exist"):
        choose_config(None, {}, prefix)
    readable = _config(tmp_path / "gone.toml")
    monkeypatch.setattr("os.access", lambda path, mode: Path(path) != readable)  # root reads anything: pretend
    with pytest.raises(ConfigError, match=r"installed config .*gone.toml is not readable by this user: run with "
                                          r"sudo, or join its group \(sudo usermod -aG \w+ \$USER"):
        choose_config(None, {}, prefix)
    monkeypatch.undo()
    (prefix / MARKER).write_text("# no config line\n")
    with pytest.raises(ConfigError, match="names no CONFIG="):
        installed_config(prefix)


def test_packaged_defaults_name_the_model_and_cascade_that_ship_in_the_package() -> None:
    from edge.config import load_config

    config = load_config(None)
    assert Path(config.model.manifest) == shipped_manifest() and shipped_manifest().is_file()
    assert Path(config.detector.cascade) == shipped_cascade() and shipped_cascade().is_file()


def _fer_edge(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    import os

    full = {k: v for k, v in os.environ.items() if k != ENV}
    full["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=120,
                          env={**full, **(env or {})}, cwd=cwd or ROOT)


def test_validate_config_without_a_file_checks_what_run_would_use(tmp_path: Path) -> None:
    result = _fer_edge("validate-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("packaged defaults: ok (model fer_vgg/int8")
    assert "config:" not in result.stderr  # no file was read: nothing to name
    mine = _config(tmp_path / "mine.toml")
    result = _fer_edge("validate-config", env={ENV: str(mine)}, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith(f"{mine}: ok"), result.stderr
    assert f"fer-edge: config: {mine} (FER_EDGE_CONFIG)" in result.stderr


@pytest.mark.parametrize("name, text, message", [
    ("missing.toml", None, "FER_EDGE_CONFIG=.*missing.toml: no such config file"),
    ("broken.toml", "[model\nthreads = 2\n", "config file .*broken.toml is not valid TOML"),
])
def test_a_bad_environment_config_is_one_line_and_exit_2(tmp_path: Path, name: str, text: str | None,
                                                          message: str) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    for command in (["validate-config"], ["detect", str(ROOT / "tests" / "data")], ["run", "--max-frames", "1"]):
        result = _fer_edge(*command, env={ENV: str(path)}, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fer-edge: error:"), (command, result.stderr)
        import re

        assert re.search(message, lines[0]), lines[0]
