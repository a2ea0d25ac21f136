"""The bundle installs and the daemon runs on the Pi's architecture and software: arm64 Bookworm under qemu.

``make test-arm64`` (CI) runs this with FER_REQUIRE_ARM64=1. It needs root and Debian's
qemu-user-static, binfmt-support and debootstrap. The arm64 root (debootstrap minbase + python3,
python3-numpy 1.24, python3-venv, python3-pip, then python3-opencv 4.6 from apt) and the aarch64
wheels (tflite-runtime 2.14.0, ai-edge-litert, fetched on the host with ``pip download``) are
cached in FER_ARM64_CACHE (default /var/cache/fer-edge-arm64) between runs. install.sh then runs
inside the chroot offline (--wheels), exactly as on a Pi that was given pre-fetched wheels, and must
keep apt's numpy 1.24 and pick tflite-runtime; then the installed daemon runs on the demo clip.
Timings under emulation mean nothing; only correctness is checked.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.deploy_helpers import build, sh

REQUIRED = os.environ.get("FER_REQUIRE_ARM64") == "1"
CACHE = Path(os.environ.get("FER_ARM64_CACHE", "/var/cache/fer-edge-arm64"))
ROOTFS = CACHE / "bookworm-root"
WHEELS = CACHE / "wheels"
MIRROR = os.environ.get("FER_ARM64_MIRROR", "http://deb.debian.org/debian")
CHROOT_ENV = ["/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              "HOME=/root", "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"]
# pip's --platform takes exact tags: ai-edge-litert's aarch64 wheels are manylinux_2_27, tflite-runtime's 2_34
PLATFORMS = ["manylinux_2_36_aarch64", "manylinux_2_34_aarch64", "manylinux_2_28_aarch64", "manylinux_2_27_aarch64",
             "manylinux_2_17_aarch64", "manylinux2014_aarch64"]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not REQUIRED and os.environ.get("FER_ARM64") != "1",
    reason="arm64 emulation takes minutes: run `make test-arm64` (or set FER_ARM64=1)")]


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (binfmt_misc, debootstrap, chroot)"
    missing = [t for t in ("debootstrap", "chroot", "update-binfmts", "mount") if not shutil.which(t)]
    if not (Path("/usr/libexec/qemu-binfmt/aarch64-binfmt-P").exists() or shutil.which("qemu-aarch64-static")):
        missing.append("qemu-user-static")
    if missing:
        return f"missing {', '.join(missing)} (apt install qemu-user-static binfmt-support debootstrap)"
    return None


def _enable_binfmt() -> None:
    misc = Path("/proc/sys/fs/binfmt_misc")
    if not (misc / "register").exists():
        sh("mount", "-t", "binfmt_misc", "binfmt_misc", str(misc))
    sh("update-binfmts", "--enable", "qemu-aarch64")
    entry = misc / "qemu-aarch64"
    assert entry.exists() and "enabled" in entry.read_text(), "qemu-aarch64 binfmt handler is not enabled"


class _Mounted:
    """/proc inside the chroot for the duration of a block (apt and pip want it)."""

    def __init__(self, root: Path) -> None:
        self.proc = root / "proc"

    def __enter__(self) -> "_Mounted":
        if not os.path.ismount(self.proc):
            sh("mount", "-t", "proc", "proc", str(self.proc))
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["umount", "-l", str(self.proc)], capture_output=True)


def _chroot(root: Path, *argv: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return sh("chroot", str(root), *CHROOT_ENV, *argv, timeout=timeout)


def _build_root() -> None:
    """debootstrap an arm64 Bookworm root with numpy, venv, pip and opencv (about 2 minutes + apt, once)."""
    tmp = ROOTFS.with_name(ROOTFS.name + ".tmp")
    if tmp.exists():
        subprocess.run(["umount", "-l", str(tmp / "proc")], capture_output=True)
        shutil.rmtree(tmp)
    sh("debootstrap", "--arch=arm64", "--variant=minbase",
        "--include=python3,python3-numpy,python3-venv,python3-pip", "bookworm", str(tmp), MIRROR, timeout=3600)
    shutil.copyfile("/etc/resolv.conf", tmp / "etc" / "resolv.conf")
    with _Mounted(tmp):
        _chroot(tmp, "apt-get", "update", "-qq", timeout=3600)
        _chroot(tmp, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "python3-opencv", timeout=3600)
        _chroot(tmp, "apt-get", "clean")
    (tmp / ".fer-edge-ready").write_text("debootstrap bookworm arm64 + python3-opencv\n")
    if ROOTFS.exists():
        shutil.rmtree(ROOTFS)
    tmp.rename(ROOTFS)


def _fetch_wheels() -> None:
    WHEELS.mkdir(parents=True, exist_ok=True)
    for spec, pattern in (("tflite-runtime==2.14.0", "tflite_runtime-2.14.0-cp311-*aarch64.whl"),
                          ("ai-edge-litert", "ai_edge_litert-*-cp311-*aarch64.whl")):
        if list(WHEELS.glob(pattern)):
            continue
        platforms = [arg for tag in PLATFORMS for arg in ("--platform", tag)]
        sh(sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
            "3.11", *platforms, "-d", str(WHEELS), spec, timeout=1200)


@pytest.fixture(scope="module")
def arm64_root() -> Path:
    reason = _unavailable()
    if reason:
        if REQUIRED:
            pytest.fail(f"FER_REQUIRE_ARM64=1 but {reason}")
        pytest.skip(reason)
    CACHE.mkdir(parents=True, exist_ok=True)
    _enable_binfmt()
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs never build the cache at once
        if not (ROOTFS / ".fer-edge-ready").exists():
            _build_root()
        _fetch_wheels()
    return ROOTFS


def test_bundle_installs_and_daemon_runs_on_arm64_bookworm(arm64_root: Path, tmp_path: Path) -> None:
    root = arm64_root
    inside = Path("/tmp/fer-edge-arm64-test")
    work = root / inside.relative_to("/")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        tarball = build(tmp_path)
        with tarfile.open(tarball) as tar:
            tar.extractall(work, filter="data")
            top = tar.getnames()[0].split("/")[0]
        shutil.copytree(WHEELS, work / "wheels")
        with _Mounted(root):
            machine = _chroot(root, "python3", "-c", "import platform, sys, numpy, cv2; "
                              "print(platform.machine(), '%d.%d' % sys.version_info[:2], numpy.__version__, "
                              "cv2.__version__)").stdout.split()
            assert machine[0] == "aarch64" and machine[1] == "3.11", machine
            apt_numpy = machine[2]
            assert apt_numpy.startswith("1.24"), machine
            prefix = inside / "prefix"
            result = _chroot(root, "/bin/bash", f"{inside}/{top}/install.sh", "--prefix", str(prefix),
                             "--no-systemd", "--no-apt", "--wheels", f"{inside}/wheels", timeout=3600)
            out = result.stdout
            assert "offline: pip uses only the bundled wheels" in out, out
            assert f"numpy: {apt_numpy}" in out and f"with numpy {apt_numpy}" in out, out  # apt's numpy kept
            assert "runtime: installing tflite-runtime" in out and "opencv: 4.6" in out, out
            assert (work / "prefix" / "current" / "runtime").read_text().strip() == "tflite_runtime"
            events = prefix / "var/lib/fer-edge/events.jsonl"
            run = _chroot(root, f"{prefix}/venv/bin/fer-edge", "run", "--config", f"{prefix}/etc/edge.toml",
                          "--source", f"{prefix}/demo/demo_clip.mp4", "--max-frames", "20", "--set", "http.port=0",
                          timeout=1800)
            assert "summary: 20 frames," in run.stdout, run.stdout + run.stderr
            assert "tflite_runtime" in run.stderr + run.stdout
            lines = (root / events.relative_to("/")).read_text().splitlines()
            assert lines and '"label"' in lines[0]
            numpy_after = _chroot(root, f"{prefix}/venv/bin/python", "-c",
                                  "import numpy; print(numpy.__version__, numpy.__file__)").stdout.split()
            assert numpy_after[0] == apt_numpy and numpy_after[1].startswith("/usr/lib/python3/dist-packages")
    finally:
        shutil.rmtree(work, ignore_errors=True)
