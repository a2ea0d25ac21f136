"""The live view of a daemon running on the demo clip, in headless Chromium: the test's page check and
docs/images/live-view.png both come from here."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "edge" / "configs" / "demo.toml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def demo_daemon(workdir: Path, token: str = "", timeline_minutes: float = 0.5,
                python: str = sys.executable) -> Iterator[str]:
    """``fer-edge run`` on the demo clip looped at its own frame rate with the live view on; yields
    its base URL once /healthz says ok, and stops it with SIGTERM after."""
    port = free_port()
    overrides = ["source.loop=true", "source.realtime=true", f"http.port={port}", "http.live_view=true",
                 f"http.timeline_minutes={timeline_minutes}", "events.print=false"]
    if token:
        overrides.append(f"http.token={token}")
    command = [python, "-m", "edge", "run", "--config", str(DEMO_CONFIG), "--events", str(workdir / "events.jsonl")]
    for override in overrides:
        command += ["--set", override]
    log = open(workdir / "daemon.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the daemon exited: {(workdir / 'daemon.log').read_text()[-500:]}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    if json.loads(response.read()).get("status") == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the daemon's /healthz never said ok")
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def screenshot_live_view(path: Path, warmup: float = 12.0) -> Path:
    """docs/images/live-view.png: the page after ``warmup`` seconds of the demo clip (so the
    timeline has a few rows), as a PNG."""
    from tests.chromium import screenshot

    with tempfile.TemporaryDirectory() as tmp, demo_daemon(Path(tmp)) as url:
        time.sleep(warmup)
        return screenshot(f"{url}/", path, size=(1280, 600), run_ms=5000)
