"""The wheel as a user gets it: built from a clean copy of the sources, installed into a fresh venv outside
the repository, and run from another folder with no flags (the shipped model and cascade come from inside it).

pip may fetch opencv and LiteRT from PyPI for the venv (its cache makes a rerun quick).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge", "train", "convert", "benchmarks")
MAX_WHEEL_BYTES = 5_000_000


def packaged_model_names() -> list[str]:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return sorted(setuptools["package-data"]["edge.models"])


def clean_copy(dest: Path) -> Path:
    """What a fresh clone holds for the build: pyproject, README, the packages and the shipped models only."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "results")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, dest / package, ignore=ignore)
    (dest / "models").mkdir()
    for name in packaged_model_names():
        (dest / "models" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "models" / name, dest / "models" / name)
    return dest


def clean_env() -> dict[str, str]:
    """No trace of this checkout or its venv: the installed package must stand alone."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "FER_EDGE_CONFIG", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_bundle_wheel_carries_the_same_shipped_defaults(tmp_path: Path) -> None:
    from edge.deploy.bundle import build_wheel

    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        shipped = {name.removeprefix("edge/models/"): zf.read(name) for name in zf.namelist()
                   if name.startswith("edge/models/")}
    assert sorted(shipped) == packaged_model_names()
    for name, data in shipped.items():
        assert data == (ROOT / "models" / name).read_bytes(), name


def test_the_documented_wheel_install_commands_name_a_wheel_file(tmp_path: Path) -> None:
    """`pip install dist/fer_edge-*.whl[edge]` globs for a file named `...whl[edge]`, finds none, and pip stops
    with `Invalid wheel filename`: each documented command must hand pip an existing wheel with its extra."""
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "fer_edge-0.1.0-py3-none-any.whl").touch()
    commands = sorted({match.group(0).strip() for page in (ROOT / "README.md", ROOT / "docs" / "installing.md")
                       for match in re.finditer(r"pip install [^`#\n]*\.whl[^`#\n]*", page.read_text())})
    assert commands
    for command in commands:
        # a shell function stands in for pip: what it is handed is what pip would be
        shown = subprocess.run(["bash", "-c", f'pip() {{ printf "%s\\n" "$@"; }}; {command}'], cwd=tmp_path,
                               capture_output=True, text=True, timeout=30)
        wheels = [arg for arg in shown.stdout.splitlines() if ".whl" in arg]
        assert shown.returncode == 0 and len(wheels) == 1, (command, shown)
        path, _, extra = wheels[0].partition("[")
        assert (tmp_path / path).is_file() and extra == "edge]", (command, wheels)


@pytest.mark.slow
def test_wheel_installs_outside_the_repository_and_runs_with_no_flags(tmp_path: Path) -> None:
    source = clean_copy(tmp_path / "src")
    env = clean_env()
    # -v: pip shows the build backend's warnings only when verbose (an editable install shows them anyway)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    # a shipped file in a folder that is not a listed package: forty lines of BuildBackendWarning on every install
    assert "is absent from the `packages` configuration" not in built.stdout + built.stderr, built.stdout[-3000:]
    (wheel,) = (tmp_path / "dist").glob("fer_edge-*.whl")
    assert wheel.stat().st_size < MAX_WHEEL_BYTES, f"{wheel.name}: {wheel.stat().st_size:,} bytes"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert sorted(n.removeprefix("edge/models/") for n in names if n.startswith("edge/models/")) == \
        packaged_model_names()
    assert not any("checkpoints" in name for name in names)

    venv = tmp_path / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True,
                   timeout=120, env=env)
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[edge]"],
                               capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]

    work = tmp_path / "elsewhere"
    work.mkdir()
    import cv2

    clip = ROOT / "models" / "demo" / "demo_clip.mp4"
    shutil.copy2(clip, work / "video.mp4")
    capture = cv2.VideoCapture(str(clip))
    for _ in range(20):
        ok, frame = capture.read()
    capture.release()
    assert ok and cv2.imwrite(str(work / "photo.jpg"), frame)

    fer_edge = str(venv / "bin" / "fer-edge")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([fer_edge, *args], capture_output=True, text=True, timeout=300, env=env, cwd=work)

    detected = run("detect", "photo.jpg")
    assert detected.returncode == 0, detected.stderr[-2000:]
    assert '"faces": [{' in detected.stdout  # the demo frame has faces: the packaged model and cascade ran

    validated = run("validate-config")
    assert validated.returncode == 0, validated.stderr[-2000:]
    assert validated.stdout.startswith("packaged defaults: ok (model fer_vgg/int8")

    # the packaged defaults serve /healthz on 127.0.0.1:8321; another program there is not this test's subject
    extra = [] if port_free(8321) else ["--set", "http.port=0"]
    ran = run("run", "--source", "video.mp4", *extra)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "summary:" in ran.stdout and (work / "events.jsonl").stat().st_size > 0
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert f"{site / 'edge' / 'models' / 'manifest.json'}" in ran.stderr  # the model came from the wheel
