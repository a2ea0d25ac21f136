"""A real mosquitto broker for tests, and a subscriber that records what it receives.

Import the fixtures into a test module (``from tests.mqtt_broker import mqtt_broker``) or use
``MosquittoBroker`` directly when a test needs to start a broker late, on a chosen port.

Without the mosquitto binary the tests skip, unless ``FER_REQUIRE_MOSQUITTO=1`` (set in CI),
which turns the skip into a failure so the real broker is always exercised there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

HOST = "127.0.0.1"
# Generous: a wait ends as soon as its condition holds, and a machine busy training (or a CI runner
# sharing its cores) can take seconds to schedule the broker or the paho thread.
START_TIMEOUT = 15.0
WAIT_TIMEOUT = 15.0


def mosquitto_binary() -> str | None:
    """The broker executable, from PATH or Debian's /usr/sbin (not on a normal user's PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def require_mosquitto() -> str:
    """The binary's path, or skip the test (fail it if FER_REQUIRE_MOSQUITTO=1)."""
    binary = mosquitto_binary()
    if binary is None:
        message = "mosquitto not installed (apt-get install mosquitto); needed for the MQTT tests"
        if os.environ.get("FER_REQUIRE_MOSQUITTO") == "1":
            pytest.fail(message + " and FER_REQUIRE_MOSQUITTO=1", pytrace=False)
        pytest.skip(message)
    return binary


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it, so parallel runs do not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_TIMEOUT, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; returns whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class MosquittoBroker:
    """A throwaway mosquitto on 127.0.0.1: anonymous, no persistence, its own config and log."""

    def __init__(self, port: int | None = None, binary: str | None = None) -> None:
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.binary = binary or require_mosquitto()
        self._dir = Path(tempfile.mkdtemp(prefix="fer-mosquitto-"))
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MosquittoBroker:
        config = self._dir / "mosquitto.conf"
        config.write_text(f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n")
        log = open(self._dir / "mosquitto.log", "wb")  # a file, not a pipe nobody drains
        with log:
            self._proc = subprocess.Popen([self.binary, "-c", str(config)], stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self._proc.returncode}: {self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {START_TIMEOUT}s: {self.log()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=START_TIMEOUT)

    def log(self) -> str:
        path = self._dir / "mosquitto.log"
        return path.read_text(errors="replace").strip() if path.exists() else ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: str
    retain: bool
    qos: int


class Subscriber:
    """A paho client that records every message on ``topic`` so tests can wait for one."""

    def __init__(self, host: str, port: int, topic: str = "#") -> None:
        import paho.mqtt.client as mqtt

        self.topic = topic
        self.messages: list[Received] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.on_message = self._on_message
        self._host, self._port = host, port

    def start(self) -> Subscriber:
        self._client.connect(self._host, self._port, keepalive=10)
        self._client.loop_start()
        if not self._subscribed.wait(WAIT_TIMEOUT):
            self.stop()
            raise TimeoutError(f"subscriber did not get a SUBACK for {self.topic!r} within {WAIT_TIMEOUT}s")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def wait_for(self, topic: str, payload: str | None = None, timeout: float = WAIT_TIMEOUT) -> Received:
        """The first message (already received or still to come) on ``topic`` matching ``payload``."""
        def match() -> Received | None:
            for message in self.messages:
                if message.topic == topic and (payload is None or message.payload == payload):
                    return message
            return None

        deadline = time.monotonic() + timeout
        with self._changed:
            while (found := match()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no message on {topic!r} with payload {payload!r} within "
                                         f"{timeout}s; got {self.messages}")
                self._changed.wait(remaining)
        return found

    def payloads(self, topic: str) -> list[str]:
        with self._changed:
            return [m.payload for m in self.messages if m.topic == topic]

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        received = Received(message.topic, message.payload.decode("utf-8", "replace"),
                            bool(message.retain), int(message.qos))
        with self._changed:
            self.messages.append(received)
            self._changed.notify_all()

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@pytest.fixture
def mqtt_broker() -> Iterator[tuple[str, int]]:
    """A fresh broker per test (so retained messages never leak between tests): (host, port)."""
    with MosquittoBroker() as broker:
        yield broker.host, broker.port


@pytest.fixture
def subscribe(mqtt_broker: tuple[str, int]) -> Iterator[Callable[[str], Subscriber]]:
    """Factory for started subscribers on the test's broker, all stopped at teardown."""
    started: list[Subscriber] = []

    def make(topic: str = "#") -> Subscriber:
        subscriber = Subscriber(*mqtt_broker, topic=topic).start()
        started.append(subscriber)
        return subscriber

    yield make
    for subscriber in started:
        subscriber.stop()
