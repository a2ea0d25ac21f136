"""Which ``edge.toml`` a command reads when it is not given one.

Precedence: ``--config``, then ``FER_EDGE_CONFIG``, then the config install.sh installed (the one
the service runs with, so ``fer-edge detect`` over SSH on a Pi behaves like the daemon), then the
packaged defaults. install.sh tells the installed CLI where its config is with a marker file in
the venv it built (``<venv>/fer-edge-install.env``, a ``CONFIG=`` line): a prefix install and a
system install each find their own, and a pip install elsewhere has no marker at all.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from edge.errors import ConfigError

ENV = "FER_EDGE_CONFIG"
MARKER = "fer-edge-install.env"


@dataclass(frozen=True)
class ConfigChoice:
    path: Path | None  # None: the packaged defaults
    origin: str  # --config, FER_EDGE_CONFIG, installed, packaged defaults

    def describe(self) -> str:
        return f"config: {self.path} ({self.origin})" if self.path else f"config: {self.origin}"


def installed_config(prefix: str | Path | None = None) -> Path | None:
    """The config named by install.sh's marker in this venv, or None for a venv install.sh did not build."""
    marker = Path(prefix or sys.prefix) / MARKER
    try:
        lines = marker.read_text().splitlines()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {marker}: {exc}") from None
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip() == "CONFIG" and value.strip():
            return Path(value.strip())
    raise ConfigError(f"{marker} names no CONFIG= (written by install.sh; reinstall, or pass --config)")


def choose_config(explicit: Path | None, environ: Mapping[str, str] | None = None,
                  prefix: str | Path | None = None) -> ConfigChoice:
    """The first of ``--config``, ``FER_EDGE_CONFIG``, the installed config and the packaged defaults."""
    if explicit is not None:
        return ConfigChoice(Path(explicit), "--config")
    environ = os.environ if environ is None else environ
    named = environ.get(ENV, "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"{ENV}={named}: no such config file")
        return ConfigChoice(path, ENV)
    installed = installed_config(prefix)
    if installed is not None:
        if not installed.is_file():
            raise ConfigError(f"installed config {installed} does not exist (named by install.sh in "
                              f"{Path(prefix or sys.prefix) / MARKER}); restore it, or pass --config")
        if not os.access(installed, os.R_OK):
            # 0640 root:fer-edge, as it may hold the MQTT password: the admin who SSHes in is told how in
            group = _group_of(installed)
            raise ConfigError(f"installed config {installed} is not readable by this user: run with sudo"
                              + (f", or join its group (sudo usermod -aG {group} $USER, then log in again)"
                                 if group else "") + ", or pass --config")
        return ConfigChoice(installed, "installed")
    return ConfigChoice(None, "packaged defaults")


def _group_of(path: Path) -> str:
    try:
        import grp

        return grp.getgrgid(path.stat().st_gid).gr_name
    except (ImportError, KeyError, OSError):
        return ""
