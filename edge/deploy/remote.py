"""``fer-edge deploy user@host``: copy a bundle to a Pi over SSH, run its installer, report the service.

Only OpenSSH's ``ssh`` client is used (no scp or sftp on the other side): the tarball is streamed
into ``cat`` in a fresh ``mktemp -d`` folder, unpacked, installed with ``install.sh`` (through
``sudo`` unless the user is root) and the folder is removed again whatever happened. The installer
checks the bundle's sha256 list before it changes anything, and a failed install leaves the Pi
as it was (see install.sh).
"""

from __future__ import annotations

import collections
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edge.deploy.bundle import build_bundle, verify_tarball
from edge.errors import EdgeError

SSH_DEFAULTS = ("ConnectTimeout=15", "ServerAliveInterval=15")


class DeployError(EdgeError):
    """A host that cannot be reached, refuses us, or whose install failed."""


@dataclass(frozen=True)
class SshTarget:
    user: str
    host: str
    port: int | None = None
    identity: Path | None = None
    options: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, target: str, port: int | None = None, identity: Path | None = None,
              options: list[str] | tuple[str, ...] = ()) -> "SshTarget":
        user, at, host = target.rpartition("@")
        if not at or not user or not host or any(ch.isspace() for ch in target):
            raise DeployError(f"target {target!r} must look like user@host")
        if port is not None and not 0 < port < 65536:
            raise DeployError(f"--port {port} is not a TCP port")
        if identity is not None and not Path(identity).is_file():
            raise DeployError(f"--identity {identity} does not exist")
        cleaned = []
        for option in options:
            option = option.strip()
            if option.startswith("-o"):
                option = option[2:].strip()
            if "=" not in option and " " not in option:
                raise DeployError(f"--ssh-option {option!r} must look like Name=value")
            cleaned.append(option)
        return cls(user, host, port, Path(identity) if identity else None, tuple(cleaned))

    @property
    def where(self) -> str:
        return f"{self.user}@{self.host}" + (f":{self.port}" if self.port else "")

    def ssh(self, command: str, tty: bool = False) -> list[str]:
        argv = ["ssh"]
        if tty:
            argv.append("-t")
        if self.port:
            argv += ["-p", str(self.port)]
        if self.identity:
            argv += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        for option in (*SSH_DEFAULTS, *self.options):
            argv += ["-o", option]
        return argv + ["--", f"{self.user}@{self.host}", command]


def _run(argv: list[str], target: SshTarget, what: str, stdin_path: Path | None = None) -> str:
    try:
        if stdin_path is not None:
            with open(stdin_path, "rb") as handle:
                result = subprocess.run(argv, stdin=handle, capture_output=True, text=True, timeout=600)
        else:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise DeployError("ssh not found: install the OpenSSH client") from None
    except subprocess.TimeoutExpired:
        raise DeployError(f"{what} on {target.where} timed out") from None
    if result.returncode == 255:
        reason = (result.stderr.strip().splitlines() or ["ssh failed"])[-1]
        raise DeployError(f"cannot reach {target.where} over ssh: {reason}")
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or ["no output"])[-1]
        raise DeployError(f"{what} on {target.where} failed (exit {result.returncode}): {reason}")
    return result.stdout


def _stream(argv: list[str], target: SshTarget, tty: bool) -> list[str]:
    """Run the installer, echoing its output as it comes; its last lines."""
    tail: collections.deque[str] = collections.deque(maxlen=40)
    process = subprocess.Popen(argv, stdin=None if tty else subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(f"  {target.host}| {line}")
        sys.stdout.flush()
        tail.append(line.rstrip("\n"))
    code = process.wait()
    if code == 255:
        raise DeployError(f"lost the ssh connection to {target.where} during the install")
    if code != 0:
        errors = [line for line in tail if "error:" in line]
        reason = (errors or list(tail) or ["no output"])[-1].strip()
        raise DeployError(f"install.sh on {target.where} failed (exit {code}): {reason}")
    return list(tail)


def deploy(target: SshTarget, bundle: Path | None = None, install_args: str = "", sudo: str = "auto",
           dry_run: bool = False, **bundle_options: object) -> str:
    """Install on ``target``; the final status line (or, with ``dry_run``, the plan)."""
    try:
        args = shlex.split(install_args)
    except ValueError as exc:
        raise DeployError(f"--install-args: {exc}") from None
    use_sudo = sudo == "yes" or (sudo == "auto" and target.user != "root")
    tty = use_sudo and sys.stdin.isatty()  # let sudo ask for a password
    with tempfile.TemporaryDirectory(prefix="fer-edge-deploy-") as tmp:
        if bundle is None and not dry_run:
            built = build_bundle(Path(tmp), **bundle_options)  # type: ignore[arg-type]
            bundle, top = built.path, built.name
        elif bundle is not None:
            top = verify_tarball(bundle)
        else:
            top = "fer-edge-VERSION-MODEL"
        remote = "$d"
        install = " ".join(shlex.quote(a) for a in
                           ((["sudo"] if tty else ["sudo", "-n"]) if use_sudo else []) + [f"./{top}/install.sh"] + args)
        steps = [
            ("make a temporary folder", target.ssh("mktemp -d /tmp/fer-edge-deploy.XXXXXX")),
            ("copy the bundle", target.ssh(f"cat > {remote}/bundle.tar.gz")),
            ("unpack and install", target.ssh(f"cd {remote} && tar -xzf bundle.tar.gz && {install}", tty=tty)),
            ("remove the temporary folder", target.ssh(f"rm -rf {remote}")),
        ]
        if dry_run:
            lines = [f"would deploy to {target.where} (nothing is changed with --dry-run):",
                     f"  bundle: {bundle if bundle else 'built now from ' + _describe(bundle_options)}"]
            for i, (what, argv) in enumerate(steps, 1):
                extra = f" < {bundle or top + '.tar.gz'}" if what == "copy the bundle" else ""
                lines.append(f"  {i}. {what}: {shlex.join(argv)}{extra}")
            lines.append("  ($d is the folder step 1 prints)")
            return "\n".join(lines)
        print(f"deploying {Path(bundle).name} to {target.where}", flush=True)
        folder = _run(steps[0][1], target, "mktemp").strip().splitlines()[-1]
        if not folder.startswith("/tmp/fer-edge-deploy."):
            raise DeployError(f"unexpected answer from mktemp on {target.where}: {folder!r}")
        remote = shlex.quote(folder)
        try:
            _run(target.ssh(f"cat > {remote}/bundle.tar.gz"), target, "copying the bundle", stdin_path=Path(bundle))
            tail = _stream(target.ssh(f"cd {remote} && tar -xzf bundle.tar.gz && {install}", tty=tty), target, tty)
        finally:
            subprocess.run(target.ssh(f"rm -rf {remote}"), stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=60, check=False)
    status = [line for line in tail if "status:" in line]
    return f"deployed to {target.where}: " + (status[-1].split("status:", 1)[1].strip() if status else "installed")


def _describe(options: dict[str, object]) -> str:
    parts = [f"{k}={v}" for k, v in options.items() if v]
    return ", ".join(parts) if parts else "the shipped model (int8) and edge/configs/edge.toml"
