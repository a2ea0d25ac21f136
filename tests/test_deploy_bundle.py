"""``fer-edge bundle`` and the installer's refusals: a tampered bundle, an old Python. Fast: nothing is installed."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.deploy_helpers import ROOT, build, cli, install, unpack


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("bundle"))


def test_bundle_is_one_versioned_tarball_with_a_checked_sha256_list(bundle: Path, tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert bundle.name == f"fer-edge-{version}-fer_vgg.tar.gz"
    assert bundle.with_name(bundle.name + ".sha256").read_text().split()[0] == hashlib.sha256(
        bundle.read_bytes()).hexdigest()
    top = unpack(bundle, tmp_path)
    files = sorted(p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file())
    assert files == sorted(["SHA256SUMS", "bundle.env", "install.sh", "config/edge.toml", "systemd/fer-edge.service",
                            "demo/demo_clip.mp4", "models/manifest.json", "models/fer_vgg_int8.tflite",
                            "models/haarcascade_frontalface_default.xml",
                            *(f"models/blazeface/face_detection_{m}.tflite{s}" for m in ("back", "short_range")
                              for s in ("", ".sha256")),
                            f"wheels/fer_edge-{version}-py3-none-any.whl"])
    check = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=top, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    assert len(check.stdout.splitlines()) == len(files) - 1
    env = dict(line.split("=", 1) for line in (top / "bundle.env").read_text().splitlines() if "=" in line)
    assert env["VERSION"] == version and env["MODEL"] == "fer_vgg" and env["ARTIFACT"] == "int8"
    assert env["BUNDLE_ID"].startswith(f"{version}-")
    # the manifest names only the shipped artifact, and still matches it
    manifest = json.loads((top / "models" / "manifest.json").read_text())
    assert list(manifest["artifacts"]) == ["int8"]
    assert manifest["artifacts"]["int8"]["sha256"] == hashlib.sha256(
        (top / "models" / "fer_vgg_int8.tflite").read_bytes()).hexdigest()
    assert (top / "systemd" / "fer-edge.service").read_text() == (ROOT / "edge/deploy/fer-edge.service").read_text()
    assert (top / "install.sh").stat().st_mode & 0o111


def test_wheel_holds_edge_only_and_installs_the_console_script(bundle: Path, tmp_path: Path) -> None:
    top = unpack(bundle, tmp_path)
    (wheel,) = (top / "wheels").glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        metadata = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert {name.split("/")[0] for name in names} == {"edge", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "edge/__main__.py" in names and "edge/configs/edge.toml" in names and "edge/vision/sources/picamera.py" in names
    assert not any(part in name for name in names for part in ("train/", "convert/", "benchmarks/", "__pycache__"))
    assert "fer-edge = edge.__main__:main" in entry_points
    assert "Requires-Python: >=3.11" in metadata and "Requires-Dist: numpy>=1.24" in metadata


def test_bundles_are_reproducible(bundle: Path, tmp_path: Path) -> None:
    again = build(tmp_path)
    assert again.read_bytes() == bundle.read_bytes()


def test_bundle_ships_the_chosen_artifacts_and_names_the_first_in_its_config(tmp_path: Path) -> None:
    tarball = build(tmp_path, "--artifact", "float32", "--artifact", "int8")
    top = unpack(tarball, tmp_path / "x")
    assert sorted(json.loads((top / "models/manifest.json").read_text())["artifacts"]) == ["float32", "int8"]
    assert tomllib.loads((top / "config/edge.toml").read_text())["model"]["artifact"] == "float32"


@pytest.mark.parametrize("args, message", [
    (["--artifact", "int4"], "manifest has no artifact 'int4'"),
    (["--manifest", "/nonexistent/manifest.json"], "does not exist"),
    (["--wheels", "/nonexistent"], "wheels folder /nonexistent does not exist"),
])
def test_bundle_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = cli("bundle", "--output", str(tmp_path), *args)
    assert result.returncode == 2
    assert result.stderr.startswith("fer-edge: error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.tar.gz"))


def test_bundle_refuses_a_model_that_does_not_match_its_manifest(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns("*.keras", "*.onnx", "demo", "*_eval"))
    with open(models / "fer_vgg_int8.tflite", "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02")
    result = cli("bundle", "--output", str(tmp_path / "out"), "--manifest", str(models / "manifest.json"))
    assert result.returncode == 2 and "does not match the manifest's sha256" in result.stderr


def test_bundle_refuses_an_invalid_config(tmp_path: Path) -> None:
    bad = tmp_path / "edge.toml"
    bad.write_text("[model]\nartifact = \"int8\"\nthreads = 0\n")
    result = cli("bundle", "--output", str(tmp_path / "out"), "--config", str(bad))
    assert result.returncode == 2 and "model.threads must be >= 1" in result.stderr


def _tampered(bundle: Path, tmp_path: Path) -> Path:
    top = unpack(bundle, tmp_path)
    config = top / "config" / "edge.toml"
    config.write_text(config.read_text().replace('host = "127.0.0.1"', 'host = "0.0.0.0"'))
    return top


def test_install_refuses_a_tampered_bundle_and_leaves_nothing(bundle: Path, tmp_path: Path) -> None:
    top = _tampered(bundle, tmp_path / "b")
    prefix = tmp_path / "prefix"
    result = install(top, "--prefix", str(prefix), "--no-systemd", "--no-apt", check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "sha256 mismatch: config/edge.toml" in result.stderr and "nothing was installed" in result.stderr
    assert not prefix.exists()


def test_install_refuses_files_the_sha256_list_does_not_name(bundle: Path, tmp_path: Path) -> None:
    top = unpack(bundle, tmp_path / "b")
    (top / "wheels" / "numpy-9.9.9-py3-none-any.whl").write_bytes(b"not a wheel")
    prefix = tmp_path / "prefix"
    result = install(top, "--prefix", str(prefix), "--no-systemd", "--no-apt", check=False)
    assert result.returncode == 2 and "not in SHA256SUMS" in result.stderr and "numpy-9.9.9" in result.stderr
    assert not prefix.exists()


def _old_python(tmp_path: Path) -> str:
    """A real Python 3.9/3.10 when one is around (pyenv), else a stand-in that reports 3.9."""
    for candidate in sorted(Path.home().glob(".pyenv/versions/3.[89]*/bin/python3")) + \
            sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3")) + \
            [Path("/usr/bin/python3.9"), Path("/usr/bin/python3.10")]:
        if candidate.exists():
            return str(candidate)
    stub = tmp_path / "python3.9"
    stub.write_text("#!/bin/sh\nexec \"" + sys.executable + "\" -c '\nimport sys\nsys.version_info = (3, 9, 18)\n"
                    "exec(sys.argv[1])' \"$2\"\n")
    stub.chmod(0o755)
    return str(stub)


def test_install_refuses_a_python_that_is_too_old_and_leaves_nothing(bundle: Path, tmp_path: Path) -> None:
    top = unpack(bundle, tmp_path / "b")
    prefix = tmp_path / "prefix"
    result = install(top, "--prefix", str(prefix), "--no-systemd", "--no-apt", "--python", _old_python(tmp_path),
                     check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is too old: fer-edge needs Python >= 3.11" in result.stderr
    assert not prefix.exists()


def test_install_rejects_unknown_options(bundle: Path, tmp_path: Path) -> None:
    top = unpack(bundle, tmp_path / "b")
    result = install(top, "--frobnicate", check=False)
    assert result.returncode == 2 and "unknown option --frobnicate" in result.stderr


def test_install_sh_passes_bash_syntax_check_and_shellcheck_when_available() -> None:
    for script in ("install.sh", "firstboot.sh"):
        path = ROOT / "edge" / "deploy" / script
        assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
        if shutil.which("shellcheck"):
            result = subprocess.run(["shellcheck", "-S", "error", str(path)], capture_output=True, text=True)
            assert result.returncode == 0, result.stdout
