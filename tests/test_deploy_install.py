"""install.sh for real into a temporary prefix (--no-systemd), then the installed daemon on the demo clip.

One install per module (about a minute: a venv, opencv and a TFLite runtime from pip's cache);
the tests then upgrade it in place and uninstall it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy_helpers import build, install, run_demo, system_python, unpack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("install")
    top = unpack(build(work / "out"), work / "bundle")
    prefix = work / "prefix"
    result = install(top, "--prefix", str(prefix), "--no-systemd", "--no-apt", "--python", system_python())
    return {"top": top, "prefix": prefix, "first": result}


def test_prefix_install_lays_out_venv_models_config_and_state(installed: dict) -> None:
    prefix: Path = installed["prefix"]
    out = installed["first"].stdout
    assert "model check:" in out and "status: fer-edge" in out and "service: none (--no-systemd)" in out
    for link in ("venv", "models", "demo"):
        assert (prefix / link).is_symlink() and (prefix / link).resolve().is_dir()
    assert (prefix / "current").resolve().parent == prefix / "releases"
    config = (prefix / "etc" / "edge.toml").read_text()
    # the unit and config paths are rewritten for the prefix
    assert f'manifest = "{prefix}/models/manifest.json"' in config
    assert f'path = "{prefix}/var/lib/fer-edge/events.jsonl"' in config
    assert "/opt/fer-edge" not in config
    assert config.count("/var/lib/fer-edge") == config.count(f"{prefix}/var/lib/fer-edge") == 1
    unit = (prefix / "current" / "systemd" / "fer-edge.service").read_text()
    assert f"ExecStart={prefix}/venv/bin/fer-edge run --config {prefix}/etc/edge.toml" in unit
    assert f"ReadWritePaths={prefix}/var/lib/fer-edge" in unit
    for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=", "Type=notify"):
        assert hardening in unit
    assert (prefix / "var" / "lib" / "fer-edge").is_dir()
    # edge/ on the device: no tensorflow came along
    venv_python = str(prefix / "venv" / "bin" / "python")
    probe = subprocess.run([venv_python, "-c", "import importlib.util as u; print(u.find_spec('tensorflow'))"],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "None"
    check = subprocess.run([str(prefix / "venv" / "bin" / "fer-edge"), "validate-config", str(prefix / "etc/edge.toml")],
                           capture_output=True, text=True)
    assert check.returncode == 0 and ": ok (model fer_vgg/int8" in check.stdout, check.stderr


def test_installed_daemon_runs_on_the_demo_clip(installed: dict) -> None:
    prefix: Path = installed["prefix"]
    summary, events = run_demo(prefix, frames=60)
    assert summary.startswith("summary: 60 frames,")
    assert events, "no events written to the installed events path"
    labels = json.loads((prefix / "models" / "manifest.json").read_text())["labels"]
    faces = [face for event in events for face in event["faces"]]
    assert faces and all(face["label"] in labels for face in faces)


def _installed_cli(prefix: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed fer-edge as a user who SSHes in runs it: from /, no --config, no checkout on the path."""
    import os

    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "FER_EDGE_CONFIG")}
    return subprocess.run([str(prefix / "venv" / "bin" / "fer-edge"), *args], capture_output=True, text=True,
                          timeout=300, cwd="/", env={**clean, **(env or {})})


def test_installed_cli_uses_the_installed_config_without_flags(installed: dict, tmp_path: Path) -> None:
    prefix: Path = installed["prefix"]
    config = prefix / "etc" / "edge.toml"
    assert (prefix / "venv" / "fer-edge-install.env").read_text() == f"CONFIG={config}\n"
    import cv2

    capture = cv2.VideoCapture(str(prefix / "demo" / "demo_clip.mp4"))
    for _ in range(20):
        ok, frame = capture.read()
    capture.release()
    photo = tmp_path / "photo.jpg"
    assert ok and cv2.imwrite(str(photo), frame)
    named = f"fer-edge: config: {config} (installed)"

    detected = _installed_cli(prefix, "detect", str(photo))
    assert detected.returncode == 0 and '"faces": [{' in detected.stdout, detected.stderr[-2000:]
    assert named in detected.stderr
    validated = _installed_cli(prefix, "validate-config")
    assert validated.returncode == 0 and validated.stdout.startswith(f"{config}: ok"), validated.stderr[-2000:]
    events = prefix / "var" / "lib" / "fer-edge" / "events.jsonl"
    before = events.read_text().count("\n") if events.exists() else 0
    ran = _installed_cli(prefix, "run", "--source", str(prefix / "demo" / "demo_clip.mp4"), "--max-frames", "5",
                         "--set", "http.port=0")
    assert ran.returncode == 0 and named in ran.stderr, ran.stderr[-2000:]
    assert events.read_text().count("\n") > before  # the installed config's event log, not one in the cwd

    # FER_EDGE_CONFIG comes before the installed config; --config before both
    other = tmp_path / "other.toml"
    other.write_text(config.read_text())
    chosen = _installed_cli(prefix, "validate-config", env={"FER_EDGE_CONFIG": str(other)})
    assert chosen.returncode == 0 and f"config: {other} (FER_EDGE_CONFIG)" in chosen.stderr, chosen.stderr
    flagged = _installed_cli(prefix, "validate-config", "--config", str(other),
                             env={"FER_EDGE_CONFIG": str(tmp_path / "missing.toml")})
    assert flagged.returncode == 0 and flagged.stdout.startswith(f"{other}: ok"), flagged.stderr


