"""A run directory's files written so that a kill never leaves a torn one, and its history read back.

Shared by training, recalibration and the cards; it depends on nothing else in ``train``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_save_model(model: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def read_history(path: Path) -> list[dict[str, float]]:
    """Rows of history.csv; columns a row lacks (added by a later schedule part) are left out."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]
