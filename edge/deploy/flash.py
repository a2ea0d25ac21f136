"""``fer-edge flash-prepare BOOTFS``: a freshly flashed Raspberry Pi OS card that comes up running the daemon.

Everything goes on the boot partition (FAT, writable from any OS), in ``BOOTFS/fer-edge/``: the
bundle, its ``.sha256``, ``firstboot.sh`` and ``install.args``. What starts ``firstboot.sh``
depends on the image:

- **firstrun** (Raspberry Pi OS Bookworm): ``cmdline.txt`` gets ``systemd.run=/boot/firstrun.sh``
  (the mechanism Raspberry Pi Imager uses; kept if Imager already set it). ``firstrun.sh`` runs
  once, early and offline, and only has ``firstboot.sh --enable-unit`` write and enable
  ``fer-edge-firstboot.service``, which runs ``firstboot.sh`` after ``network-online.target``. An
  Imager-written ``firstrun.sh`` (user, Wi-Fi, SSH) is kept: our block is inserted after its
  ``set +e``, between markers.
- **cloud-init** (Trixie and 2025+ images, which ship ``user-data`` on the boot partition): a
  ``runcmd`` entry runs ``firstboot.sh``; cloud-init runs it once, with the network up. runcmd
  never runs again, so a failed install enables ``fer-edge-firstboot.service`` to retry at the next
  boot, as on Bookworm.

Both are idempotent (a second ``flash-prepare`` replaces its own block and files) and can be
combined (``--mode both``): ``firstboot.sh`` takes a lock and a done-marker, so it installs once.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tempfile
from pathlib import Path

from edge.deploy.bundle import DEPLOY_DIR, BundleError, build_bundle, verify_tarball
from edge.errors import EdgeError

BEGIN = "# >>> fer-edge (written by fer-edge flash-prepare) >>>"
END = "# <<< fer-edge <<<"
RUN_ARGS = "systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target"
CLOUD_TAG = "# fer-edge first boot"
CLOUD_ITEM = ("- [bash, -c, 'for b in /boot/firmware /boot; do if [ -f \"$b/fer-edge/firstboot.sh\" ]; "
              "then exec bash \"$b/fer-edge/firstboot.sh\"; fi; done']  " + CLOUD_TAG)

FIRSTRUN_BLOCK = f"""{BEGIN}
# install fer-edge once the network is up: firstboot.sh enables fer-edge-firstboot.service, a one-shot unit
FER_BOOT=${{FER_EDGE_BOOT:-}}
if [ -z "$FER_BOOT" ]; then
    for d in /boot/firmware /boot; do if [ -f "$d/fer-edge/firstboot.sh" ]; then FER_BOOT=$d; break; fi; done
fi
if [ -n "$FER_BOOT" ]; then
    bash "$FER_BOOT/fer-edge/firstboot.sh" --enable-unit
fi
{END}
"""

FIRSTRUN_SCRIPT = """#!/bin/bash
# written by fer-edge flash-prepare; started once by systemd.run= in cmdline.txt, then removes itself
set +e

{block}
FER_BOOT_FS=${{FER_EDGE_BOOT:-}}
if [ -z "$FER_BOOT_FS" ]; then
    for d in /boot/firmware /boot; do if [ -f "$d/cmdline.txt" ]; then FER_BOOT_FS=$d; break; fi; done
