"""Where a run's results go, checked before anything is measured, and what may be carried into them.

A full run takes minutes; an output path that cannot be written must fail in one line before the
first measurement, not lose them all at the end. A results folder is never replaced silently: the
default ``<host>-<date>`` folder gets ``-2``, ``-3``, ... for a second run the same day, and an
explicit ``--out`` holding a full run's results needs ``--force``. A memory soak is carried into a
new run only for the very same model artifact (its sha256), labelled with where and when it ran.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from benchmarks.errors import BenchError
from edge.packaged import shipped_manifest

ROOT = Path(__file__).resolve().parents[1]
RESULTS_ROOT = ROOT / "benchmarks" / "results"
SHIPPED_MANIFEST = shipped_manifest()  # models/manifest.json in a checkout, edge/models/ in an installed wheel


def display_path(folder: Path) -> str:
    """A path as reports name it: relative to the repository when inside it, else to the working folder
    when inside that; a report is read on other machines, where this one's folders mean nothing."""
    where = Path(folder).resolve()
    for base in (ROOT, Path.cwd().resolve()):
        if where.is_relative_to(base):
            return str(where.relative_to(base))
    return str(where)


def newest_run(root: Path) -> Path | None:
    """The results.json under ``root`` of the run measured last, by the time the run recorded in it (else its
    folder's ``<host>-<date>[-N]`` name): rewriting an older run's report touches its file, so the newest
    file is not the newest run."""
    runs = [(_measured_at(path), path) for path in Path(root).glob("*/results.json")]
    return max(runs, key=lambda run: run[0])[1] if runs else None


def _measured_at(path: Path) -> tuple[str, int]:
    """(ISO time or date, N of a ``-N`` folder); ("", 0) for what says neither, which sorts first."""
    try:
        system = json.loads(path.read_text()).get("system") or {}
    except (OSError, ValueError, AttributeError):
        system = {}
    folder = re.search(r"(\d{4}-\d{2}-\d{2})(?:-(\d+))?$", path.parent.name)
    when = str(system.get("time") or system.get("date") or (folder.group(1) if folder else ""))
    return when, int(folder.group(2) or 1) if folder else 0


def check_writable_dir(out: Path, what: str = "--out") -> None:
    """Fail in one line unless ``out`` is, or can be created as, a writable folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BenchError(f"{what} {out} is a file, not a folder")
    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        raise BenchError(f"{what} {out}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BenchError(f"{what} {out}: {existing} is not writable")


def check_writable_file(path: Path, what: str) -> None:
    """Fail in one line unless ``path`` can be written as a file (its folder may not exist yet)."""
    path = Path(path)
    if path.is_dir():
        raise BenchError(f"{what} {path} is a folder, not a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise BenchError(f"{what} {path} is not writable")
    check_writable_dir(path.parent, what)


def _stem(root: Path, host: str, date: str) -> Path:
    return Path(root) / f"{host}-{date}"


def todays_runs(root: Path, host: str, date: str) -> list[Path]:
    """This host's folders of ``date`` (``<host>-<date>``, then ``-2``, ``-3``, ...), oldest first."""
    stem = _stem(root, host, date)
    numbered = []
    if Path(root).is_dir():
        pattern = re.compile(re.escape(stem.name) + r"-(\d+)")
        numbered = sorted((int(m.group(1)), p) for p in Path(root).iterdir()
                          if p.is_dir() and (m := pattern.fullmatch(p.name)))
    return ([stem] if stem.is_dir() else []) + [p for _, p in numbered]


def new_run_folder(root: Path, host: str, date: str) -> Path:
    """The default folder of a new run: never one that exists, so a second run never replaces the first."""
    stem = _stem(root, host, date)
    if not stem.exists():
        return stem
    n = 2
    while stem.with_name(f"{stem.name}-{n}").exists():
        n += 1
    return stem.with_name(f"{stem.name}-{n}")


def todays_folder(root: Path, host: str, date: str) -> Path:
    """Where `fer-bench soak` adds to by default: today's newest run folder (the plain one if none)."""
    runs = todays_runs(root, host, date)
    return runs[-1] if runs else _stem(root, host, date)


