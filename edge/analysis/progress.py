"""Progress for long runs: a bar with an ETA redrawn in place on a terminal, and a plain line every
tenth of the way (or every 10 s) when stderr is a log or a pipe, where ``\\r`` would be noise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int | None, label: str = "analyze", stream: TextIO | None = None,
                 tty: bool | None = None) -> None:
        self.total = total if total and total > 0 else None
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.started = time.monotonic()
        self.done = 0
        self._last_draw = 0.0
        self._next_step = 0.1
        self._last_line = self.started

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= 0.1:
                self._last_draw = now
                self.stream.write("\r" + self._bar(now))
                self.stream.flush()
            return
        fraction = done / self.total if self.total else None
        if (fraction is not None and fraction >= self._next_step) or now - self._last_line >= 10.0:
            while fraction is not None and self._next_step <= fraction:
                self._next_step += 0.1
            self._last_line = now
            print(f"{self.label}: {self._status(now)}", file=self.stream, flush=True)

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r" + self._bar(time.monotonic()) + "\n")
            self.stream.flush()

    def _rate(self, now: float) -> float:
        elapsed = now - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def _eta(self, now: float) -> str:
        rate = self._rate(now)
        if not self.total or rate <= 0:
            return "?"
        return _clock(max(0.0, (self.total - self.done) / rate))

    def _status(self, now: float) -> str:
        count = f"{self.done}/{self.total} frames ({self.done / self.total:.0%})" if self.total \
            else f"{self.done} frames"
        return f"{count}, {self._rate(now):.1f} fps, ETA {self._eta(now)}"

    def _bar(self, now: float, width: int = 30) -> str:
        filled = int(width * min(1.0, self.done / self.total)) if self.total else 0
        return f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {self._status(now)}   "


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
