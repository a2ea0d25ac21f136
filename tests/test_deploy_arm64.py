"""The bundle installs and the daemon runs on the Pi's architecture and software: arm64 Debian under qemu.

``make test-arm64`` (CI) runs this with FER_REQUIRE_ARM64=1. It needs root, overlayfs and Debian's
qemu-user-static, binfmt-support and debootstrap. Two releases, as Raspberry Pi OS ships them, each
installed the way its cards are usually set up:

- **Bookworm** (Debian 12: Python 3.11, apt's numpy 1.24, python3-opencv 4.6): install.sh run from
  the unpacked bundle with pre-fetched wheels (as ``fer-edge deploy`` runs it); it keeps apt's numpy
  and picks tflite-runtime 2.14.
- **Trixie** (Debian 13, Raspberry Pi OS since late 2025: Python 3.13, apt's numpy 2, python3-opencv
  4.10): a first boot through cloud-init, which Trixie images use (``user-data`` on the boot
  partition): ``fer-edge flash-prepare`` on a boot partition at /boot/firmware, then the runcmd
  script cloud-init writes from that user-data runs firstboot.sh, which runs install.sh offline with
  the wheels carried in the bundle. tflite-runtime 2.14 does not import with numpy 2, so install.sh
  must pick LiteRT (ai-edge-litert).

Then the installed daemon runs on the demo clip and ``fer-edge detect`` on a frame it saw a face in.
Each root (debootstrap minbase + python3, numpy, venv, pip, then python3-opencv from apt) and its
aarch64 wheels (fetched on the host with ``pip download``) are cached in FER_ARM64_CACHE (default
/var/cache/fer-edge-arm64); missing roots are built in parallel, and a root is rebuilt when its
recipe changes. Tests never change a cached root: each runs in an overlay of it. Timings under
emulation mean nothing; only correctness is checked.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tarfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.deploy_helpers import build, cli, sh

REQUIRED = os.environ.get("FER_REQUIRE_ARM64") == "1"
CACHE = Path(os.environ.get("FER_ARM64_CACHE", "/var/cache/fer-edge-arm64"))
MIRROR = os.environ.get("FER_ARM64_MIRROR", "http://deb.debian.org/debian")
CHROOT_ENV = ["/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              "HOME=/root", "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"]
# pip's --platform takes exact tags: ai-edge-litert's aarch64 wheels are manylinux_2_27, tflite-runtime's 2_34
PLATFORMS = ["manylinux_2_36_aarch64", "manylinux_2_34_aarch64", "manylinux_2_28_aarch64", "manylinux_2_27_aarch64",
             "manylinux_2_17_aarch64", "manylinux2014_aarch64"]
# `fer-edge detect` names the installed config until the installed CLI finds it by itself (issue 52);
# then this becomes () and the test proves that a bare `fer-edge detect FRAME` works.
DETECT_FLAGS: tuple[str, ...] = ()  # the installed CLI finds its installed config by itself


@dataclass(frozen=True)
class Release:
    suite: str
    python: str  # Debian's python3, MAJOR.MINOR
    numpy: str  # the start of apt's numpy version
    opencv: str  # the start of apt's python3-opencv version
    runtime: str  # what install.sh must pick: its pip name and the module the daemon reports
    module: str
    apt: tuple[str, ...]  # installed after debootstrap, --no-install-recommends
    wheels: tuple[str, ...]  # fetched alone (--no-deps)
    wheels_with_deps: tuple[str, ...] = ()  # fetched with their dependencies, except numpy (apt's stays)
    setup: str = "install.sh"  # how the test installs: install.sh directly, or a first boot through cloud-init

    @property
    def root(self) -> Path:
        return CACHE / f"{self.suite}-root"

    @property
    def wheel_dir(self) -> Path:
        return CACHE / f"wheels-{self.suite}"

    @property
    def recipe(self) -> str:
        """Written into the finished root; a root built from another recipe is rebuilt."""
        return f"debootstrap {self.suite} arm64 + {' '.join(self.apt)}\n"


BOOKWORM = Release("bookworm", "3.11", "1.24", "4.6", "tflite-runtime", "tflite_runtime", apt=("python3-opencv",),
                   wheels=("tflite-runtime==2.14.0", "ai-edge-litert"))
# python3-yaml: cloud-init's (a Trixie image has it) to read user-data as cloud-init does
TRIXIE = Release("trixie", "3.13", "2.", "4.10", "ai-edge-litert", "ai_edge_litert",
                 apt=("python3-opencv", "python3-yaml"), wheels=(), wheels_with_deps=("ai-edge-litert",),
                 setup="cloud-init")
RELEASES = (BOOKWORM, TRIXIE)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not REQUIRED and os.environ.get("FER_ARM64") != "1",
    reason="arm64 emulation takes minutes: run `make test-arm64` (or set FER_ARM64=1)")]


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (binfmt_misc, debootstrap, chroot, overlayfs)"
    missing = [t for t in ("debootstrap", "chroot", "update-binfmts", "mount") if not shutil.which(t)]
    if not (Path("/usr/libexec/qemu-binfmt/aarch64-binfmt-P").exists() or shutil.which("qemu-aarch64-static")):
        missing.append("qemu-user-static")
    if missing:
        return f"missing {', '.join(missing)} (apt install qemu-user-static binfmt-support debootstrap)"
    if "overlay" not in Path("/proc/filesystems").read_text():
        subprocess.run(["modprobe", "overlay"], capture_output=True)
        if "overlay" not in Path("/proc/filesystems").read_text():
            return "the kernel has no overlayfs (modprobe overlay)"
    return None


def _enable_binfmt() -> None:
    misc = Path("/proc/sys/fs/binfmt_misc")
    if not (misc / "register").exists():
        sh("mount", "-t", "binfmt_misc", "binfmt_misc", str(misc))
    sh("update-binfmts", "--enable", "qemu-aarch64")
    entry = misc / "qemu-aarch64"
    assert entry.exists() and "enabled" in entry.read_text(), "qemu-aarch64 binfmt handler is not enabled"


def _chroot(root: Path, *argv: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return sh("chroot", str(root), *CHROOT_ENV, *argv, timeout=timeout)


class _Proc:
    """/proc inside a root for the duration of a block (apt and pip want it)."""

    def __init__(self, root: Path) -> None:
        self.proc = root / "proc"

    def __enter__(self) -> "_Proc":
        if not os.path.ismount(self.proc):
            sh("mount", "-t", "proc", "proc", str(self.proc))
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["umount", "-l", str(self.proc)], capture_output=True)


class _Overlay:
    """A writable view of a cached root (overlayfs, changes in ``work``) with /proc: tests never change the cache.

    No /sys: LiteRT then says it cannot parse the CPU list and runs; with the host's /sys it crashes under qemu."""

    def __init__(self, lower: Path, work: Path) -> None:
        self.lower, self.upper, self.scratch, self.root = lower, work / "upper", work / "ovl-work", work / "root"

    def __enter__(self) -> Path:
        for path in (self.upper, self.scratch, self.root):
            path.mkdir(parents=True)
        sh("mount", "-t", "overlay", "overlay", "-o",
           f"lowerdir={self.lower},upperdir={self.upper},workdir={self.scratch}", str(self.root))
        self.proc = _Proc(self.root).__enter__()
        return self.root

    def __exit__(self, *exc: object) -> None:
        self.proc.__exit__()
        subprocess.run(["umount", "-l", str(self.root)], capture_output=True)
        shutil.rmtree(self.upper, ignore_errors=True)  # root-owned files pytest's tmp_path cleanup may not remove