def is_quick_run(folder: Path) -> bool | None:
    """Whether ``folder``'s results.json is a --quick run; None when it holds none or cannot be read."""
    try:
        data = json.loads((Path(folder) / "results.json").read_text())
        return bool(data["config"].get("quick"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def check_replace(out: Path, force: bool) -> str:
    """An explicit --out that already holds results: refused for a full run's unless ``force``.

    Returns the notice to print when results are replaced (a quick run's, such as `make test`'s
    smoke run, or with ``force``), '' when there is nothing to replace.
    """
    quick = is_quick_run(out)
    if quick is None and not (Path(out) / "results.json").exists():
        return ""
    if quick is False and not force:
        raise BenchError(f"--out {out} already holds a full run's results: pass --force to replace them, "
                         "or choose another folder")
    if quick is None and not force:  # torn or foreign: it may be a full run's, and its report.md is still whole
        raise BenchError(f"--out {out} holds a results.json that cannot be read as a quick run's: pass --force "
                         "to replace it, or choose another folder")
    return f"replacing the results in {out}"


def write_text_atomic(path: Path, text: str, what: str) -> None:
    """Write beside ``path`` and rename over it: a full disk or a Ctrl-C mid-write leaves the old file
    (a README, a reference CSV) whole instead of half of it, and a failure is one line."""
    from edge.atomic import write_text_atomic as write

    try:
        write(Path(path), text)
    except OSError as exc:
        raise BenchError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


def latest_md(out: Path, quick: bool, root: Path = RESULTS_ROOT, refresh_only: bool = False,
              manifest: Path | str | None = None) -> Path | None:
    """benchmarks/results/latest.md mirrors the README table: only a full run into that folder updates it.

    The table shows the shipped model, so a new run of another model (``manifest`` other than
    models/manifest.json: an opt-in, a candidate being weighed) is kept in its folder and leaves the
    table alone. ``refresh_only`` (re-rendering a report, adding a soak) rewrites it only when it
    already shows ``out``, so re-rendering an older run never passes that run off as the latest.
    """
    if quick or Path(out).resolve().parent != Path(root).resolve():
        return None
    if manifest is not None and Path(manifest).resolve() != SHIPPED_MANIFEST.resolve():
        return None
    latest = Path(root) / "latest.md"
    if refresh_only and not shows_run(latest, Path(out).resolve().name):
        return None
    return latest


def shows_run(latest: Path, name: str) -> bool:
    """Whether latest.md's first line names the run folder ``name`` as its source."""
    try:
        head = latest.read_text().split("\n", 1)[0]
    except OSError:
        return False
    return re.search(rf"benchmarks/results/{re.escape(name)}(/results\.json)?\. ", head) is not None


def _soak_in(folder: Path) -> dict[str, Any] | None:
    """The soak a folder holds: in its results.json, else its soak.json."""
    for name, pick in (("results.json", lambda d: d.get("soak")), ("soak.json", lambda d: d)):
        try:
            data = json.loads((Path(folder) / name).read_text())
        except (OSError, ValueError):
            continue
        soak = pick(data) if isinstance(data, dict) else None
        if isinstance(soak, dict) and soak.get("frames"):
            return soak
    return None


def same_model(soak: dict[str, Any], artifacts: dict[str, Any]) -> bool:
    """True only when the soak recorded the sha256 of an artifact this run measured, and it is that one."""
    sha = soak.get("artifact_sha256")
    return bool(sha) and (artifacts.get(soak.get("artifact"), {}) or {}).get("sha256") == sha


def carried_soak(results: dict[str, Any], candidates: list[Path]) -> dict[str, Any] | None:
    """The first candidate folder's soak of this very model, labelled as carried over; None if there is none.

    A soak of another model (or one that did not record its model) is never carried: the report
    would present another model's memory as this one's.
    """
    artifacts = results.get("manifest", {}).get("artifacts", {})
    for folder in candidates:
        soak = _soak_in(folder)
        if soak is None or not same_model(soak, artifacts):
            continue
        carried = dict(soak)
        carried.setdefault("carried_over", {"folder": display_path(folder), "measured_at": soak.get("measured_at")})
        return carried
    return None


def check_soak_target(out: Path, artifact: str, sha256: str) -> None:
    """`fer-bench soak` adds to the results in ``out`` only when they measured the same artifact file."""
    results = Path(out) / "results.json"
    if not results.is_file():
        return
    try:
        data = json.loads(results.read_text())
        measured = data["manifest"]["artifacts"]
        recorded = measured.get(artifact, {}).get("sha256")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise BenchError(f"{results} is not a fer-bench results.json: soak into another folder (--out)") from None
    if artifact not in measured:
        raise BenchError(f"{results} did not measure a {artifact} artifact: soak into another folder (--out)")
    if recorded is None:
        raise BenchError(f"{results} does not record the sha256 of its {artifact} artifact, so a soak cannot be "
                         "matched to it: soak into another folder (--out)")
    if recorded != sha256:
        raise BenchError(f"{results} measured another {artifact} (sha256 {recorded[:12]}, this one {sha256[:12]}): "
                         "soak into another folder (--out)")
