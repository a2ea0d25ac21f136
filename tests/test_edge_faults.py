"""Fault injection against the real daemon: what an operator does to it, and what must survive.

Every test starts `python -m edge run` as a subprocess with the shipped int8 model and breaks
something the way it breaks in the field: kill -9 while it writes and rotates, SIGHUP with a
broken config, an HTTP port someone else took, a broker that comes and goes, a source file that
vanishes, a full disk, clients that hold connections or send garbage. docs/guarantees.md names
the test behind each guarantee. Waits end as soon as their condition holds; their timeouts are
generous because the machine may be busy.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.edge_helpers import CASCADE, MANIFEST, ROOT, DaemonProcess, write_face_video

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not MANIFEST.is_file(), reason="shipped model not converted yet")]

WAIT = 30.0  # seconds; every wait returns as soon as its condition holds
MODEL_LOADED = re.compile(r"^fer-edge: model .* thread\(s\)", re.MULTILINE)
REFUSED = re.compile(r"reload refused|reload failed|going back to the previous")


def refusals(log: str) -> int:
    return len(REFUSED.findall(log))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(port: int, path: str = "/healthz", method: str = "GET", timeout: float = 5.0) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def answers(port: int, path: str = "/healthz") -> bool:
    try:
        return http(port, path)[0] in (200, 503)
    except OSError:
        return False


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (OSError, ValueError, KeyError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line of an event log, each of which must parse: a torn line fails the test."""
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 frames (about 2.7 s at 15 FPS) of two real FER2013 faces on a 640x480 background."""
    return write_face_video(tmp_path_factory.mktemp("video") / "faces.mp4")


def config_text(tmp: Path, source: Path | str, port: int | None, *, events: Path | None = None,
                loop: bool = True, realtime: bool = True, extra: str = "") -> str:
    http_section = f"[http]\nenabled = true\nport = {port}\n" if port else "[http]\nenabled = false\n"
    return (f"[model]\nmanifest = '{MANIFEST}'\n[detector]\ncascade = '{CASCADE}'\n"
            f"[source]\nuri = '{source}'\nloop = {str(loop).lower()}\nrealtime = {str(realtime).lower()}\n"
            f"reopen_min_seconds = 0.2\nreopen_max_seconds = 0.5\n"
            f"[events]\npath = '{events or tmp / 'events.jsonl'}'\n{http_section}"
            f"[daemon]\nstall_seconds = 2.0\n{extra}")


class Daemon(DaemonProcess):
    """The daemon on a config written from ``text`` to ``tmp``/edge.toml."""

    def __init__(self, tmp: Path, text: str, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        config = tmp / "edge.toml"
        config.write_text(text)
        super().__init__(config, tmp, {"PYTHONPATH": str(ROOT), **(env or {})})

    def reload(self, text: str) -> None:
        self.config.write_text(text)
        self.process.send_signal(signal.SIGHUP)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def make(text: str, env: dict[str, str] | None = None) -> Daemon:
        daemon = Daemon(tmp_path, text, env)
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        daemon.stop(signal.SIGKILL, timeout=10)


def metric(port: int, name: str) -> float:
    for line in http(port, "/metrics")[1].splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def latest_frame(port: int) -> int:
    status, body = http(port, "/latest")
    return int(json.loads(body)["frame"]) if status == 200 else -1


def validate(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", "validate-config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("fer-edge: error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


# --- 1. a reload never loses the status server ------------------------------------------------

def test_a_reload_to_a_busy_port_keeps_the_status_server(face_video: Path, tmp_path: Path, start: Callable,
                                                         busy_port: int) -> None:
    port = free_port()
    good = config_text(tmp_path, face_video, port)
    daemon = start(good)
    wait_for(lambda: http(port)[0] == 200, "/healthz 200")

    daemon.reload(good.replace(f"port = {port}", f"port = {busy_port}"))
    wait_for(lambda: refusals(daemon.log()) == 1, "the refused reload in the log")
    assert http(port)[0] == 200, "the old port must keep answering"
    assert metric(port, "fer_edge_config_reloads_rejected_total") == 1
    assert metric(port, "fer_edge_config_reloads_total") == 0
    # a later good reload moves the server
    new_port = free_port()
    daemon.reload(good.replace(f"port = {port}", f"port = {new_port}"))
    wait_for(lambda: http(new_port)[0] == 200, "/healthz on the new port")
    assert not answers(port)
    assert metric(new_port, "fer_edge_config_reloads_total") == 1
    assert daemon.stop() == 0


# --- 2. a rejected reload does not touch the running pipeline ---------------------------------

def broken_configs(good: str, tmp: Path, face_video: Path, busy_port: int, port: int) -> dict[str, str]:
    corrupt = tmp / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(20_000))
    blocker = tmp / "a-file"
    blocker.write_text("not a folder")
    return {
        "TOML syntax": good + "\n[source\n",
        "unknown section": good + "\n[bogus]\n",
        "unknown key": good.replace("[daemon]", "[daemon]\nqueue_sise = 3"),
        "wrong type": good.replace("stall_seconds = 2.0", "stall_seconds = 'soon'"),
        "impossible value": good.replace("stall_seconds = 2.0", "stall_seconds = -1"),
        "missing model": good.replace(str(MANIFEST), str(tmp / "missing" / "manifest.json")),
        "missing source": good.replace(str(face_video), str(tmp / "gone.mp4")),
        "corrupt video": good.replace(str(face_video), str(corrupt)),
        "unwritable event log": good.replace(str(tmp / "events.jsonl"), str(blocker / "events.jsonl")),
        "busy HTTP port": good.replace(f"port = {port}", f"port = {busy_port}"),
    }


def test_a_rejected_reload_keeps_the_model_source_and_frame_count(face_video: Path, tmp_path: Path,
                                                                  start: Callable, busy_port: int) -> None:
    port = free_port()
    good = config_text(tmp_path, face_video, port)
    daemon = start(good)
    wait_for(lambda: latest_frame(port) >= 5, "frames")
    broken = broken_configs(good, tmp_path, face_video, busy_port, port)
    for refused, (kind, text) in enumerate(broken.items(), 1):
        before = latest_frame(port)
        daemon.reload(text)
        wait_for(lambda: refusals(daemon.log()) >= refused, f"the {kind} reload refused")
        assert refusals(daemon.log()) == refused, daemon.log()
        wait_for(lambda: latest_frame(port) != before, f"frames after the {kind} reload")
        assert latest_frame(port) > before, f"the {kind} reload restarted the source"
        assert daemon.process.poll() is None and http(port)[0] == 200, kind
    log = daemon.log()
    assert len(MODEL_LOADED.findall(log)) == 1, "a refused reload must not reload the model"
    assert "reopened" not in log, "a refused reload must not reopen the source"
    assert metric(port, "fer_edge_config_reloads_rejected_total") == len(broken)
    assert metric(port, "fer_edge_config_reloads_total") == 0
    # an accepted reload that leaves model and source alone keeps them too
    before = latest_frame(port)
    daemon.reload(good.replace("[daemon]", "[tracker]\ndetect_every = 2\n[daemon]"))
    wait_for(lambda: metric(port, "fer_edge_config_reloads_total") == 1, "the applied reload")
    wait_for(lambda: latest_frame(port) > before, "frames after the applied reload")
    assert len(MODEL_LOADED.findall(daemon.log())) == 1
    # one that changes the model builds the new pipeline first, then swaps
    daemon.reload(good.replace("[model]", "[model]\nthreads = 2"))
    wait_for(lambda: metric(port, "fer_edge_config_reloads_total") == 2, "the model reload")
    assert len(MODEL_LOADED.findall(daemon.log())) == 2
    assert daemon.stop() == 0
    assert jsonl(tmp_path / "events.jsonl")


def test_a_reload_reloads_a_model_replaced_under_the_same_path(face_video: Path, tmp_path: Path,
                                                               start: Callable) -> None:
    models = tmp_path / "models"
    shutil.copytree(MANIFEST.parent, models, ignore=shutil.ignore_patterns("*.keras", "*.onnx", "demo", "checkpoints",
                                                                           "mnv2", "views*", "*_eval"))
    port = free_port()
    text = config_text(tmp_path, face_video, port).replace(str(MANIFEST), str(models / "manifest.json"))
    daemon = start(text)
    wait_for(lambda: http(port)[0] == 200, "/healthz 200")
    daemon.reload(text)  # nothing changed: nothing is rebuilt
    wait_for(lambda: metric(port, "fer_edge_config_reloads_total") == 1, "the first reload")
    assert len(MODEL_LOADED.findall(daemon.log())) == 1
    manifest = models / "manifest.json"
    manifest.write_text(manifest.read_text())  # a new release of the model, same path
    os.utime(manifest, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    daemon.reload(text)
    wait_for(lambda: metric(port, "fer_edge_config_reloads_total") == 2, "the second reload")
    assert len(MODEL_LOADED.findall(daemon.log())) == 2
    assert daemon.stop() == 0


# --- 3. validate-config refuses what run refuses ----------------------------------------------

@pytest.mark.parametrize("problem", ["corrupt video", "truncated video", "busy HTTP port"])
def test_validate_config_refuses_what_run_refuses(problem: str, face_video: Path, tmp_path: Path,
                                                  busy_port: int) -> None:
    source, port = face_video, free_port()
    if problem == "corrupt video":
        source = tmp_path / "corrupt.mp4"
        source.write_bytes(os.urandom(50_000))
    elif problem == "truncated video":
        source = tmp_path / "truncated.mp4"
        data = face_video.read_bytes()
        source.write_bytes(data[: len(data) // 2])
    else:
        port = busy_port
    config = tmp_path / "edge.toml"
    config.write_text(config_text(tmp_path, source, port, loop=False))
    checked = validate(config)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    line = one_error_line(checked.stderr)
    assert ("in use" in line) if problem == "busy HTTP port" else ("video" in line), line
    ran = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(config)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 2, ran.stderr
    one_error_line(ran.stderr)


def test_validate_config_accepts_the_port_of_the_running_daemon(face_video: Path, tmp_path: Path,
                                                                 start: Callable) -> None:
    """Users validate before `systemctl reload`, while the daemon holds the port: that is fine."""
    port = free_port()
    daemon = start(config_text(tmp_path, face_video, port))
    wait_for(lambda: answers(port), "the status server")
    checked = validate(daemon.config)
    assert checked.returncode == 0, checked.stderr
    assert daemon.stop() == 0


# --- 4. a full disk never leaves a torn line --------------------------------------------------

ENOSPC_SHIM = """
import builtins, errno, os

