"""Debian's headless Chromium, driven from the command line (no WebDriver, no extra package): load a
page, let its scripts run for a while, and return the DOM or a screenshot.

Running as root (CI, containers) needs --no-sandbox; the other flags keep it from reaching the
network for updates, sync or QUIC, and a fresh profile per call keeps runs independent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio"]
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_binary() -> str | None:
    override = os.environ.get("FER_CHROMIUM")
    if override:
        return override
    return next((found for found in map(shutil.which, NAMES) if found), None)


def _run(url: str, extra: list[str], run_ms: int, timeout: float) -> subprocess.CompletedProcess[str]:
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="fer-chromium-") as profile:
        # virtual time runs the page's timers for run_ms while waiting for the network it needs
        command = [binary, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={run_ms}", *extra, url]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def dump_dom(url: str, run_ms: int = 4000, timeout: float = 90.0) -> str:
    """The page's DOM after its scripts ran for ``run_ms`` of page time."""
    done = _run(url, ["--dump-dom"], run_ms, timeout)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return done.stdout


def screenshot(url: str, path: Path, size: tuple[int, int] = (1280, 960), run_ms: int = 4000,
               timeout: float = 90.0) -> Path:
    """A PNG of the page after its scripts ran for ``run_ms`` of page time."""
    path = Path(path).resolve()
    done = _run(url, [f"--screenshot={path}", f"--window-size={size[0]},{size[1]}"], run_ms, timeout)
    if done.returncode != 0 or not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot ({done.returncode}): {done.stderr.strip()[-300:]}")
    return path
