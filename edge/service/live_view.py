"""The live view (``[http] live_view = true``): what the camera sees, in a browser, from the status server.

The daemon hands every frame over by reference (no copy, no encoding) and adds its faces to a
few minutes of timeline; everything costly happens only when a browser asks: the frame is drawn
and JPEG-encoded on request, at most ``live_fps`` times a second however many tabs are open, and
the timeline chart at most once a second. Nothing is written to disk. The page is one HTML file
with a few lines of plain JavaScript and no external assets, so it works on a Pi with no
internet.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from edge.analysis.chart import Timeline, encode_png, render_timeline
from edge.analysis.palette import hex_colour

if TYPE_CHECKING:
    import numpy as np

    from edge.vision.pipeline import FrameResult

JPEG_QUALITY = 75
TIMELINE_EVERY = 1.0  # seconds between redraws of the timeline chart


class LiveView:
    def __init__(self, max_fps: float = 5.0, timeline_seconds: float = 300.0) -> None:
        self.max_fps = max_fps
        self.labels: tuple[str, ...] = ()
        self.timeline = Timeline((), window=timeline_seconds)
        self.encoded = 0  # JPEGs actually encoded: stays 0 while nobody watches
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._result: FrameResult | None = None
        # the encoded frame's index, when it was encoded, its bytes, and its faces as state() words them
        self._jpeg: tuple[int, float, bytes, dict[str, Any]] | None = None
        self._chart: tuple[float, bytes] | None = None
        self._last_time = 0.0

    def set_labels(self, labels: tuple[str, ...]) -> None:
        """The model's labels (they may change on a reload): the timeline starts over with them."""
        labels = tuple(labels)
        with self._lock:
            if labels != self.labels:
                self.labels = labels
                self.timeline = Timeline(labels, window=self.timeline.window)
                self._chart = None

    def update(self, image: np.ndarray, result: FrameResult) -> None:
        """Called by the daemon for every frame: two references and a few appends."""
        gap = result.timestamp - self._last_time if self._last_time else 0.0
        self._last_time = result.timestamp
        with self._lock:
            self._image, self._result = image, result
            for face in result.faces:
                if face.track_id is not None:
                    self.timeline.add(face.track_id, result.timestamp, face.label, min(max(gap, 0.0), 1.0))
            if result.index % 64 == 0:
                self.timeline.trim(result.timestamp)

    # -- served on request ---------------------------------------------------------------------

    def jpeg(self) -> bytes | None:
        """The newest frame with boxes, labels and ids; re-encoded only for a new frame and at most
        ``max_fps`` times a second (every viewer shares the one encoding)."""
        frame = self.frame()
        return None if frame is None else frame[0]

    def frame(self) -> tuple[bytes, dict[str, Any]] | None:
        """``jpeg()`` and the state (as ``state()`` words it) of the very frame it shows: the page lists the
        faces from it, so the ids in its list are the ids drawn on the picture beside it."""
        import cv2

        from edge.analysis.drawing import draw_faces

        with self._lock:
            image, result, cached = self._image, self._result, self._jpeg
        if image is None or result is None:
            return None
        now = time.monotonic()
        if cached is not None and (cached[0] == result.index or now - cached[1] < 1.0 / self.max_fps):
            return cached[2], cached[3]
        ok, data = cv2.imencode(".jpg", draw_faces(image, result, self.labels),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            return (cached[2], cached[3]) if cached else None
        encoded = (result.index, now, data.tobytes(), self._state_of(result))
        with self._lock:
            self._jpeg = encoded
            self.encoded += 1
        return encoded[2], encoded[3]

    def state(self) -> dict[str, Any]:
        """The faces in view now (``/live.json``)."""
        with self._lock:
            result = self._result
        return self._state_of(result)

    def _state_of(self, result: FrameResult | None) -> dict[str, Any]:
        if result is None:
            return {"frame": None, "faces": [], "labels": list(self.labels)}
        return {"frame": result.index, "ts": round(result.timestamp, 3), "labels": list(self.labels),
                "colours": {label: hex_colour(label, self.labels) for label in self.labels},
                "faces": [{"id": f.track_id, "label": f.label, "score": round(f.score, 3),
                           "probs": {k: round(v, 3) for k, v in f.probs.items()}} for f in result.faces]}

    def timeline_png(self) -> bytes:
        """The last ``timeline_seconds`` per track, drawn at most once a second."""
        now = time.monotonic()
        with self._lock:
            if self._chart is not None and now - self._chart[0] < TIMELINE_EVERY:
                return self._chart[1]
            end = self._last_time or time.time()
            window = self.timeline.window or 300.0
            self.timeline.trim(end)
            span = f"{window / 60:g} minutes" if window >= 120 else f"{window:g} seconds"
            chart = render_timeline(self.timeline, end - window, end, width=620, max_rows=8,
                                    title=f"the last {span}", relative_to_end=True, keep="recent")
        data = encode_png(chart)
        with self._lock:
            self._chart = (now, data)
        return data

    def page(self) -> bytes:
        return PAGE.replace("__INTERVAL_MS__", str(int(1000 / self.max_fps))).encode("utf-8")


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>fer-edge live view</title>
<style>
body{font:15px system-ui,sans-serif;margin:0;background:#f4f4f4;color:#222}
header{background:#222;color:#fff;padding:8px 16px}header b{font-size:17px}
main{display:flex;flex-wrap:wrap;gap:16px;padding:16px}
section{background:#fff;border-radius:6px;padding:12px;box-shadow:0 1px 3px #0002}
#frame{display:block;width:640px;max-width:100%;background:#000;min-height:120px}
#faces{list-style:none;padding:0;margin:0;min-width:260px}
#faces li{padding:6px 0;border-bottom:1px solid #eee}
.bar{display:inline-block;width:120px;height:10px;background:#eee;vertical-align:middle;margin-left:6px}
.bar i{display:block;height:10px}
.dot{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:6px}
#timeline{display:block;max-width:100%}
.side{display:flex;flex-direction:column;gap:16px;flex:1;min-width:300px;max-width:660px}
h3{margin:0 0 8px 0}
small{color:#666}
</style></head>
<body>
<header><b>fer-edge</b> live view &middot; <small id="status">connecting...</small></header>
<main>
<section><img id="frame" alt="camera frame"><small>frames received: <span id="count">0</span></small></section>
<div class="side">
<section><h3>Faces in view</h3><ul id="faces"><li>none yet</li></ul></section>
<section><h3>Emotions over time</h3><img id="timeline" alt="emotion timeline"></section>
</div>
</main>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
const q = (path) => path + (token ? (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : "");
const interval = __INTERVAL_MS__;
let count = 0;
let shown = null;
const frame = document.getElementById("frame");
// each frame comes with its own faces (a header), so the list always names the ids drawn on the picture
function nextFrame() {
  fetch(q("frame.jpg?n=" + Date.now())).then((r) => {
    if (!r.ok) throw new Error(r.status === 503 ? "no frame yet" : "HTTP " + r.status);
    const state = JSON.parse(r.headers.get("X-Fer-Edge-Frame") || "null");
    return r.blob().then((blob) => [blob, state]);
  }).then(([blob, state]) => {
    if (shown) URL.revokeObjectURL(shown);
    shown = URL.createObjectURL(blob);
    frame.src = shown;
    count++; document.getElementById("count").textContent = count; document.body.dataset.frames = count;
    if (state) faces(state);
    setTimeout(nextFrame, interval);
  }).catch((e) => {
    document.getElementById("status").textContent = e instanceof TypeError ? "daemon not answering" : e.message;
    setTimeout(nextFrame, 1000);
  });
}
function faces(s) {
  const list = document.getElementById("faces");
  list.textContent = "";
  document.getElementById("status").textContent = "frame " + s.frame + ", " + s.faces.length + " face(s)";
  if (!s.faces.length) { const li = document.createElement("li"); li.textContent = "none"; list.append(li); }
  for (const f of s.faces) {
    const li = document.createElement("li");
    li.className = "face";
    const colour = (s.colours || {})[f.label] || "#888";
    li.innerHTML = '<span class="dot"></span><b></b> <span class="label"></span> ' +
      '<span class="score"></span><span class="bar"><i></i></span>';
    li.querySelector(".dot").style.background = colour;
    li.querySelector("b").textContent = f.id === null ? "face" : "#" + f.id;
    li.querySelector(".label").textContent = f.label;
    li.querySelector(".score").textContent = Math.round(f.score * 100) + "%";
    const bar = li.querySelector(".bar i");
    bar.style.width = Math.round(f.score * 100) + "%"; bar.style.background = colour;
    list.append(li);
  }
}
function timeline() {
  document.getElementById("timeline").src = q("timeline.png?n=" + Date.now());
  setTimeout(timeline, 2000);
}
nextFrame(); timeline();
</script>
</body></html>
"""
