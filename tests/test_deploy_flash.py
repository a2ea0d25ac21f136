"""``fer-edge flash-prepare`` on fake boot partitions: Bookworm's firstrun.sh, Trixie's cloud-init user-data.

A first boot through cloud-init on an emulated Trixie root is in test_deploy_arm64.py. The last test here plays a
first boot end to end: the written firstrun.sh runs against a folder
standing in for /, enables the one-shot unit, and that unit's firstboot.sh installs the bundle
from the boot partition (into a prefix, --no-systemd) so the daemon runs on the demo clip.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy_helpers import build, cli, run_demo, system_python

CMDLINE = ("console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes "
           "rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n")
IMAGER_FIRSTRUN = """#!/bin/bash

set +e

CURRENT_HOSTNAME=`cat /etc/hostname | tr -d " \\t\\n\\r"`
echo camera-pi >/etc/hostname
systemctl enable ssh
rm -f /boot/firstrun.sh
sed -i 's| systemd.run.*||g' /boot/cmdline.txt
exit 0
"""
USER_DATA = """#cloud-config
hostname: camera-pi
users:
  - name: pi
    groups: users,adm,dialout,audio,netdev,video,plugdev,cdrom,games,input,gpio,spi,i2c,render,sudo
    shell: /bin/bash
runcmd:
  - [systemctl, enable, ssh]
  - echo done
ssh_pwauth: false
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("bundle"))


def _bootfs(tmp_path: Path, **files: str) -> Path:
    boot = tmp_path / "bootfs"
    boot.mkdir()
    (boot / "config.txt").write_text("camera_auto_detect=1\narm_64bit=1\n")
    for name, text in files.items():
        (boot / name.replace("_", "-") if name == "user_data" else boot / name.replace("_", ".")).write_text(text)
    return boot


def _prepare(boot: Path, bundle: Path, *args: str) -> subprocess.CompletedProcess:
    result = cli("flash-prepare", str(boot), "--bundle", str(bundle), *args)
    assert result.returncode == 0, result.stderr
    return result


def test_firstrun_on_a_fresh_bookworm_card(tmp_path: Path, bundle: Path) -> None:
    boot = _bootfs(tmp_path, cmdline_txt=CMDLINE)
    _prepare(boot, bundle)
    cmdline = (boot / "cmdline.txt").read_text()
    assert cmdline.count("\n") == 1 and cmdline.startswith(CMDLINE.strip() + " ")
    assert cmdline.strip().endswith("systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot "
                                    "systemd.unit=kernel-command-line.target")
    firstrun = (boot / "firstrun.sh").read_text()
    assert firstrun.startswith("#!/bin/bash") and "fer-edge-firstboot.service" in firstrun
    assert subprocess.run(["bash", "-n", str(boot / "firstrun.sh")]).returncode == 0
    files = sorted(p.name for p in (boot / "fer-edge").iterdir())
    assert files == sorted([bundle.name, bundle.name + ".sha256", "firstboot.sh", "install.args"])
    assert not (boot / "user-data").exists()
    # idempotent: a second run changes nothing
    before = {p.name: p.read_bytes() for p in boot.iterdir() if p.is_file()}
    _prepare(boot, bundle)
    assert {p.name: p.read_bytes() for p in boot.iterdir() if p.is_file()} == before
    assert not [p for p in boot.iterdir() if p.name.startswith(".")]


def test_firstrun_keeps_what_raspberry_pi_imager_wrote(tmp_path: Path, bundle: Path) -> None:
    imager_cmdline = CMDLINE.strip() + " systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot " \
                                       "systemd.unit=kernel-command-line.target\n"
    boot = _bootfs(tmp_path, cmdline_txt=imager_cmdline, firstrun_sh=IMAGER_FIRSTRUN)
    _prepare(boot, bundle)
    _prepare(boot, bundle)
    assert (boot / "cmdline.txt").read_text() == imager_cmdline
    text = (boot / "firstrun.sh").read_text()
    assert text.count(">>> fer-edge") == 1
    assert "echo camera-pi >/etc/hostname" in text and "systemctl enable ssh" in text
    # ours runs before Imager's clean-up lines
    assert text.index(">>> fer-edge") < text.index("rm -f /boot/firstrun.sh") < text.index("exit 0")
    assert text.index("set +e") < text.index(">>> fer-edge")


def _runcmd(user_data: str) -> list[str]:
    lines = user_data.splitlines()
    start = lines.index("runcmd:")
    items = []
    for line in lines[start + 1:]:
        if line and line[0] not in " -":
            break
        if line.strip().startswith("- "):
            items.append(line.strip()[2:])
    return items


def test_cloud_init_user_data_gets_a_runcmd_entry(tmp_path: Path, bundle: Path) -> None:
    boot = _bootfs(tmp_path, cmdline_txt=CMDLINE, user_data=USER_DATA)
    result = _prepare(boot, bundle)
    assert "user-data: added a runcmd entry" in result.stdout
    _prepare(boot, bundle)
    text = (boot / "user-data").read_text()
    items = _runcmd(text)
    assert items[:2] == ["[systemctl, enable, ssh]", "echo done"]
    assert len(items) == 3 and "fer-edge/firstboot.sh" in items[2]
    assert text.count("fer-edge/firstboot.sh") == 2  # the test and the exec, in one entry
    assert "ssh_pwauth: false" in text and "hostname: camera-pi" in text
    assert (boot / "cmdline.txt").read_text() == CMDLINE  # auto picked cloud-init only
    import yaml  # type: ignore[import-untyped]  # the dev extra has it: this check must not be skipped

    data = yaml.safe_load(text)
    assert data["runcmd"][-1][0:2] == ["bash", "-c"] and data["users"][0]["name"] == "pi"


