"""The live view: the page, its frames and faces, the token, and a real browser on a real daemon.

The browser test loads the page in Debian's headless Chromium from ``fer-edge run`` on the demo
clip; it skips without chromium unless FER_REQUIRE_CHROMIUM=1 (set by .ci/run, which installs it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import load_config
from edge.errors import ConfigError
from edge.service.live_view import LiveView
from edge.service.status_server import StatusServer
from edge.vision.faces import Box
from edge.vision.pipeline import Face, FrameResult
from tests.edge_helpers import MANIFEST, ROOT
from tests.chromium import chromium_binary

LABELS = ("angry", "happy", "neutral")
TOKEN = "s3cret-token"


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def result(index: int, label: str = "happy", track_id: int = 3) -> FrameResult:
    probs = {name: (0.8 if name == label else 0.1) for name in LABELS}
    return FrameResult(index, 1000.0 + index / 10, (Face(Box(40, 30, 80, 80), label, 0.8, probs, track_id),))


def serve(live: LiveView | None, token: str = "") -> StatusServer:
    server = StatusServer("127.0.0.1", 0, lambda: {"status": "ok"}, lambda: "up 1\n", lambda: None, live, token)
    server.start()
    return server


def test_nothing_is_encoded_until_someone_asks_and_then_at_most_live_fps() -> None:
    live = LiveView(max_fps=2.0)
    live.set_labels(LABELS)
    image = np.full((240, 320, 3), 128, np.uint8)
    for index in range(50):
        live.update(image, result(index))
    assert live.encoded == 0  # frames only referenced, no JPEG made
    first = live.jpeg()
    live.update(image, result(50))
    again = live.jpeg()  # a newer frame, but within 1/max_fps of the last encoding: the same JPEG
    assert live.encoded == 1 and again == first
    decoded = cv2.imdecode(np.frombuffer(first, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (240, 320, 3)
    assert not np.all(decoded == decoded[0, 0])  # the box and label are drawn


def test_a_frame_comes_with_the_faces_drawn_on_it_not_a_newer_frames() -> None:
    """The page lists the faces from the frame's own header: a list polled apart from the picture named
    ids the picture did not show whenever the faces changed between the two requests."""
    live = LiveView(max_fps=0.5)  # the first encoding is served for two seconds
    live.set_labels(LABELS)
    image = np.zeros((120, 160, 3), np.uint8)
    live.update(image, result(0, "happy", track_id=11))
    first, state = live.frame()
    live.update(image, result(1, "angry", track_id=13))
    again, state_again = live.frame()
    assert again == first and state_again == state  # the same picture, so the same faces
    assert (state["frame"], [f["id"] for f in state["faces"]]) == (0, [11])
    assert (live.state()["frame"], [f["id"] for f in live.state()["faces"]]) == (1, [13])  # /live.json: now


def test_the_page_is_self_contained_and_serves_frames_faces_and_timeline() -> None:
    live = LiveView()
    live.set_labels(LABELS)
    live.update(np.zeros((120, 160, 3), np.uint8), result(0, "neutral", 9))
    server = serve(live)
    try:
        status, kind, page = get(f"{server.url}/")
        assert status == 200 and kind.startswith("text/html")
        text = page.decode()
        assert "<script src" not in text and "<link" not in text and not re.search(r"(src|href)=\"?https?:", text)
        assert 'fetch(q("frame.jpg' in text and "X-Fer-Edge-Frame" in text and "timeline.png" in text
        with urllib.request.urlopen(f"{server.url}/frame.jpg", timeout=5) as response:
            assert response.headers["Content-Type"] == "image/jpeg"
            with_the_frame = json.loads(response.headers["X-Fer-Edge-Frame"])
        state = json.loads(get(f"{server.url}/live.json")[2])
        assert with_the_frame == state
        assert state["faces"] == [{"id": 9, "label": "neutral", "score": 0.8,
                                   "probs": {"angry": 0.1, "happy": 0.1, "neutral": 0.8}}]
        status, kind, png = get(f"{server.url}/timeline.png")
        assert status == 200 and kind == "image/png" and png.startswith(b"\x89PNG")
    finally:
        server.stop()


def test_without_live_view_there_is_no_page() -> None:
    server = serve(None)
    try:
        assert get(f"{server.url}/")[0] == 404 and get(f"{server.url}/frame.jpg")[0] == 404
    finally:
        server.stop()


def test_a_token_guards_everything_but_healthz() -> None:
    live = LiveView()
    live.set_labels(LABELS)
    server = serve(live, TOKEN)
    try:
        for path in ("/", "/frame.jpg", "/live.json", "/metrics", "/latest"):
            assert get(f"{server.url}{path}")[0] == 401
            assert get(f"{server.url}{path}?token=wrong")[0] == 401
            assert get(f"{server.url}{path}", {"Authorization": "Bearer nope"})[0] == 401
        assert get(f"{server.url}/?token={TOKEN}")[0] == 200
        assert get(f"{server.url}/metrics", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert get(f"{server.url}/healthz")[0] == 200
    finally:
        server.stop()


def test_a_live_view_beyond_loopback_without_a_token_is_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set http.token"):
        load_config(None, ["http.live_view=true", "http.host=0.0.0.0"])
    assert load_config(None, ["http.live_view=true", "http.host=0.0.0.0", f"http.token={TOKEN}"]).http.live_view
    assert load_config(None, ["http.live_view=true"]).http.host == "127.0.0.1"
    with pytest.raises(ConfigError, match="needs http.enabled"):
        load_config(None, ["http.live_view=true", "http.enabled=false"])
    done = subprocess.run([sys.executable, "-m", "edge", "run", "--set", "http.live_view=true",
                           "--set", "http.host=0.0.0.0", "--source", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "set http.token" in done.stderr, done.stderr


def require_chromium() -> None:
    if chromium_binary() is None:
        message = "chromium not installed (apt-get install chromium); needed for the live view browser test"
        if os.environ.get("FER_REQUIRE_CHROMIUM") == "1":
            pytest.fail(message + " and FER_REQUIRE_CHROMIUM=1", pytrace=False)
        pytest.skip(message)


@pytest.mark.slow
@pytest.mark.skipif(not MANIFEST.is_file(), reason="shipped model missing")
def test_chromium_shows_frames_and_faces_from_a_daemon_on_the_demo_clip(tmp_path: Path) -> None:
    require_chromium()
    from tests.chromium import dump_dom, screenshot
    from tests.live_view_shot import demo_daemon

    labels = json.loads(MANIFEST.read_text())["labels"]
    def encoded(url: str) -> float:
        metrics = get(f"{url}/metrics", {"Authorization": f"Bearer {TOKEN}"})[2].decode()
        return float(re.search(r"^fer_edge_live_view_frames_encoded (\S+)$", metrics, re.M).group(1))

    with demo_daemon(tmp_path, token=TOKEN) as url:
        assert get(f"{url}/")[0] == 401
        assert encoded(url) == 0  # running, nobody watching: not one JPEG made
        dom = dump_dom(f"{url}/?token={TOKEN}", run_ms=4000)
        shot = screenshot(f"{url}/?token={TOKEN}", tmp_path / "live-view.png", run_ms=3000)
        made = encoded(url)
    assert "<title>fer-edge live view</title>" in dom
    received = int(re.search(r'id="count">(\d+)<', dom).group(1))
    assert received >= 3, dom[-2000:]  # the page kept asking for frames and they kept arriving
    faces = re.findall(r'<li class="face">.*?<b>#(\d+)</b> <span class="label">(\w+)</span>', dom)
    assert faces and all(label in labels for _, label in faces)
    # new frames were drawn for the browser as the clip played (page timers run on virtual time, faster
    # than the clip, so several requests share one encoding: live_fps caps them)
    assert 2 <= made <= received + 10  # the screenshot's page asked for some too
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (960, 1280)
    assert image[60:540, 20:660].std() > 10  # the camera frame, not an empty box


@pytest.mark.skipif(not MANIFEST.is_file(), reason="shipped model missing")
def test_a_live_view_on_a_port_in_use_is_one_line_exit_2() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        clip = ROOT / "models" / "demo" / "demo_clip.mp4"
        done = subprocess.run([sys.executable, "-m", "edge", "run", "--source", str(clip),
                               "--set", "http.live_view=true", "--set", f"http.port={port}",
                               "--set", "events.path=/dev/null"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("fer-edge: error:")]
    assert len(errors) == 1 and f"cannot listen on 127.0.0.1:{port}" in errors[0], done.stderr
    assert "Traceback" not in done.stderr


def test_the_mjpeg_stream_sends_jpeg_parts_at_live_fps_and_ends_when_the_server_stops() -> None:
    import threading
    import time

    from edge.service.status_server import BOUNDARY, MAX_STREAMS

    live = LiveView(max_fps=10.0)
    live.set_labels(LABELS)
    image = np.full((120, 160, 3), 90, np.uint8)
    live.update(image, result(0))
    server = serve(live)
    feeding = threading.Event()

    def feed() -> None:  # a camera at 30 fps while the stream is read
        index = 1
        while not feeding.wait(1 / 30):
            live.update(image, result(index))
            index += 1

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        response = urllib.request.urlopen(f"{server.url}/stream.mjpg", timeout=5)
        assert response.headers["Content-Type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        started = time.monotonic()
        parts = []
        for _ in range(6):
            assert response.readline() == f"--{BOUNDARY}\r\n".encode()
            headers = {}
            while (line := response.readline()) != b"\r\n":
                key, _, value = line.decode().partition(":")
                headers[key] = value.strip()
            assert headers["Content-Type"] == "image/jpeg"
            parts.append(response.read(int(headers["Content-Length"])))
            response.readline()
        elapsed = time.monotonic() - started
        assert all(cv2.imdecode(np.frombuffer(part, np.uint8), cv2.IMREAD_COLOR) is not None for part in parts)
        assert elapsed >= 0.4  # 6 parts at 10 fps: capped, though the camera gives 30
        others = [urllib.request.urlopen(f"{server.url}/stream.mjpg", timeout=5) for _ in range(MAX_STREAMS - 1)]
        assert get(f"{server.url}/stream.mjpg")[0] == 503  # one stream too many
        stopping = time.monotonic()
        server.stop()
        assert time.monotonic() - stopping < 3
        for stream in [response, *others]:
            stream.close()
    finally:
        feeding.set()
        server.stop()
