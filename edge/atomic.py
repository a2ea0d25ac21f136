"""Files replaced whole or not at all: a reader, a full disk or a Ctrl-C never leaves half of one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` fills a hidden file beside ``path``, which is then renamed over it (one filesystem,
    so the rename is atomic); on any failure the hidden file is removed and the old ``path`` stays."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))
