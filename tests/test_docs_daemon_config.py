"""docs/daemon.md's config reference lists every key of the daemon's schema (edge/config.py) with the
default the daemon really uses, and no key that does not exist. A new key without a row fails here,
naming the key and the row to add."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

from edge.config import EdgeConfig
from tests.conftest import ROOT

DOC = ROOT / "docs" / "daemon.md"
ROW = re.compile(r"^\| `(?P<key>[a-z_]+\.[a-z_]+)` \| `(?P<default>[^`]*)` \|", re.M)


def _schema() -> dict[str, str]:
    """Every ``section.key`` with its default as TOML writes it (as ``validate-config --print`` does)."""
    keys = {}
    config = EdgeConfig()
    for section in fields(EdgeConfig):
        values = getattr(config, section.name)
        for key in fields(values):
            keys[f"{section.name}.{key.name}"] = getattr(values, key.name)
    return keys


def _documented() -> dict[str, str]:
    rows = ROW.findall(DOC.read_text())
    keys = [key for key, _ in rows]
    assert len(keys) == len(set(keys)), f"docs/daemon.md lists a key twice: {sorted(k for k in keys if keys.count(k) > 1)}"
    return dict(rows)


def _machine_path(default: object) -> bool:
    """A default that is a path on this machine (the shipped model's), documented by its file name."""
    return isinstance(default, str) and Path(default).is_absolute()


def _matches(default: object, cell: str) -> bool:
    return cell.endswith("/" + Path(str(default)).name) if _machine_path(default) else cell == json.dumps(default)


def test_every_config_key_is_documented_with_its_default() -> None:
    documented = _documented()
    for key, default in _schema().items():
        cell = f"<package>/{Path(str(default)).name}" if _machine_path(default) else json.dumps(default)
        row = f"| `{key}` | `{cell}` | ... |"
        assert key in documented, f"docs/daemon.md: config key {key} is missing from the config reference; add {row}"
        assert _matches(default, documented[key]), \
            f"docs/daemon.md: config key {key} documents default {documented[key]}, the daemon uses {json.dumps(default)}"


def test_no_documented_key_is_unknown_to_the_daemon() -> None:
    unknown = sorted(set(_documented()) - set(_schema()))
    assert not unknown, f"docs/daemon.md documents config keys the daemon rejects: {', '.join(unknown)}"


def test_the_row_pattern_reads_the_table() -> None:
    """Guards the checks above against a table reformatted so that no row is read at all."""
    assert len(_documented()) >= 40
