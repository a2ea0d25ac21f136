"""Reading a JSON or TOML file the user named, with the three one-line errors that can happen.

A config, a manifest and a benchmark's results are all "a file the user pointed at": it may be
missing, unreadable, or not parse. Each caller raises its own error type so its CLI maps it to
exit code 2; the wording is the same everywhere.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from edge.packaged import installed_layout_hint


def read_document(path: Path, what: str, error: type[Exception], fmt: str = "json") -> Any:
    """The parsed content of ``path`` (``fmt`` "json" or "toml"); ``what`` names it in errors."""
    kind, parse, invalid = (("TOML", tomllib.loads, tomllib.TOMLDecodeError) if fmt == "toml"
                            else ("JSON", json.loads, json.JSONDecodeError))
    try:
        return parse(path.read_text())
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist{installed_layout_hint(path)}") from None
    except invalid as exc:
        raise error(f"{what} {path} is not valid {kind}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None
