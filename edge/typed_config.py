"""Typed TOML values and TOML output for config dataclasses, shared by edge's and train's configs.

It lives in edge/ because edge depends on nothing else of the project; train may import it.
Values from ``--set section.key=value`` arrive as strings, so each type accepts its string form.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any


def coerce(value: Any, kind: str, where: str) -> Any:
    """``value`` as ``kind`` (bool, int, float, str), or ValueError naming ``where``."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind == "str" and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{where}: expected {kind}, got {value!r}")


def to_toml(sections: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def build_section(cls: type, values: dict[str, Any], section: str) -> Any:
    """An instance of the dataclass ``cls`` from a TOML table; ValueError for unknown keys or wrong types."""
    known = {f.name: str(f.type) for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown config key {section}.{unknown[0]} (known: {', '.join(known)})")
    return cls(**{k: coerce(v, known[k], f"{section}.{k}") for k, v in values.items()})


class Sections:
    """Mixin for a config dataclass made of section dataclasses: its dict and TOML forms."""

    def to_dict(self) -> dict[str, dict[str, Any]]:
        import dataclasses

        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def to_toml(self) -> str:
        return to_toml(self.to_dict())
