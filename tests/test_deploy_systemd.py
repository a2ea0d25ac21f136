"""install.sh's systemd path for real: a Debian Bookworm container booted with systemd as PID 1.

``make test-systemd`` (CI) runs this with FER_REQUIRE_SYSTEMD=1. It needs root and Debian's
systemd-container (``systemd-nspawn``) and debootstrap. The container root (debootstrap minbase +
systemd, dbus, python3, python3-venv) and the wheels install.sh installs offline (numpy,
opencv-python-headless, ai-edge-litert, fetched on the host with ``pip download``) are cached in
FER_SYSTEMD_CACHE (default /var/cache/fer-edge-systemd). Each run boots a fresh copy of that root
with a private network, so the installer runs as on a Pi given pre-fetched wheels: it creates the
service user in the video group, installs, enables and starts the unit (``Type=notify``: active
means the daemon said READY), and the tests then check what a user relies on: events written by
that user, /healthz, reload, a reboot, an in-place upgrade that keeps the config and events, a
release that fails to start rolled back, and an uninstall that leaves nothing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.deploy_helpers import build, sh

REQUIRED = os.environ.get("FER_REQUIRE_SYSTEMD") == "1"
CACHE = Path(os.environ.get("FER_SYSTEMD_CACHE", "/var/cache/fer-edge-systemd"))
ROOTFS = CACHE / "bookworm-root"
WHEELS = CACHE / "wheels"
MIRROR = os.environ.get("FER_SYSTEMD_MIRROR", "http://deb.debian.org/debian")
PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,python3-pip,ca-certificates,procps"
WHEEL_SPECS = ["numpy", "opencv-python-headless>=4.8,<5", "ai-edge-litert"]
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# the user's own config: the demo clip at its own frame rate stands in for the camera, and it names
# the float32 artifact, which the second bundle below does not ship
USER_CONFIG = """\
[model]
manifest = "/opt/fer-edge/models/manifest.json"
artifact = "float32"

[source]
uri = "/opt/fer-edge/demo/demo_clip.mp4"
loop = true
realtime = true

[detector]
cascade = "/opt/fer-edge/models/haarcascade_frontalface_default.xml"

[events]
path = "/var/lib/fer-edge/events.jsonl"

[http]
enabled = true
port = 8321
"""

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not REQUIRED and os.environ.get("FER_SYSTEMD") != "1",
    reason="booting a systemd container takes minutes: run `make test-systemd` (or set FER_SYSTEMD=1)")]


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (systemd-nspawn, debootstrap)"
    missing = [tool for tool in ("systemd-nspawn", "debootstrap", "nsenter") if not shutil.which(tool)]
    if missing:
        return f"missing {', '.join(missing)} (apt install systemd-container debootstrap)"
    return None


def _prepare_cache() -> None:
    """Build the container root and fetch the wheels once; later runs reuse them."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (ROOTFS / ".complete").exists():
            shutil.rmtree(ROOTFS, ignore_errors=True)
            sh("debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(ROOTFS), MIRROR,
                timeout=3600)
            (ROOTFS / ".complete").write_text("debootstrap minbase bookworm + " + PACKAGES + "\n")
        if not (WHEELS / ".complete").exists():
            shutil.rmtree(WHEELS, ignore_errors=True)
            # the container's Python is Debian's 3.11 on this architecture, as the host's
            sh(sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", "3.11",
                "--dest", str(WHEELS), *WHEEL_SPECS, timeout=1800)
            (WHEELS / ".complete").write_text("\n".join(WHEEL_SPECS) + "\n")


