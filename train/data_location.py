"""Where FER2013 is when a command is not told: ``--data``, then ``FER2013_DIR``, then ``data/fer2013/``.

No default names a folder of one machine or team: a user downloads FER2013 and says where it is,
or puts it where the tools look. fer-bench, fer-convert and fer-train all ask here, so they agree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from train.errors import DataError

ENV = "FER2013_DIR"
VOTES_ENV = "FERPLUS_DIR"  # where FER+'s train.csv and test.csv are: only ever a placeholder in what ships
LOCAL = Path("data") / "fer2013"  # relative to the working directory
WHERE_FROM = (f"FER2013 not found: download it from Kaggle (https://www.kaggle.com/datasets/msambare/fer2013, "
              f"train/ and test/ folders or its zip; or fer2013.csv from the 2013 challenge), then pass --data PATH, "
              f"set {ENV}=PATH, or put it in ./{LOCAL}/")


def locate_fer2013(explicit: str | Path | None = None, environ: Mapping[str, str] | None = None,
                   option: str = "--data") -> tuple[Path, str] | None:
    """As ``find_fer2013``, with how the folder was found (``option``, ``FER2013_DIR`` or ``./data/fer2013/``):
    a command says which data it used and why, so a user sees when it is not the copy they meant."""
    if explicit is not None and str(explicit).strip():
        return Path(explicit), option
    named = (os.environ if environ is None else environ).get(ENV, "").strip()
    if named:
        return Path(named), ENV
    return (LOCAL, f"./{LOCAL}/") if LOCAL.exists() else None


def find_fer2013(explicit: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """``explicit``, else ``FER2013_DIR``, else ``data/fer2013/`` when it exists; None when none is there."""
    found = locate_fer2013(explicit, environ)
    return None if found is None else found[0]


def require_fer2013(explicit: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """As ``find_fer2013``; no data anywhere is a DataError saying where FER2013 comes from."""
    found = find_fer2013(explicit, environ)
    if found is None:
        raise DataError(WHERE_FROM)
    return found


def data_name(path: str | Path, split: str | None = None) -> str:
    """A data set by name, not by where it sits on one machine: ``fer2013/test`` for ``/any/where/fer2013``
    (or its ``test/`` folder, or ``fer2013.csv``) and split ``test``."""
    path = Path(path).expanduser().resolve()
    name = path.stem if path.suffix.lower() in (".csv", ".zip") else path.name
    if split and name.lower() == split.lower() and path.parent.name:
        name = path.parent.name
    name = name or "data"
    return f"{name}/{split}" if split else name


def votes_name(path: str | Path) -> str:
    """A FER+ votes file by name, ``ferplus/test.csv``, not by where it sits on one machine."""
    path = Path(path).expanduser().resolve()
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def data_placeholder(path: str | Path, fer2013: bool = True) -> str:
    """What a shipped command or config says for data of this machine: ``$FER2013_DIR`` for FER2013 (as the
    docs do), else the folder's or file's own name (where a user keeps their copy is theirs to say)."""
    return f"${ENV}" if fer2013 else (Path(path).name or "data")


def votes_placeholder(path: str | Path) -> str:
    """``$FERPLUS_DIR/test.csv`` for a FER+ votes file of this machine."""
    return f"${VOTES_ENV}/{Path(path).name}"


def expand_path(text: str, what: str = "data.votes") -> str:
    """A data path from a config, its ``$FERPLUS_DIR``-style variables and ``~`` filled in (a shipped
    config names FER+'s votes as ``$FERPLUS_DIR/train.csv``); a variable that is not set is a DataError."""
    if not text:
        return text
    expanded = os.path.expanduser(os.path.expandvars(text))
    unset = re.search(r"\$\{?(\w+)", expanded)
    if unset:
        raise DataError(f"{what} = {text!r}: {unset.group(1)} is not set; set it to the folder that holds the file")
    return expanded