def test_installed_cli_bad_configs_are_one_line_naming_the_file_and_exit_2(installed: dict, tmp_path: Path) -> None:
    prefix: Path = installed["prefix"]
    config = prefix / "etc" / "edge.toml"
    missing = _installed_cli(prefix, "detect", "/nonexistent.jpg", env={"FER_EDGE_CONFIG": str(tmp_path / "no.toml")})
    assert missing.returncode == 2, missing.stderr
    assert missing.stderr.strip().splitlines() == [f"fer-edge: error: FER_EDGE_CONFIG={tmp_path / 'no.toml'}: "
                                                   "no such config file"]
    original = config.read_text()
    try:
        config.write_text(original.replace("[model]", "[model", 1))
        for command in (["validate-config"], ["detect", "/nonexistent.jpg"], ["run", "--max-frames", "1"]):
            broken = _installed_cli(prefix, *command)
            lines = broken.stderr.strip().splitlines()
            assert broken.returncode == 2 and len(lines) == 1, (command, broken.stderr)
            assert lines[0].startswith(f"fer-edge: error: config file {config} is not valid TOML"), lines[0]
    finally:
        config.write_text(original)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_rendered_unit_passes_systemd_analyze_verify(installed: dict) -> None:
    unit = installed["prefix"] / "current" / "systemd" / "fer-edge.service"
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "fer-edge.service" not in result.stderr, result.stderr


def test_second_run_upgrades_in_place_and_keeps_config_and_events(installed: dict) -> None:
    prefix: Path = installed["prefix"]
    config = prefix / "etc" / "edge.toml"
    # a user's edit of a shipped key, which the upgrade must keep; subn fails loudly if the key moves
    edited, count = re.subn(r"(?m)^detect_every = \d+", "detect_every = 7", config.read_text())
    assert count == 1, "the shipped edge.toml has no detect_every line to edit"
    config.write_text(edited + "# mine\n")
    mine = config.read_text()
    events = prefix / "var" / "lib" / "fer-edge" / "events.jsonl"
    run_demo(prefix, frames=10)
    logged = events.read_text()
    assert logged
    old_release = (prefix / "current").resolve()
    result = install(installed["top"], "--prefix", str(prefix), "--no-systemd", "--no-apt", "--python", system_python())
    assert f"config: kept {config}" in result.stdout
    assert config.read_text() == mine
    assert (prefix / "etc" / "edge.toml.new").is_file()
    assert events.read_text() == logged
    new_release = (prefix / "current").resolve()
    assert new_release != old_release and old_release.is_dir()  # the previous release is kept for a rollback
    summary, new_events = run_demo(prefix, frames=20)
    assert summary.startswith("summary: 20 frames,") and new_events
    assert events.read_text().startswith(logged)
    status = subprocess.run(["bash", str(installed["top"] / "install.sh"), "--status", "--prefix", str(prefix)],
                            capture_output=True, text=True)
    assert f"release {new_release.name}" in status.stdout


def test_uninstall_removes_everything_it_added(installed: dict) -> None:
    prefix: Path = installed["prefix"]
    result = subprocess.run(["bash", str(installed["top"] / "install.sh"), "--uninstall", "--prefix", str(prefix)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not prefix.exists(), sorted(str(p) for p in prefix.rglob("*"))[:20]
    again = subprocess.run(["bash", str(installed["top"] / "install.sh"), "--uninstall", "--prefix", str(prefix)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "nothing installed" in again.stderr