_open = builtins.open
FULL = {full!r}


class _FillingFile:
    # The event log on a disk that is full while FULL exists: the first write after opening
    # takes 5 bytes (a short write, as the kernel does with the last free blocks), then ENOSPC.

    def __init__(self, real):
        self._real, self._cut = real, False

    def write(self, data):
        if not os.path.exists(FULL):
            return self._real.write(data)
        if not self._cut:
            self._cut = True
            return self._real.write(bytes(data[:5]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._real, name)


def open(file, *args, **kwargs):
    real = _open(file, *args, **kwargs)
    return _FillingFile(real) if str(file).endswith("events.jsonl") else real


builtins.open = open
"""


class FullDisk:
    """A disk the test fills and frees: a 64 KiB tmpfs (real short writes, then ENOSPC; needs
    root), or, without root, the same failure injected into the daemon's writes by a shim."""

    def __init__(self, tmp: Path, kind: str) -> None:
        self.kind = kind
        self.folder = tmp / "disk"
        self.folder.mkdir()
        self.env: dict[str, str] = {}
        self.flag = tmp / "disk-is-full"
        if kind == "tmpfs":
            if os.geteuid() != 0 or not shutil.which("mount"):
                pytest.skip("a tiny tmpfs needs root; the injected variant covers this case")
            made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(self.folder)],
                                  capture_output=True)
            if made.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
        else:
            shim = tmp / "shim"
            shim.mkdir()
            (shim / "sitecustomize.py").write_text(ENOSPC_SHIM.format(full=str(self.flag)))
            self.env = {"PYTHONPATH": f"{shim}{os.pathsep}{ROOT}"}

    def fill(self) -> None:
        if self.kind != "tmpfs":
            self.flag.touch()
            return
        fd = os.open(self.folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # take every free byte: the next lines hit a full disk
            while os.write(fd, b"\0" * 512):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)

    def free(self) -> None:
        (self.folder / "filler" if self.kind == "tmpfs" else self.flag).unlink()

    def close(self) -> None:
        if self.kind == "tmpfs":
            subprocess.run(["umount", "-l", str(self.folder)], check=False)