def _build_root(release: Release) -> None:
    """debootstrap an arm64 root with numpy, venv, pip and opencv (a few minutes + apt under qemu, once)."""
    tmp = release.root.with_name(release.root.name + ".tmp")
    if tmp.exists():
        subprocess.run(["umount", "-l", str(tmp / "proc")], capture_output=True)
        shutil.rmtree(tmp)
    sh("debootstrap", "--arch=arm64", "--variant=minbase", "--include=python3,python3-numpy,python3-venv,python3-pip",
       release.suite, str(tmp), MIRROR, timeout=3600)
    shutil.copyfile("/etc/resolv.conf", tmp / "etc" / "resolv.conf")
    with _Proc(tmp):
        _chroot(tmp, "apt-get", "update", "-qq", timeout=3600)
        _chroot(tmp, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *release.apt, timeout=3600)
        _chroot(tmp, "apt-get", "clean")
    (tmp / ".fer-edge-ready").write_text(release.recipe)
    if release.root.exists():
        shutil.rmtree(release.root)
    tmp.rename(release.root)


def _fetch_wheels(release: Release) -> None:
    """The aarch64 wheels for this root's Python, fetched on the host (pip on the host resolves for the target)."""
    wanted = f"{release.python} {' '.join(release.wheels)} | {' '.join(release.wheels_with_deps)}\n"
    marker = release.wheel_dir / ".fetched"
    if marker.is_file() and marker.read_text() == wanted:
        return
    tmp = release.wheel_dir.with_name(release.wheel_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    base = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", release.python,
            *[arg for tag in PLATFORMS for arg in ("--platform", tag)], "-d", str(tmp)]
    if release.wheels:
        sh(*base, "--no-deps", *release.wheels, timeout=1200)
    if release.wheels_with_deps:
        # resolve against apt's numpy, then drop numpy itself: install.sh keeps apt's
        numpy = _chroot(release.root, "python3", "-c", "import numpy; print(numpy.__version__)").stdout.strip()
        (tmp / "constraints.txt").write_text(f"numpy=={numpy}\n")
        sh(*base, "-c", str(tmp / "constraints.txt"), *release.wheels_with_deps, timeout=1200)
        for path in [tmp / "constraints.txt", *tmp.glob("numpy-*.whl")]:
            path.unlink()
    (tmp / ".fetched").write_text(wanted)
    shutil.rmtree(release.wheel_dir, ignore_errors=True)
    tmp.rename(release.wheel_dir)