fi
rm -f "$FER_BOOT_FS/{name}"
sed -i 's| systemd.run.*||g' "$FER_BOOT_FS/cmdline.txt"
exit 0
"""


class FlashError(EdgeError):
    """A boot partition that cannot be prepared (not a Pi's, or a file that cannot be merged)."""


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.fer-edge.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _strip_block(text: str) -> str:
    return re.sub(rf"\n{re.escape(BEGIN)}.*?{re.escape(END)}\n", "", text, flags=re.S)


def patch_firstrun(bootfs: Path) -> list[str]:
    cmdline_path = bootfs / "cmdline.txt"
    if not cmdline_path.is_file():
        raise FlashError(f"{bootfs} has no cmdline.txt: not a Raspberry Pi OS boot partition (or use --mode cloud-init)")
    cmdline = cmdline_path.read_text()
    if cmdline.count("\n") > 1 or not cmdline.strip():
        raise FlashError(f"{cmdline_path} must be a single line")
    match = re.search(r"\bsystemd\.run=(\S+)", cmdline)
    notes = []
    if match:
        name = Path(match.group(1)).name
        notes.append(f"{cmdline_path}: kept its systemd.run={match.group(1)}")
    else:
        name = "firstrun.sh"
        _atomic_write(cmdline_path, cmdline.rstrip("\n") + " " + RUN_ARGS + "\n")
        notes.append(f"{cmdline_path}: added {RUN_ARGS}")
    script = bootfs / name
    if script.is_file() and "written by fer-edge flash-prepare;" not in script.read_text():
        text = _strip_block(script.read_text())
        lines = text.splitlines(keepends=True)
        if not lines or not lines[0].startswith("#!"):
            raise FlashError(f"{script} is not a shell script; remove it or merge by hand")
        at = next((i + 1 for i, line in enumerate(lines) if line.strip() == "set +e"), 1)
        lines.insert(at, "\n" + FIRSTRUN_BLOCK)
        _atomic_write(script, "".join(lines))
        notes.append(f"{script}: added the fer-edge block to the existing script")
    else:
        _atomic_write(script, FIRSTRUN_SCRIPT.format(block=FIRSTRUN_BLOCK, name=name))
        notes.append(f"{script}: written")
    return notes


def patch_user_data(bootfs: Path) -> list[str]:
    path = bootfs / "user-data"
    if not path.exists():
        _atomic_write(path, f"#cloud-config\nruncmd:\n  {CLOUD_ITEM}\n")
        return [f"{path}: written (runcmd runs fer-edge/firstboot.sh)"]
    text = path.read_text()
    if not text.lstrip().startswith("#cloud-config"):
        raise FlashError(f"{path} is not '#cloud-config' user-data; merge fer-edge's runcmd by hand")
    lines = [line for line in text.splitlines() if not line.rstrip().endswith(CLOUD_TAG)]
    key = next((i for i, line in enumerate(lines) if re.match(r"runcmd\s*:", line)), None)
    if key is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["runcmd:", f"  {CLOUD_ITEM}"]
    else:
        if not re.fullmatch(r"runcmd\s*:\s*(#.*)?", lines[key].rstrip()):
            raise FlashError(f"{path}: runcmd is not a block list ('runcmd:' then '- ...' lines); merge by hand")
        end, indent = key + 1, "  "
        for i in range(key + 1, len(lines)):
            line = lines[i]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] not in " -":
                break
            if line.lstrip().startswith("- ") and end == key + 1:
                indent = line[: len(line) - len(line.lstrip())]
            end = i + 1
        lines.insert(end, f"{indent}{CLOUD_ITEM}")
    _atomic_write(path, "\n".join(lines) + "\n")
    return [f"{path}: added a runcmd entry for fer-edge/firstboot.sh"]


def flash_prepare(bootfs: Path, bundle: Path | None = None, mode: str = "auto", install_args: str = "",
                  **bundle_options: object) -> list[str]:
    """Write the bundle and first-boot hooks onto a mounted boot partition; what was done, one line each."""
    bootfs = Path(bootfs)
    if not bootfs.is_dir():
        raise FlashError(f"{bootfs} is not a folder (mount the card's boot partition, e.g. /media/$USER/bootfs)")
    if not any((bootfs / name).is_file() for name in ("cmdline.txt", "config.txt", "user-data")):
        raise FlashError(f"{bootfs} has no cmdline.txt, config.txt or user-data: not a Raspberry Pi OS boot partition")
    if mode == "auto":
        mode = "cloud-init" if (bootfs / "user-data").is_file() else "firstrun"
    try:
        args = shlex.split(install_args)
    except ValueError as exc:
        raise FlashError(f"--install-args: {exc}") from None
    notes = []
    stage = Path(tempfile.mkdtemp(prefix=".fer-edge.", dir=bootfs))
    try:
        if bundle is not None:
            verify_tarball(bundle)
            shutil.copyfile(bundle, stage / Path(bundle).name)
            sidecar = Path(bundle).with_name(Path(bundle).name + ".sha256")
            if sidecar.is_file():
                shutil.copyfile(sidecar, stage / sidecar.name)
            tarball = stage / Path(bundle).name
        else:
            tarball = build_bundle(stage, **bundle_options).path  # type: ignore[arg-type]
        shutil.copyfile(DEPLOY_DIR / "firstboot.sh", stage / "firstboot.sh")
        (stage / "install.args").write_text("".join(f"{arg}\n" for arg in args))
        target = bootfs / "fer-edge"
        if target.exists():
            shutil.rmtree(target)
        os.replace(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    size = (target / tarball.name).stat().st_size
    notes.append(f"{target}/: {tarball.name} ({size / 1e6:.1f} MB), firstboot.sh, install.args")
    if mode in ("firstrun", "both"):
        notes += patch_firstrun(bootfs)
    if mode in ("cloud-init", "both"):
        notes += patch_user_data(bootfs)
    notes.append("next: eject the card, boot the Pi; the install log is /var/log/fer-edge-firstboot.log")
    return notes


__all__ = ["FlashError", "BundleError", "flash_prepare", "patch_firstrun", "patch_user_data"]