@pytest.fixture(params=["tmpfs", "injected ENOSPC"])
def full_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FullDisk]:
    disk = FullDisk(tmp_path, request.param)
    try:
        yield disk
    finally:
        disk.close()


def test_a_full_disk_leaves_no_torn_line_and_is_logged_once(face_video: Path, tmp_path: Path, start: Callable,
                                                            full_disk: FullDisk) -> None:
    port = free_port()
    log = full_disk.folder / "events.jsonl"
    daemon = start(config_text(tmp_path, face_video, port, events=log, realtime=False)
                   .replace("[events]", "[events]\nmax_bytes = 100000000\nbackups = 0"), env=full_disk.env)
    wait_for(lambda: log.exists() and log.stat().st_size > 2000, "some events")
    full_disk.fill()
    wait_for(lambda: http(port)[0] == 503, "degraded by the event log")
    failing = metric(port, "fer_edge_event_write_errors_total")
    wait_for(lambda: metric(port, "fer_edge_event_write_errors_total") > failing + 20, "more failed writes")
    full_disk.free()  # space comes back
    wait_for(lambda: http(port)[0] == 200, "healthy again")
    written = metric(port, "fer_edge_events_total")
    wait_for(lambda: metric(port, "fer_edge_events_total") > written + 5, "events after the outage")
    assert daemon.stop() == 0
    events = jsonl(log)  # every line parses
    assert events and log.read_bytes().endswith(b"\n")
    # once per outage: "cannot write" and "writable again" alternate. On tmpfs the log's own last page
    # may still take a short line after the filler took every free page, which ends one outage early.
    states = [("down" if "cannot write" in line else "up") for line in daemon.log().splitlines()
              if "event log" in line and ("cannot write" in line or "writable again" in line)]
    assert states and states == ["down", "up"] * (len(states) // 2), daemon.log()
    if full_disk.kind != "tmpfs":
        assert states == ["down", "up"], daemon.log()


# --- 5 is `fer-edge detect` (tests/test_edge_detect.py); 6. HTTP under load ---------------------

def test_fifty_concurrent_clients_and_head_all_get_answers(face_video: Path, tmp_path: Path, start: Callable) -> None:
    port = free_port()
    daemon = start(config_text(tmp_path, face_video, port, realtime=False))
    wait_for(lambda: http(port)[0] == 200, "/healthz 200")
    assert http(port, "/healthz", method="HEAD")[0] == 200

    def probe(_: int) -> int:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            reply = b""
            while b"\r\n" not in reply:
                chunk = sock.recv(256)
                if not chunk:
                    break
                reply += chunk
            return int(reply.split()[1])

    barrier = threading.Barrier(50)

    def together(i: int) -> int:
        barrier.wait()
        return probe(i)

    with ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(together, range(50)))
    assert codes.count(200) + codes.count(503) == 50
    assert daemon.stop() == 0