def _ensure(release: Release) -> Path:
    with open(CACHE / f".{release.suite}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs never build the same root at once
        ready = release.root / ".fer-edge-ready"
        if not (ready.is_file() and ready.read_text() == release.recipe):
            _build_root(release)
        _fetch_wheels(release)
    return release.root


@pytest.fixture(scope="module")
def _builds(request: pytest.FixtureRequest) -> Iterator[dict[str, Future]]:
    """Every root the selected tests need, built side by side (each mostly waits on emulation and the mirror)."""
    reason = _unavailable()
    if reason:
        if REQUIRED:
            pytest.fail(f"FER_REQUIRE_ARM64=1 but {reason}")
        pytest.skip(reason)
    CACHE.mkdir(parents=True, exist_ok=True)
    _enable_binfmt()
    wanted: dict[str, Release] = {}
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.module is request.module and isinstance(params.get("release"), Release):
            wanted.setdefault(params["release"].suite, params["release"])
    with ThreadPoolExecutor(max_workers=max(1, len(wanted))) as pool:
        yield {suite: pool.submit(_ensure, release) for suite, release in wanted.items()}


@pytest.fixture
def arm64_root(release: Release, _builds: dict[str, Future]) -> Path:
    return _builds[release.suite].result()


def _bundle_in(root: Path, tarball: Path, inside: Path) -> Path:
    """Unpack the bundle at ``inside`` (a path as the chroot sees it); its install.sh, as the chroot sees it."""
    work = root / inside.relative_to("/")
    work.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(work, filter="data")
        top = tar.getnames()[0].split("/")[0]
    return inside / top / "install.sh"


def _daemon_and_detect(root: Path, prefix: Path, release: Release, frames: int = 20) -> None:
    """The installed daemon on the installed demo clip, then ``fer-edge detect`` on a frame it saw a face in."""
    events = root / prefix.relative_to("/") / "var/lib/fer-edge/events.jsonl"
    run = _chroot(root, f"{prefix}/venv/bin/fer-edge", "run", "--config", f"{prefix}/etc/edge.toml",
                  "--source", f"{prefix}/demo/demo_clip.mp4", "--max-frames", str(frames), "--set", "http.port=0")
    assert f"summary: {frames} frames," in run.stdout, run.stdout + run.stderr
    assert release.module in run.stderr + run.stdout
    seen = [json.loads(line) for line in events.read_text().splitlines()]
    with_faces = [event for event in seen if event["faces"]]
    assert with_faces and with_faces[0]["faces"][0]["label"], seen[:3]
    frame = with_faces[0]["frame"]
    _chroot(root, f"{prefix}/venv/bin/python", "-c",
            "import cv2, sys\ncap = cv2.VideoCapture(sys.argv[1])\nfor _ in range(int(sys.argv[2]) + 1):\n"
            "    ok, image = cap.read()\n    assert ok, 'clip ended early'\nassert cv2.imwrite(sys.argv[3], image)",
            f"{prefix}/demo/demo_clip.mp4", str(frame), "/tmp/frame.jpg")
    flags = [flag.format(prefix=prefix) for flag in DETECT_FLAGS]
    detect = _chroot(root, f"{prefix}/venv/bin/fer-edge", "detect", *flags, "/tmp/frame.jpg")
    result = json.loads(detect.stdout.strip().splitlines()[-1])
    assert result["image"] == "/tmp/frame.jpg" and result["faces"], detect.stdout + detect.stderr
    assert result["faces"][0]["label"] in result["faces"][0]["probs"], result
    # BlazeFace, shipped inside the installed wheel, runs on the same runtime: the daemon and detect
    blaze = _chroot(root, f"{prefix}/venv/bin/fer-edge", "run", "--config", f"{prefix}/etc/edge.toml", "--source",
                    f"{prefix}/demo/demo_clip.mp4", "--max-frames", "10", "--set", "http.port=0",
                    "--set", "detector.kind=blazeface", "--set", f"events.path=/tmp/blazeface-events.jsonl")
    assert "summary: 10 frames," in blaze.stdout and "detector blazeface" in blaze.stderr, blaze.stdout + blaze.stderr
    detect = _chroot(root, f"{prefix}/venv/bin/fer-edge", "detect", *flags, "--set", "detector.kind=blazeface",
                     "/tmp/frame.jpg")
    assert json.loads(detect.stdout.strip().splitlines()[-1])["faces"], detect.stdout + detect.stderr


def _install_directly(root: Path, release: Release, tmp_path: Path) -> tuple[Path, str]:
    """install.sh from the unpacked bundle with pre-fetched wheels, as `fer-edge deploy` runs it over SSH."""
    inside = Path("/tmp/fer-edge-arm64-test")
    installer = _bundle_in(root, build(tmp_path / "bundle"), inside)
    shutil.copytree(release.wheel_dir, root / inside.relative_to("/") / "wheels")
    prefix = inside / "prefix"
    out = _chroot(root, "/bin/bash", str(installer), "--prefix", str(prefix), "--no-systemd", "--no-apt",
                  "--wheels", f"{inside}/wheels", timeout=3600).stdout
    return prefix, out


CLOUD_USER_DATA = """#cloud-config
hostname: camera-pi
users:
  - name: pi
    groups: users,adm,video,render,sudo
    shell: /bin/bash
runcmd:
  - [systemctl, enable, ssh]
"""
# what cloud-init's runcmd module does with user-data: cloudinit.util.shellify writes the list as a
# /bin/sh script (each word of a list item in single quotes, a string item as written); scripts_user
# then runs it once per instance, as root, with the network up
RUNCMD = r"""
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
assert isinstance(config.get("runcmd"), list), "user-data has no runcmd list"
lines = ["#!/bin/sh"]
for item in config["runcmd"]:
    words = ("'%s'" % str(word).replace("'", "'\\''") for word in item) if isinstance(item, list) else None
    lines.append(" ".join(words) if words is not None else item)
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
"""


def _install_by_first_boot(root: Path, release: Release, tmp_path: Path) -> tuple[Path, str]:
    """A freshly flashed card: flash-prepare on its boot partition (user-data there), then cloud-init's runcmd."""
    tarball = build(tmp_path / "bundle", "--wheels", str(release.wheel_dir))  # offline: the wheels ride along
    boot = root / "boot/firmware"  # where Trixie mounts the boot partition
    boot.mkdir(parents=True, exist_ok=True)
    cmdline = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 rootwait\n"
    (boot / "cmdline.txt").write_text(cmdline)
    (boot / "config.txt").write_text("camera_auto_detect=1\narm_64bit=1\n")
    (boot / "user-data").write_text(CLOUD_USER_DATA)
    (boot / "meta-data").write_text("instance-id: rpi-imager-1\n")
    prefix = Path("/opt/fer-edge")
    prepared = cli("flash-prepare", str(boot), "--bundle", str(tarball),
                   f"--install-args=--prefix {prefix} --no-systemd --no-apt")
    assert prepared.returncode == 0, prepared.stderr
    assert "user-data: added a runcmd entry" in prepared.stdout  # auto mode saw user-data: cloud-init
    assert (boot / "cmdline.txt").read_text() == cmdline and not (boot / "firstrun.sh").exists()
    (root / "tmp/runcmd.py").write_text(RUNCMD)
    _chroot(root, "python3", "/tmp/runcmd.py", "/boot/firmware/user-data", "/tmp/runcmd.sh")
    script = (root / "tmp/runcmd.sh").read_text()
    assert script.startswith("#!/bin/sh\n'systemctl' 'enable' 'ssh'\n'bash' '-c' 'for b in"), script
    # only the fer-edge line runs here (a chroot has no systemd); as under cloud-init: root, /bin/sh, no terminal
    fer_line = next(line for line in script.splitlines() if "fer-edge/firstboot.sh" in line)
    (root / "tmp/runcmd.sh").write_text(f"#!/bin/sh\n{fer_line}\n")
    first = _chroot(root, "/bin/sh", "/tmp/runcmd.sh", timeout=3600)
    assert "fer-edge firstboot: done" in first.stdout, first.stdout[-3000:] + first.stderr[-2000:]
    assert (root / "var/lib/fer-edge-firstboot.done").exists()
    assert not (root / "etc/systemd/system/fer-edge-firstboot.service").exists()  # no retry left behind
    log = (root / "var/log/fer-edge-firstboot.log").read_text()
    assert "install.sh: status: fer-edge" in log, log
    # were runcmd to run again (cloud-init runs it once per instance), nothing is reinstalled
    again = _chroot(root, "/bin/sh", "/tmp/runcmd.sh", timeout=600)
    assert "already done" in again.stdout
    return prefix, log


@pytest.mark.parametrize("release", RELEASES, ids=[r.suite for r in RELEASES])
def test_bundle_installs_and_daemon_runs_on_arm64(release: Release, arm64_root: Path, tmp_path: Path) -> None:
    """Each release installed as its cards usually are: Bookworm by install.sh, Trixie by a cloud-init first boot."""
    with _Overlay(arm64_root, tmp_path / "overlay") as root:
        machine = _chroot(root, "python3", "-c", "import platform, sys, numpy, cv2; print(platform.machine(), "
                          "'%d.%d' % sys.version_info[:2], numpy.__version__, cv2.__version__)").stdout.split()
        assert machine[0] == "aarch64" and machine[1] == release.python, machine
        apt_numpy = machine[2]
        assert apt_numpy.startswith(release.numpy) and machine[3].startswith(release.opencv), machine
        install = _install_by_first_boot if release.setup == "cloud-init" else _install_directly
        prefix, out = install(root, release, tmp_path)
        assert "offline: pip uses only the bundled wheels" in out, out
        assert f"numpy: {apt_numpy}" in out and f"with numpy {apt_numpy}" in out, out  # apt's numpy kept
        assert f"runtime: installing {release.runtime}" in out and f"opencv: {release.opencv}" in out, out
        assert (root / prefix.relative_to("/") / "current/runtime").read_text().strip() == release.module
        _daemon_and_detect(root, prefix, release)
        numpy_after = _chroot(root, f"{prefix}/venv/bin/python", "-c",
                              "import numpy; print(numpy.__version__, numpy.__file__)").stdout.split()
        assert numpy_after[0] == apt_numpy and numpy_after[1].startswith("/usr/lib/python3/dist-packages")
