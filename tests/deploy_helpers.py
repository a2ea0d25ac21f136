"""Shared by the deploy tests: build and unpack bundles, run install.sh, pick a Python like a Pi's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FER_EDGE = [sys.executable, "-m", "edge"]
INSTALL_TIMEOUT = 900


def cli(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*FER_EDGE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kwargs)


def build(out: Path, *args: str) -> Path:
    result = cli("bundle", "--output", str(out), *args)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.split()[0])


def unpack(tarball: Path, dest: Path) -> Path:
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    (top,) = [p for p in dest.iterdir() if p.is_dir()]
    return top


def system_python() -> str:
    """A real (non-venv) Python >= 3.11, as on a Pi: Debian's when it has venv support, else ours."""
    for candidate in ("/usr/bin/python3",):
        if Path(candidate).exists():
            ok = subprocess.run([candidate, "-c", "import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))"],
                                capture_output=True)
            if ok.returncode == 0:
                return candidate
    return getattr(sys, "_base_executable", sys.executable)


def install(bundle_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("VIRTUAL_ENV", None)
    # the install stands alone, as on a Pi: a checkout on PYTHONPATH holding a fer_edge.egg-info (left by
    # `pip install -e`) would make pip take the bundle's wheel as installed already and skip its console script
    env.pop("PYTHONPATH", None)
    result = subprocess.run(["bash", str(bundle_dir / "install.sh"), *args], capture_output=True, text=True,
                            timeout=INSTALL_TIMEOUT, env=env)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def run_demo(prefix: Path, frames: int = 60, config: Path | None = None) -> tuple[str, list[dict]]:
    """The installed daemon on the installed demo clip; its summary line and the events it appended."""
    config = config or prefix / "etc" / "edge.toml"
    events = prefix / "var" / "lib" / "fer-edge" / "events.jsonl"
    before = events.read_text().count("\n") if events.exists() else 0
    result = subprocess.run([str(prefix / "venv" / "bin" / "fer-edge"), "run", "--config", str(config),
                             "--source", str(prefix / "demo" / "demo_clip.mp4"), "--max-frames", str(frames),
                             "--set", "http.port=0"], capture_output=True, text=True, timeout=300, cwd="/")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = [line for line in result.stdout.splitlines() if line.startswith("summary:")]
    assert summary, result.stdout[-2000:]
    lines = events.read_text().splitlines()[before:]
    return summary[-1], [json.loads(line) for line in lines]


def have(*tools: str) -> bool:
    return all(shutil.which(tool) for tool in tools)


def sh(*argv: str, timeout: float = 1800, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command; with ``check``, a failure raises with its command line and the tail of its output."""
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
    return result