def test_slow_and_hostile_clients_do_not_starve_health_checks(face_video: Path, tmp_path: Path,
                                                              start: Callable) -> None:
    port = free_port()
    daemon = start(config_text(tmp_path, face_video, port))
    wait_for(lambda: http(port)[0] == 200, "/healthz 200")
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]  # connect, say nothing
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"GET /heal")  # half a request line, then silence
    hostile = [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),  # a TLS hello
               b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",  # an endless request line
               b"GET /healthz HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",  # too many headers
               b"\x00" * 100 + b"\r\n\r\n"]
    for payload in hostile:  # each gets an error or is dropped when its 10 s request timeout ends
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            try:
                sock.sendall(payload)
                sock.recv(1024)
            except OSError:
                pass
    with socket.create_connection(("127.0.0.1", port)) as rude:  # asks, then hangs up before the answer
        rude.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    started = time.monotonic()
    assert http(port)[0] == 200
    assert time.monotonic() - started < 8, "a health check waited behind idle clients (their timeout is 10 s)"
    for sock in [*idle, slow]:
        sock.close()
    assert daemon.process.poll() is None
    assert "Traceback" not in daemon.log()
    assert daemon.stop() == 0


# --- what already held ------------------------------------------------------------------------

def test_kill_9_mid_write_with_rotation_loses_no_finished_line(face_video: Path, tmp_path: Path,
                                                               start: Callable) -> None:
    log = tmp_path / "events.jsonl"
    text = config_text(tmp_path, face_video, None, realtime=False).replace(
        "[events]", "[events]\nmax_bytes = 4096\nbackups = 3\nonly_with_faces = false")
    daemon = start(text)
    rng = random.Random(55)
    files = [log, *(log.with_name(f"events.jsonl.{i}") for i in (1, 2, 3))]
    for cycle in range(4):
        mark = (log.stat().st_ino, log.stat().st_size) if log.exists() else None
        wait_for(lambda: log.exists() and (log.stat().st_ino, log.stat().st_size) != mark, "writing")
        time.sleep(rng.uniform(0.2, 1.0))
        daemon.stop(signal.SIGKILL)
        for path in files:  # a kill -9 mid-write tears no line, in the live file or a backup
            jsonl(path)
        if cycle < 3:
            daemon.restart()
    assert len([p for p in files if p.exists()]) == 4  # rotation kept its 3 backups
    for path in files:
        assert path.stat().st_size <= 4096 + 1024


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_flush_every_event_and_exit_0(sig: int, face_video: Path, tmp_path: Path,
                                                         start: Callable) -> None:
    port = free_port()
    text = config_text(tmp_path, face_video, port).replace("[events]", "[events]\nonly_with_faces = false")
    daemon = start(text)
    wait_for(lambda: latest_frame(port) >= 10, "frames")
    assert daemon.stop(sig) == 0
    summary = daemon.stdout.read_text()
    events = int(re.search(r"(\d+) events", summary).group(1))  # type: ignore[union-attr]
    assert events >= 10 and len(jsonl(tmp_path / "events.jsonl")) == events