class Container:
    """A booted copy of the cached root; ``run`` executes inside it, as root, like ssh would."""

    def __init__(self, root: Path, binds: dict[Path, str]) -> None:
        self.root = root
        self.binds = binds
        self.name = f"fer-edge-test-{os.getpid()}"
        self.process: subprocess.Popen | None = None
        self.leader = 0

    def boot(self, timeout: float = 120) -> None:
        argv = ["systemd-nspawn", "--boot", "--directory", str(self.root), "--machine", self.name,
                "--register=no", "--keep-unit", "--private-network", "--console=passive", "--quiet"]
        argv += [f"--bind-ro={host}:{inside}" for host, inside in self.binds.items()]
        self.log = (self.root.parent / "nspawn.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"systemd-nspawn exited ({self.process.returncode}): "
                                     f"{(self.root.parent / 'nspawn.log').read_text()[-2000:]}")
            children = sh("pgrep", "-P", str(self.process.pid), check=False).stdout.split()
            if children:
                self.leader = int(children[0])
                state = self.run("systemctl is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(1)
        raise AssertionError("the container did not finish booting")

    def run(self, script: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        assert self.leader, "container not booted"
        return sh("nsenter", "--target", str(self.leader), "--mount", "--uts", "--ipc", "--net", "--pid",
                   "--root", "--wd", "--", "/usr/bin/env", "-i", PATH, "HOME=/root", "LC_ALL=C.UTF-8",
                   "/bin/bash", "-c", script, check=check, timeout=timeout)

    def shutdown(self, timeout: float = 60) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to power off
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.log.close()
        self.leader = 0


@pytest.fixture(scope="module")
def box() -> Container:
    reason = _unavailable()
    if reason:
        if REQUIRED:
            pytest.fail(f"make test-systemd: {reason}")
        pytest.skip(reason)
    _prepare_cache()
    work = Path(tempfile.mkdtemp(prefix="fer-edge-systemd-"))
    try:
        # bundle A ships int8 and float32 (the user's config picks float32); bundle B only int8
        bundles = work / "bundles"
        a = build(bundles / "a", "--artifact", "int8", "--artifact", "float32")
        b = build(bundles / "b")
        for name, tarball in (("a", a), ("b", b)):
            shutil.copyfile(tarball, bundles / f"{name}.tar.gz")  # a symlink would point outside the container
        (bundles / "edge.toml").write_text(USER_CONFIG)
        (bundles / "broken.toml").write_text(USER_CONFIG.replace('artifact = "float32"', 'artifact = "float16"'))
        root = work / "root"
        sh("cp", "-a", "--reflink=auto", str(ROOTFS), str(root))
        container = Container(root, {bundles: "/srv/bundles", WHEELS: "/srv/wheels"})
        container.boot()
        for name in ("a", "b"):
            container.run(f"mkdir -p /root/{name} && tar -xzf /srv/bundles/{name}.tar.gz -C /root/{name} "
                          f"&& mv /root/{name}/*/* /root/{name}/")
        yield container
        container.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _wait(box: Container, script: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while True:
        result = box.run(script, check=False)
        if result.returncode == 0:
            return result.stdout.strip()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {script}\n{result.stdout[-1500:]}{result.stderr[-1500:]}\n"
                                 + box.run("journalctl -u fer-edge -n 30 --no-pager", check=False).stdout)
        time.sleep(2)


def _events(box: Container) -> int:
    return int(box.run("wc -l < /var/lib/fer-edge/events.jsonl").stdout.strip() or 0)


INSTALL = "bash /root/{name}/install.sh --no-apt --wheels /srv/wheels"


@pytest.fixture(scope="module")
def installed(box: Container) -> subprocess.CompletedProcess:
    return box.run(INSTALL.format(name="a") + " --config /srv/bundles/edge.toml", check=False)


def test_install_creates_the_user_and_enables_and_starts_the_unit(box: Container, installed) -> None:
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    assert "user: created system user fer-edge" in installed.stdout
    assert "service fer-edge: active (enabled)" in installed.stdout
    assert box.run("systemctl is-enabled fer-edge").stdout.strip() == "enabled"
    assert "video" in box.run("id -nG fer-edge").stdout.split()
    assert box.run("getent passwd fer-edge | cut -d: -f7").stdout.strip().endswith("nologin")
    unit = box.run("cat /etc/systemd/system/fer-edge.service").stdout
    assert "ExecStart=/opt/fer-edge/venv/bin/fer-edge run --config /etc/fer-edge/edge.toml" in unit
    # the user's config was installed, readable by the service user only
    assert box.run("stat -c '%U:%G %a' /etc/fer-edge/edge.toml").stdout.strip() == "root:fer-edge 640"
    assert 'artifact = "float32"' in box.run("cat /etc/fer-edge/edge.toml").stdout


def test_the_service_runs_as_its_user_writes_events_and_answers_healthz(box: Container, installed) -> None:
    pid = box.run("systemctl show -p MainPID --value fer-edge").stdout.strip()
    assert pid != "0"
    assert box.run(f"ps -o user= -p {pid}").stdout.strip() == "fer-edge"
    _wait(box, "test $(wc -l < /var/lib/fer-edge/events.jsonl) -ge 3")
    assert box.run("stat -c %U /var/lib/fer-edge/events.jsonl").stdout.strip() == "fer-edge"
    health = _wait(box, "python3 -c \"import urllib.request as u; "
                        "print(u.urlopen('http://127.0.0.1:8321/healthz', timeout=5).read().decode())\"")
    assert '"status": "ok"' in health.replace('":"', '": "'), health
    latest = box.run("python3 -c \"import urllib.request as u; "
                     "print(u.urlopen('http://127.0.0.1:8321/latest', timeout=5).read().decode())\"").stdout
    assert "faces" in latest, latest


def test_reload_keeps_the_process_and_a_reboot_brings_the_service_back(box: Container, installed) -> None:
    pid = box.run("systemctl show -p MainPID --value fer-edge").stdout.strip()
    box.run("systemctl reload fer-edge")
    time.sleep(3)
    assert box.run("systemctl is-active fer-edge").stdout.strip() == "active"
    assert box.run("systemctl show -p MainPID --value fer-edge").stdout.strip() == pid
    before = _events(box)
    box.shutdown()
    box.boot()
    _wait(box, "systemctl is-active fer-edge")
    _wait(box, f"test $(wc -l < /var/lib/fer-edge/events.jsonl) -gt {before}")


def test_second_run_upgrades_in_place_keeping_config_and_events(box: Container, installed) -> None:
    release = box.run("readlink /opt/fer-edge/current").stdout.strip()
    config = box.run("cat /etc/fer-edge/edge.toml").stdout
    before = _events(box)
    time.sleep(1)  # release names carry the second
    upgrade = box.run(INSTALL.format(name="a"), check=False)
    assert upgrade.returncode == 0, upgrade.stdout[-3000:] + upgrade.stderr[-3000:]
    assert "user: created" not in upgrade.stdout
    assert box.run("readlink /opt/fer-edge/current").stdout.strip() != release
    assert box.run("cat /etc/fer-edge/edge.toml").stdout == config
    assert _events(box) >= before
    assert box.run("systemctl is-active fer-edge").stdout.strip() == "active"
    _wait(box, f"test $(wc -l < /var/lib/fer-edge/events.jsonl) -gt {before}")


def test_a_release_that_does_not_start_is_rolled_back(box: Container, installed) -> None:
    release = box.run("readlink /opt/fer-edge/current").stdout.strip()
    releases = set(box.run("ls /opt/fer-edge/releases").stdout.split())
    time.sleep(1)
    # bundle B has no float32 artifact, which the user's config names: the daemon exits 2
    failed = box.run(INSTALL.format(name="b"), check=False)
    assert failed.returncode == 2, failed.stdout[-3000:] + failed.stderr[-3000:]
    err = failed.stderr.strip().splitlines()
    assert any("did not start with release" in line and "rolled back to" in line for line in err), err
    assert box.run("readlink /opt/fer-edge/current").stdout.strip() == release
    assert set(box.run("ls /opt/fer-edge/releases").stdout.split()) == releases  # the failed one is gone
    _wait(box, "systemctl is-active fer-edge")
    assert 'artifact = "float32"' in box.run("cat /etc/fer-edge/edge.toml").stdout


def test_a_new_config_that_does_not_start_is_rolled_back_with_the_release(box: Container, installed) -> None:
    """Upgrading with --config: if the service does not start, the previous release comes back with
    the config it ran with (the rejected one is kept beside it), so the camera keeps working."""
    release = box.run("readlink /opt/fer-edge/current").stdout.strip()
    config = box.run("cat /etc/fer-edge/edge.toml").stdout
    time.sleep(1)
    failed = box.run(INSTALL.format(name="a") + " --config /srv/bundles/broken.toml", check=False)
    assert failed.returncode == 2, failed.stdout[-3000:] + failed.stderr[-3000:]
    assert "and to the previous config" in failed.stderr
    assert box.run("readlink /opt/fer-edge/current").stdout.strip() == release
    assert box.run("cat /etc/fer-edge/edge.toml").stdout == config
    assert 'artifact = "float16"' in box.run("cat /etc/fer-edge/edge.toml.rejected-*").stdout
    _wait(box, "systemctl is-active fer-edge")


def test_a_config_that_cannot_run_fails_the_unit_once_instead_of_restarting(box: Container, installed) -> None:
    """Exit 2 means a bad config or model, which restarting cannot fix: the unit says failed at once,
    with the reason in the journal, instead of retrying until systemd's start limit. (systemd's
    RestartPreventExitStatus covers the main process only, not an ExecStartPre check.)"""
    box.run("cp /etc/fer-edge/edge.toml /root/edge.toml.good")
    box.run("sed -i 's/artifact = \"float32\"/artifact = \"float16\"/' /etc/fer-edge/edge.toml")
    try:
        assert box.run("systemctl restart fer-edge", check=False).returncode != 0
        time.sleep(14)  # RestartSec=5: two restarts would have happened by now
        assert box.run("systemctl show -p NRestarts --value fer-edge").stdout.strip() == "0"
        assert box.run("systemctl is-active fer-edge", check=False).stdout.strip() == "failed"
        journal = box.run("journalctl -u fer-edge -n 20 --no-pager -o cat").stdout
        assert "float16" in journal, journal
    finally:
        box.run("cp /root/edge.toml.good /etc/fer-edge/edge.toml && systemctl reset-failed fer-edge "
                "&& systemctl restart fer-edge", check=False)
    _wait(box, "systemctl is-active fer-edge")


def test_uninstall_removes_the_service_user_and_files(box: Container, installed) -> None:
    result = box.run("bash /opt/fer-edge/current/install.sh --uninstall", check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert box.run("systemctl is-active fer-edge", check=False).stdout.strip() != "active"
    assert box.run("test -e /etc/systemd/system/fer-edge.service", check=False).returncode == 1
    assert box.run("id fer-edge", check=False).returncode != 0
    for path in ("/opt/fer-edge", "/etc/fer-edge", "/var/lib/fer-edge"):
        assert box.run(f"test -e {path}", check=False).returncode == 1, path
    assert "fer-edge" not in box.run("systemctl list-unit-files --no-pager").stdout
