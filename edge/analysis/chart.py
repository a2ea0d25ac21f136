"""The timeline chart: one row per track, time across, each column coloured by the shares of the
emotions the face showed in that slice of time. Drawn with OpenCV and numpy (no matplotlib), so it
renders on a Pi: ``analyze`` writes it for a whole video and the live view for the last minutes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

import cv2
import numpy as np

from edge.analysis.palette import colour

FONT = cv2.FONT_HERSHEY_SIMPLEX
BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)
GRID = (225, 225, 225)
TICKS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)


class Timeline:
    """Points (time, label) per track; with ``window`` seconds set, only the newest window is kept
    (the live view), otherwise everything (a whole video)."""

    def __init__(self, labels: Iterable[str], window: float | None = None) -> None:
        self.labels = tuple(labels)
        self.window = window
        self.rows: dict[int, deque[tuple[float, int]]] = {}
        self.frame_seconds = 0.0  # the typical gap between frames: how wide one point is drawn
        self.latest = 0.0

    def add(self, track_id: int, when: float, label: str, frame_seconds: float) -> None:
        if label not in self.labels:
            return
        self.rows.setdefault(track_id, deque()).append((when, self.labels.index(label)))
        self.frame_seconds = frame_seconds
        self.latest = max(self.latest, when)

    def trim(self, now: float) -> None:
        """Forget points older than the window (and tracks left with none)."""
        if self.window is None:
            return
        cutoff = now - self.window
        for track_id in list(self.rows):
            points = self.rows[track_id]
            while points and points[0][0] < cutoff:
                points.popleft()
            if not points:
                del self.rows[track_id]


def render_timeline(timeline: Timeline, start: float, end: float, width: int = 1000, max_rows: int = 24,
                    title: str = "", relative_to_end: bool = False, keep: str = "longest") -> np.ndarray:
    """The chart as a BGR image. The ``max_rows`` tracks seen longest (``keep="longest"``) or last
    (``"recent"``, the live view) are drawn, in order of appearance; the title says how many more
    there were. ``relative_to_end`` labels the axis as time before ``end`` ("-2:00 ... now")."""
    labels = timeline.labels
    rows = [(tid, list(points)) for tid, points in timeline.rows.items() if points]
    hidden = 0
    if len(rows) > max_rows:
        rank = (lambda row: -row[1][-1][0]) if keep == "recent" else (lambda row: -len(row[1]))
        kept = {tid for tid, _ in sorted(rows, key=rank)[:max_rows]}
        hidden = len(rows) - max_rows
        rows = [row for row in rows if row[0] in kept]
    rows.sort(key=lambda row: row[1][0][0])
    left, right, top, row_h, gap, bottom = 64, 16, 64, 30, 6, 36
    plot_w = max(50, width - left - right)
    height = top + max(1, len(rows)) * (row_h + gap) + bottom
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    span = max(end - start, 1e-6)

    heading = title + (f" ({hidden} {'older' if keep == 'recent' else 'shorter'} tracks not shown)"
                       if hidden else "")
    if heading:
        cv2.putText(canvas, heading, (left, 20), FONT, 0.5, INK, 1, cv2.LINE_AA)
    _legend(canvas, labels, left, 44)

    step = next((t for t in TICKS if span / t <= 10), TICKS[-1])
    first = math.ceil((start if not relative_to_end else start - end) / step) * step
    axis_y = top + max(1, len(rows)) * (row_h + gap)
    tick = first
    while tick <= (end if not relative_to_end else 0) + 1e-9:
        x = left + int(round((tick - (start if not relative_to_end else start - end)) / span * (plot_w - 1)))
        cv2.line(canvas, (x, top - 4), (x, axis_y), GRID, 1)
        text = _clock(tick, relative_to_end)
        (tw, _), _ = cv2.getTextSize(text, FONT, 0.4, 1)
        cv2.putText(canvas, text, (min(width - tw - 2, max(0, x - tw // 2)), axis_y + 18), FONT, 0.4, INK, 1,
                    cv2.LINE_AA)
        tick += step

    if not rows:
        cv2.putText(canvas, "no faces", (left + 8, top + row_h // 2 + 5), FONT, 0.5, INK, 1, cv2.LINE_AA)
    colours = np.array([colour(label, labels) for label in labels], np.uint8)
    for r, (track_id, points) in enumerate(rows):
        y0 = top + r * (row_h + gap)
        cv2.putText(canvas, f"#{track_id}", (6, y0 + row_h // 2 + 5), FONT, 0.45, INK, 1, cv2.LINE_AA)
        counts = np.zeros((plot_w, len(labels)), np.float32)
        reach = max(timeline.frame_seconds, 1e-6)
        for when, label in points:
            a = (when - start) / span * plot_w
            b = (when + reach - start) / span * plot_w
            lo, hi = max(0, int(math.floor(a))), min(plot_w, max(int(math.ceil(b)), int(math.floor(a)) + 1))
            if hi > lo:
                counts[lo:hi, label] += 1
        _draw_row(canvas, counts, colours, left, y0, row_h)
        cv2.rectangle(canvas, (left - 1, y0 - 1), (left + plot_w, y0 + row_h), GRID, 1)
    return canvas


def _draw_row(canvas: np.ndarray, counts: np.ndarray, colours: np.ndarray, left: int, y0: int, row_h: int) -> None:
    """Each column a stacked bar of label shares, the first label at the bottom."""
    totals = counts.sum(axis=1)
    for x in np.flatnonzero(totals):
        bottom = y0 + row_h
        cumulative = 0.0
        for label in np.flatnonzero(counts[x]):
            cumulative += counts[x, label] / totals[x]
            top = y0 + row_h - int(round(cumulative * row_h))
            canvas[top:bottom, left + x] = colours[label]
            bottom = top


def _legend(canvas: np.ndarray, labels: tuple[str, ...], x: int, y: int) -> None:
    for label in labels:
        cv2.rectangle(canvas, (x, y - 10), (x + 12, y + 2), colour(label, labels), cv2.FILLED)
        cv2.putText(canvas, label, (x + 16, y), FONT, 0.45, INK, 1, cv2.LINE_AA)
        (tw, _), _ = cv2.getTextSize(label, FONT, 0.45, 1)
        x += tw + 34


def _clock(seconds: float, relative: bool) -> str:
    if relative and abs(seconds) < 1e-9:
        return "now"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 60 and not relative:
        return f"{seconds:g}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}" if hours else f"{sign}{minutes}:{secs:02d}"


def encode_png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError("cannot encode the chart as PNG")
    return data.tobytes()