def test_broker_down_then_up_keeps_the_event_log_complete(face_video: Path, tmp_path: Path, start: Callable) -> None:
    from tests.mqtt_broker import MosquittoBroker, Subscriber, require_mosquitto

    require_mosquitto()
    broker_port, port = free_port(), free_port()
    text = config_text(tmp_path, face_video, port, extra=f"[mqtt]\nenabled = true\nport = {broker_port}\n"
                       "topic_prefix = 'cam'\nkeepalive = 5\n").replace("[events]", "[events]\nonly_with_faces = false")
    daemon = start(text)
    wait_for(lambda: latest_frame(port) >= 5, "frames while the broker is down")
    with MosquittoBroker(broker_port), Subscriber("127.0.0.1", broker_port, "cam/#") as subscriber:
        subscriber.wait_for("cam/availability", "online", timeout=WAIT)
        subscriber.wait_for("cam/events", timeout=WAIT)
    wait_for(lambda: json.loads(http(port)[1])["mqtt_connected"] is False, "the broker gone again")
    with MosquittoBroker(broker_port), Subscriber("127.0.0.1", broker_port, "cam/#") as subscriber:
        subscriber.wait_for("cam/events", timeout=WAIT)
        assert daemon.stop() == 0
    frames = [event["frame"] for event in jsonl(tmp_path / "events.jsonl")]
    assert frames == list(range(frames[0], frames[0] + len(frames))), "the log skipped frames"


def test_a_source_deleted_and_restored_is_reopened(face_video: Path, tmp_path: Path, start: Callable) -> None:
    port = free_port()
    video = tmp_path / "clip.mp4"
    shutil.copy(face_video, video)
    daemon = start(config_text(tmp_path, video, port, realtime=False))
    wait_for(lambda: http(port)[0] == 200, "/healthz 200")
    video.rename(tmp_path / "aside.mp4")
    wait_for(lambda: http(port)[0] == 503, "degraded while the source is gone")
    assert "source" in json.loads(http(port)[1])["reason"]
    (tmp_path / "aside.mp4").rename(video)
    wait_for(lambda: http(port)[0] == 200, "healthy once the source is back")
    assert metric(port, "fer_edge_source_reopens_total") >= 1
    assert daemon.stop() == 0