def test_cloud_init_without_runcmd_and_both_modes(tmp_path: Path, bundle: Path) -> None:
    boot = _bootfs(tmp_path, cmdline_txt=CMDLINE, user_data="#cloud-config\nhostname: cam\n\n")
    _prepare(boot, bundle, "--mode", "both")
    text = (boot / "user-data").read_text()
    assert text.startswith("#cloud-config\nhostname: cam\nruncmd:\n  - [bash, -c,")
    assert "systemd.run=/boot/firstrun.sh" in (boot / "cmdline.txt").read_text()


@pytest.mark.parametrize("files, args, message", [
    ({}, [], "not a Raspberry Pi OS boot partition"),
    ({"user_data": "#!/bin/sh\necho hi\n"}, [], "is not '#cloud-config' user-data"),
    ({"user_data": "#cloud-config\nruncmd: [ls]\n"}, [], "runcmd is not a block list"),
    ({"config_txt": "arm_64bit=1\n"}, ["--mode", "firstrun"], "has no cmdline.txt"),
])
def test_flash_prepare_bad_cards_are_one_line_errors(tmp_path: Path, bundle: Path, files: dict, args: list,
                                                     message: str) -> None:
    boot = tmp_path / "bootfs"
    boot.mkdir()
    for name, text in files.items():
        (boot / ("user-data" if name == "user_data" else name.replace("_", "."))).write_text(text)
    result = cli("flash-prepare", str(boot), "--bundle", str(bundle), *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (boot / "cmdline.txt").exists() or "systemd.run" not in (boot / "cmdline.txt").read_text()


def test_a_failed_cloud_init_first_boot_retries_at_the_next_boot(tmp_path: Path, bundle: Path) -> None:
    """cloud-init runs runcmd once per instance: a failed install must leave the one-shot unit to retry it."""
    boot = _bootfs(tmp_path, user_data=USER_DATA)
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    _prepare(boot, bundle, "--install-args=--no-such-option")  # install.sh refuses it: exit 2, nothing installed
    env = {**os.environ, "FER_EDGE_ROOT": str(root), "FER_EDGE_FIRSTBOOT_ATTEMPTS": "1"}
    failed = subprocess.run(["bash", str(boot / "fer-edge/firstboot.sh")], env=env, capture_output=True, text=True,
                            timeout=120)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "unknown option --no-such-option" in failed.stdout and "runs it again at the next boot" in failed.stdout
    assert not (root / "var/lib/fer-edge-firstboot.done").exists()
    unit = root / "etc/systemd/system/fer-edge-firstboot.service"
    wants = root / "etc/systemd/system/multi-user.target.wants/fer-edge-firstboot.service"
    assert wants.is_symlink() and os.readlink(wants) == "../fer-edge-firstboot.service"
    exec_start = re.search(r"^ExecStart=(.*)$", unit.read_text(), re.M).group(1).split()
    assert exec_start == ["/bin/bash", f"{boot}/fer-edge/firstboot.sh"]
    assert "ConditionPathExists=!/var/lib/fer-edge-firstboot.done" in unit.read_text()


@pytest.mark.slow
def test_first_boot_end_to_end_installs_and_runs_the_daemon(tmp_path: Path, bundle: Path) -> None:
    boot = _bootfs(tmp_path, cmdline_txt=CMDLINE)
    root = tmp_path / "root"  # stands in for / of the Pi
    prefix = tmp_path / "opt-fer-edge"
    _prepare(boot, bundle, f"--install-args=--prefix {prefix} --no-systemd --no-apt --python {system_python()}")
    env = {**os.environ, "FER_EDGE_ROOT": str(root), "FER_EDGE_BOOT": str(boot)}
    # boot 1: systemd.run= runs firstrun.sh, which enables the one-shot unit and cleans up after itself
    first = subprocess.run(["bash", str(boot / "firstrun.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "systemd.run" not in (boot / "cmdline.txt").read_text()
    assert (boot / "cmdline.txt").read_text() == CMDLINE
    assert not (boot / "firstrun.sh").exists()
    unit = root / "etc/systemd/system/fer-edge-firstboot.service"
    wants = root / "etc/systemd/system/multi-user.target.wants/fer-edge-firstboot.service"
    assert wants.is_symlink() and os.readlink(wants) == "../fer-edge-firstboot.service"
    text = unit.read_text()
    assert "After=network-online.target" in text
    exec_start = re.search(r"^ExecStart=(.*)$", text, re.M).group(1).split()
    assert exec_start == ["/bin/bash", f"{boot}/fer-edge/firstboot.sh"]
    # boot 2, network up: the unit's command installs the bundle from the boot partition
    (root / "run").mkdir(parents=True, exist_ok=True)
    second = subprocess.run(exec_start, env={**env, "FER_EDGE_FIRSTBOOT_ATTEMPTS": "1"}, capture_output=True,
                            text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
    assert "fer-edge firstboot: done" in second.stdout
    assert (root / "var/lib/fer-edge-firstboot.done").exists()
    assert not unit.exists() and not wants.is_symlink()
    assert "install.sh: status: fer-edge" in (root / "var/log/fer-edge-firstboot.log").read_text()
    summary, events = run_demo(prefix, frames=30)
    assert summary.startswith("summary: 30 frames,") and events
    # a later boot: nothing to do
    again = subprocess.run(exec_start, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "already done" in again.stdout
