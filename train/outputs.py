"""Output folders checked before the work that fills them, so a bad ``--out`` costs no waiting."""

from __future__ import annotations

from pathlib import Path

from train.errors import TrainError


def refuse_a_file(out: str | Path, holds: str) -> Path:
    """``out`` unless a file stands in its place: checked first, so the mistake a user can see is named
    before anything slower (reading a run, loading a model) can fail for another reason."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TrainError(f"--out {out} is a file, not a folder for {holds}")
    return out


def output_folder(out: str | Path, holds: str) -> Path:
    """``out`` created if needed; a file in its place, or a path that cannot be made, is a TrainError."""
    out = refuse_a_file(out, holds)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent that is a file, no permission, a read-only disk
        raise TrainError(f"--out {out}: cannot create the folder for {holds} ({exc.strerror or exc})") from None
    return out
