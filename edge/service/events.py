"""The daemon's event log: JSON Lines appended to a size-rotated file for weeks of unattended running.

The log is the record of truth (MQTT may be down, nobody may be scraping), so it is built to
survive the things that go wrong on a Pi left alone: a full SD card, an I/O error, someone
deleting the log directory, a kill in the middle of a write. Writing never raises; failures are
counted, logged once per outage, and the file is reopened on the next write, so logging resumes
by itself once the problem goes away. Finished lines already on disk are never truncated or
rewritten; the part of a line a full disk cut short is taken back, so no torn line is left
between the events before and after an outage.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["EventLog", "dumps"]

log = logging.getLogger(__name__)


def _default(obj: Any) -> Any:
    """Encode what a model's output usually contains (numpy scalars and arrays) instead of failing.

    A ``TypeError`` for an ``np.float32`` confidence would cost an event in a log that must not
    lose them, so anything with ``tolist()`` (numpy, without importing it) becomes plain Python,
    and anything else unknown becomes its ``str()``.
    """
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    return str(obj)


def dumps(obj: Any) -> str:
    """Compact JSON, the one encoding shared by the log, MQTT payloads and the status server."""
    return json.dumps(obj, separators=(",", ":"), default=_default)


class EventLog:
    """Append-only JSON Lines file, rotated by size like ``logging.handlers.RotatingFileHandler``.

    ``events.jsonl`` is renamed to ``events.jsonl.1`` (and ``.1`` to ``.2`` ... up to ``.backups``,
    the oldest dropped) before a write that would take it past ``max_bytes``. With ``max_bytes``
    or ``backups`` at 0 the file is never rotated. Thread-safe.

    Each line goes to the kernel in one unbuffered ``write()``, so killing the process loses at
    most the line being written. There is no fsync per line: on an SD card that would cost wear
    for protection only against power loss.
    """

    def __init__(self, path: str | Path, max_bytes: int = 10_000_000, backups: int = 5) -> None:
        if max_bytes < 0 or backups < 0:
            raise ValueError(f"max_bytes and backups must be >= 0, got {max_bytes} and {backups}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.written = 0
        self.errors = 0
        self.last_error: str | None = None
        self._lost_in_outage = 0  # events refused since the last successful write (0: no outage)
        self._lock = threading.Lock()
        self._file: Any = None  # an unbuffered FileIO, or None until (re)opened
        self._size = 0
        self._closed = False
        # A failure here is not fatal either: the first write retries, and the daemon can see it
        # in ``errors``/``last_error`` (it may be the only thing still able to report it via MQTT).
        try:
            self._open()
        except OSError as exc:
            self._record(exc)

    # -- public -------------------------------------------------------------------------------

    def write(self, event: dict[str, Any]) -> bool:
        """Append one event; False (never an exception) when the disk refuses it.

        A failed write closes the file, and the next write reopens it: that is what lets the log
        recover when space comes back or the directory is recreated.
        """
        data = (dumps(event) + "\n").encode("utf-8")
        with self._lock:
            if self._closed:
                self.last_error = "event log is closed"
                return False
            try:
                if self._file is None or self._replaced():
                    self._reopen()
                if self._should_rotate(len(data)):
                    self._rotate()
                self._write_line(data)
            except OSError as exc:
                self._record(exc)
                self._close_file()
                self._lost(exc)
                return False
            self.written += 1
            if self._lost_in_outage:
                log.info("event log %s writable again; %d events lost while it was not", self.path,
                         self._lost_in_outage)
                self._lost_in_outage = 0
            return True

    def close(self) -> None:
        """Close the file; later writes return False. Safe to call more than once."""
        with self._lock:
            self._closed = True
            self._close_file()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"EventLog({str(self.path)!r}, written={self.written}, errors={self.errors}, "
                f"last_error={self.last_error!r})")

    # -- internals (called with the lock held) --------------------------------------------------

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # "a+": O_APPEND for writing, plus reading so the last byte can be checked with pread.
        f = open(self.path, "a+b", buffering=0)  # noqa: SIM115 - kept open for the log's lifetime
        try:
            info = os.fstat(f.fileno())
            self._size = info.st_size
            if stat.S_ISREG(info.st_mode) and info.st_size > 0:
                # A kill or power cut mid-line leaves a torn last line; end it, so the torn line
                # stays the only unparseable one instead of swallowing the next event too.
                if os.pread(f.fileno(), 1, info.st_size - 1) != b"\n":
                    f.write(b"\n")
                    self._size += 1
        except OSError:
            f.close()
            raise
        self._file = f

    def _reopen(self) -> None:
        self._close_file()
        self._open()

    def _replaced(self) -> bool:
        """True when the path no longer names our open file (deleted, directory removed, rotated
        by someone else): writing on would put events into an unlinked inode nobody can read."""
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return True
        mine = os.fstat(self._file.fileno())
        return (on_disk.st_dev, on_disk.st_ino) != (mine.st_dev, mine.st_ino)

    def _should_rotate(self, incoming: int) -> bool:
        if self.max_bytes <= 0 or self.backups <= 0 or self._size <= 0:
            return False
        if self._size + incoming <= self.max_bytes:
            return False
        # Never rename a device or a FIFO (e.g. /dev/full, or a pipe to another process).
        return stat.S_ISREG(os.fstat(self._file.fileno()).st_mode)

    def _rotate(self) -> None:
        """Shift ``.N-1`` to ``.N`` ... and the live file to ``.1``, then start a fresh file.

        If a rename fails the event is still appended to the current file (a log a bit over its
        size limit beats a lost event); the failure is counted so it is visible.
        """
        self._close_file()
        try:
            for i in range(self.backups - 1, 0, -1):
                src = self._backup(i)
                if src.exists():
                    os.replace(src, self._backup(i + 1))
            os.replace(self.path, self._backup(1))
        except OSError as exc:
            self._record(exc)
        self._open()

    def _backup(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def _write_line(self, data: bytes) -> None:
        """Append the whole line or nothing: a full disk takes the part of a line that fits (a
        short write) and refuses the rest, and that fragment would be glued to the first event
        written once space comes back. So on failure the file is cut back to where the line began."""
        start = self._size
        view = memoryview(data)
        try:
            while view:
                n = self._file.write(view)
                if not n:  # a raw write of 0 bytes with data left means the device took nothing
                    raise OSError(f"short write to {self.path}")
                self._size += n
                view = view[n:]
        except OSError:
            if self._size != start:
                try:
                    info = os.fstat(self._file.fileno())
                    if stat.S_ISREG(info.st_mode):
                        os.ftruncate(self._file.fileno(), start)  # frees space: works on a full disk
                        self._size = start
                except OSError:
                    pass  # the fragment stays; _open ends it with a newline before the next line
            raise

    def _lost(self, exc: OSError) -> None:
        """Say on stderr once per outage that events are being lost, not once per event."""
        if not self._lost_in_outage:
            log.error("event log %s: cannot write (%s); events are lost until it recovers", self.path,
                      exc.strerror or exc)
        self._lost_in_outage += 1

    def _record(self, exc: OSError) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"

    def _close_file(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
