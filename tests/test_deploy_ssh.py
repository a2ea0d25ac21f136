"""``fer-edge deploy`` against a real OpenSSH server on 127.0.0.1 (a throwaway sshd with its own keys).

The "Pi" is this machine: deploy copies the bundle over SSH and runs install.sh into a temporary
prefix (--no-systemd). Without sshd the tests skip, unless FER_REQUIRE_SSHD=1 (CI), which fails instead.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy_helpers import ROOT, build, cli, run_demo, system_python

SSHD = "/usr/sbin/sshd"
NO_HOST_CHECK = ["--ssh-option", "StrictHostKeyChecking=no", "--ssh-option", "UserKnownHostsFile=/dev/null",
                 "--ssh-option", "LogLevel=ERROR", "--ssh-option", "BatchMode=yes"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _need_sshd() -> None:
    missing = [tool for tool in ("ssh", "ssh-keygen") if not shutil.which(tool)] + \
        ([SSHD] if not os.access(SSHD, os.X_OK) else [])
    if missing:
        if os.environ.get("FER_REQUIRE_SSHD") == "1":
            pytest.fail(f"FER_REQUIRE_SSHD=1 but {', '.join(missing)} not found (apt install openssh-server)")
        pytest.skip(f"{', '.join(missing)} not found (apt install openssh-server)")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    _need_sshd()
    work = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / name)], check=True)
    (work / "authorized_keys").write_text((work / "client_key.pub").read_text())
    (work / "authorized_keys").chmod(0o600)
    port = _free_port()
    config = work / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {work / 'host_key'}", f"PidFile {work / 'sshd.pid'}",
        f"AuthorizedKeysFile {work / 'authorized_keys'}", "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no",
        "PrintMotd no", "LogLevel ERROR", ""]))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.fail(f"sshd rejects the test config: {check.stderr}")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=open(work / "sshd.log", "w"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"sshd exited: {(work / 'sshd.log').read_text()}")
            time.sleep(0.1)
    yield {"port": port, "key": work / "client_key", "user": getpass.getuser(), "work": work}
    process.terminate()
    process.wait(timeout=10)


def _ssh_args(sshd: dict) -> list[str]:
    return ["--port", str(sshd["port"]), "--identity", str(sshd["key"]), *NO_HOST_CHECK]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("bundle"))


def test_dry_run_prints_the_plan_and_touches_nothing(tmp_path: Path) -> None:
    result = cli("deploy", "pi@raspberrypi.local", "--port", "2222", "--dry-run", "--install-args=--with-mqtt",
                 "--ssh-option", "StrictHostKeyChecking=accept-new")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "would deploy to pi@raspberrypi.local:2222" in out
    assert "ssh -p 2222" in out and "StrictHostKeyChecking=accept-new" in out
    assert "mktemp -d /tmp/fer-edge-deploy.XXXXXX" in out and "cat > $d/bundle.tar.gz" in out
    assert "sudo -n ./fer-edge-VERSION-MODEL/install.sh --with-mqtt" in out  # not root: sudo (-n: no terminal to ask for a password)
    assert "rm -rf $d" in out


@pytest.mark.slow
def test_deploy_over_ssh_installs_and_reports_status(sshd: dict, bundle: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "pi"
    args = f"--prefix {prefix} --no-systemd --no-apt --python {system_python()}"
    result = cli("deploy", f"{sshd['user']}@127.0.0.1", *_ssh_args(sshd), "--bundle", str(bundle),
                 f"--install-args={args}", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"deployed to {sshd['user']}@127.0.0.1:{sshd['port']}: fer-edge ")
    assert f"at {prefix}" in last and "service: none (--no-systemd)" in last
    assert "127.0.0.1| install.sh: model check:" in result.stdout  # the installer's output, streamed
    assert not list(Path("/tmp").glob("fer-edge-deploy.*/bundle.tar.gz")), "remote temp folder left behind"
    summary, events = run_demo(prefix, frames=30)
    assert summary.startswith("summary: 30 frames,") and events


def test_deploy_to_a_host_that_refuses_is_one_clear_error(tmp_path: Path) -> None:
    _need_sshd()
    port = _free_port()  # nothing listens here
    result = cli("deploy", "pi@127.0.0.1", "--port", str(port), *NO_HOST_CHECK, "--bundle",
                 str(build(tmp_path)), timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith(f"fer-edge: error: cannot reach pi@127.0.0.1:{port} over ssh:")
    assert "Connection refused" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_deploy_with_a_key_the_host_does_not_accept_fails_before_copying(sshd: dict, bundle: Path,
                                                                         tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    result = cli("deploy", f"{sshd['user']}@127.0.0.1", "--port", str(sshd["port"]), "--identity", str(stranger),
                 *NO_HOST_CHECK, "--bundle", str(bundle), f"--install-args=--prefix {tmp_path / 'pi'}",
                 timeout=120)
    assert result.returncode == 2
    assert "cannot reach" in result.stderr and "Permission denied" in result.stderr
    assert not (tmp_path / "pi").exists()


def test_deploy_reports_a_failed_install_and_cleans_up(sshd: dict, bundle: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "pi"
    result = cli("deploy", f"{sshd['user']}@127.0.0.1", *_ssh_args(sshd), "--bundle", str(bundle),
                 f"--install-args=--prefix {prefix} --no-systemd --no-apt --python /nonexistent/python3",
                 timeout=300)
    assert result.returncode == 2
    assert "fer-edge: error: install.sh on" in result.stderr and "/nonexistent/python3 not found" in result.stderr
    assert not prefix.exists()


def test_deploy_rejects_bad_targets_and_bundles(tmp_path: Path) -> None:
    result = cli("deploy", "raspberrypi.local", "--dry-run")
    assert result.returncode == 2 and "must look like user@host" in result.stderr
    fake = tmp_path / "fer-edge-0.1.0-x.tar.gz"
    fake.write_bytes(b"not a tarball")
    result = cli("deploy", "pi@raspberrypi.local", "--bundle", str(fake), "--dry-run")
    assert result.returncode == 2 and "is not a readable .tar.gz" in result.stderr
    tarball = build(tmp_path / "ok")
    sidecar = tarball.with_name(tarball.name + ".sha256")
    sidecar.write_text("0" * 64 + "  " + tarball.name + "\n")
    result = cli("deploy", "pi@raspberrypi.local", "--bundle", str(tarball), "--dry-run")
    assert result.returncode == 2 and "corrupt or tampered" in result.stderr


def test_repo_root_is_unchanged_by_deploy() -> None:
    assert not list(ROOT.glob(".fer-edge-bundle-*"))
