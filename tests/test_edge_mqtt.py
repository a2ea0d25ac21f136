"""MqttPublisher against a real mosquitto: availability, events, broker outages, last will."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.errors import ConfigError, EdgeError
from edge.service.mqtt import MqttPublisher
from tests.mqtt_broker import (  # noqa: F401 - fixtures are used by name
    MosquittoBroker,
    Subscriber,
    free_port,
    mqtt_broker,
    subscribe,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[1]
AVAILABILITY = "fer-edge/availability"
EVENTS = "fer-edge/events"


@pytest.fixture
def make_publisher() -> Iterator[Callable[..., MqttPublisher]]:
    """Publishers with fast backoff, always stopped at teardown so no paho thread outlives a test."""
    made: list[MqttPublisher] = []

    def make(host: str, port: int, **kwargs: object) -> MqttPublisher:
        kwargs = {"min_backoff": 0.2, "max_backoff": 1.0, **kwargs}
        publisher = MqttPublisher(host, port, **kwargs)  # type: ignore[arg-type]
        made.append(publisher)
        return publisher

    yield make
    for publisher in made:
        publisher.stop()


def test_connects_announces_online_retained_and_publishes_events_as_json(
        mqtt_broker: tuple[str, int], subscribe: Callable[[str], Subscriber],
        make_publisher: Callable[..., MqttPublisher]) -> None:
    publisher = make_publisher(*mqtt_broker)
    publisher.start()
    assert publisher.wait_connected(15.0)

    # Subscribing after the fact still sees "online": it is retained. The first watcher may subscribe
    # before the broker has the message (then it arrives live, retain unset), so once it has arrived
    # a second watcher checks the broker kept it.
    watcher = subscribe("fer-edge/#")
    watcher.wait_for(AVAILABILITY, "online")
    online = subscribe("fer-edge/availability").wait_for(AVAILABILITY, "online")
    assert online.retain

    assert publisher.publish_event({"emotion": "happy", "score": 0.9, "face": [1, 2, 3, 4]})
    event = watcher.wait_for(EVENTS)
    assert json.loads(event.payload) == {"emotion": "happy", "score": 0.9, "face": [1, 2, 3, 4]}
    assert not event.retain
    assert (publisher.published, publisher.dropped, publisher.connects) == (1, 0, 1)


def test_publish_sends_strings_verbatim_and_dicts_as_compact_json_under_the_prefix(
        mqtt_broker: tuple[str, int], subscribe: Callable[[str], Subscriber],
        make_publisher: Callable[..., MqttPublisher]) -> None:
    publisher = make_publisher(*mqtt_broker, topic_prefix="lab/pi1/")
    publisher.start()
    assert publisher.wait_connected(15.0)
    watcher = subscribe("lab/pi1/#")

    assert publisher.publish("status", "warming up")
    assert publisher.publish("stats", {"fps": 9.5}, retain=True)
    assert watcher.wait_for("lab/pi1/status").payload == "warming up"
    assert watcher.wait_for("lab/pi1/stats").payload == '{"fps":9.5}'
    assert watcher.wait_for("lab/pi1/availability").payload == "online"


def test_broker_down_at_start_drops_events_then_connects_when_the_broker_appears(
        make_publisher: Callable[..., MqttPublisher]) -> None:
    port = free_port()  # nothing listens here yet
    publisher = make_publisher("127.0.0.1", port)
    publisher.start()  # neither blocks nor raises

    assert not publisher.connected
    assert publisher.publish_event({"emotion": "sad"}) is False
    assert (publisher.published, publisher.dropped) == (0, 1)
    assert wait_until(lambda: publisher.last_error is not None, timeout=10.0)

    with MosquittoBroker(port) as broker, Subscriber(broker.host, broker.port, "fer-edge/#") as watcher:
        # Backoff is capped at 1 s, so the next attempt comes within about a second (10 s allows for a
        # busy machine; the default cap of 60 s would still be far off).
        assert publisher.wait_connected(10.0)
        watcher.wait_for(AVAILABILITY, "online")
        assert publisher.publish_event({"emotion": "surprise"})
        assert json.loads(watcher.wait_for(EVENTS).payload) == {"emotion": "surprise"}
        assert (publisher.published, publisher.dropped) == (1, 1)


def test_a_missing_broker_is_one_line_naming_it_per_change_not_one_per_attempt(
        make_publisher: Callable[..., MqttPublisher], caplog: pytest.LogCaptureFixture) -> None:
    """paho says "Client is not connected. Socket: None). Last known Connection State: ..." on every
    retry, with neither host nor port; the log gets ours instead, once per change of state."""
    import logging

    caplog.set_level(logging.DEBUG, logger="edge.service.mqtt")
    port = free_port()
    publisher = make_publisher("127.0.0.1", port)
    publisher.start()
    assert wait_until(lambda: publisher.failed_attempts >= 3, timeout=15.0)

    def shown() -> list[str]:  # what the daemon prints at its default level (info)
        return [record.getMessage() for record in caplog.records if record.levelno >= logging.INFO]

    assert shown() == [f"MQTT broker 127.0.0.1:{port} is not reachable (Connection refused); retrying in 0.2 s, "
                       "then at most every 1 s (events still go to the event log)"]
    assert any("not connected" in record.getMessage() for record in caplog.records)  # paho's, at debug only
    with MosquittoBroker(port):
        assert publisher.wait_connected(10.0)
        assert wait_until(lambda: f"MQTT connected to 127.0.0.1:{port}" in shown(), timeout=5.0)
    assert wait_until(lambda: not publisher.connected, timeout=10.0)
    failed = publisher.failed_attempts
    assert wait_until(lambda: publisher.failed_attempts >= failed + 3, timeout=15.0)
    lines = shown()
    assert len(lines) == 4, lines  # unreachable, connected, lost, unreachable again
    assert lines[2].startswith(f"MQTT connection to 127.0.0.1:{port} lost") and lines[3] == lines[0]


def test_reconnects_after_the_broker_restarts_and_announces_online_again(
        make_publisher: Callable[..., MqttPublisher]) -> None:
    port = free_port()
    publisher = make_publisher("127.0.0.1", port)
    with MosquittoBroker(port):
        publisher.start()
        assert publisher.wait_connected(15.0)

    # Broker gone: the publisher notices and drops instead of queueing.
    assert wait_until(lambda: not publisher.connected, timeout=10.0)
    assert publisher.publish_event({"emotion": "fear"}) is False
    assert publisher.dropped == 1

    with MosquittoBroker(port) as broker, Subscriber(broker.host, broker.port, "fer-edge/#") as watcher:
        assert publisher.wait_connected(10.0)
        # The new broker has no retained state: "online" must come from the reconnect itself.
        watcher.wait_for(AVAILABILITY, "online")
        assert publisher.connects == 2


def test_clean_stop_publishes_offline_retained_and_is_idempotent(
        mqtt_broker: tuple[str, int], subscribe: Callable[[str], Subscriber],
        make_publisher: Callable[..., MqttPublisher]) -> None:
    publisher = make_publisher(*mqtt_broker)
    publisher.start()
    assert publisher.wait_connected(15.0)
    watcher = subscribe(AVAILABILITY)
    watcher.wait_for(AVAILABILITY, "online")

    publisher.stop()
    watcher.wait_for(AVAILABILITY, "offline")
    assert not publisher.connected
    publisher.stop()  # second stop is a no-op

    # "offline" is retained: a dashboard that connects later still learns the Pi is gone.
    late = subscribe(AVAILABILITY)
    assert late.wait_for(AVAILABILITY, "offline").retain
    # And a stopped publisher only drops.
    assert publisher.publish_event({"emotion": "neutral"}) is False
    with pytest.raises(EdgeError, match="stopped"):
        publisher.start()


def test_last_will_announces_offline_when_the_process_is_killed(
        mqtt_broker: tuple[str, int], subscribe: Callable[[str], Subscriber]) -> None:
    """SIGKILL gives no chance to say goodbye; the broker's last will must say it instead."""
    keepalive = 2
    host, port = mqtt_broker
    watcher = subscribe(AVAILABILITY)
    script = (
        "import sys, time\n"
        "from edge.service.mqtt import MqttPublisher\n"
        f"p = MqttPublisher({host!r}, {port}, client_id='will-test', keepalive={keepalive})\n"
        "p.start()\n"
        "print('connected' if p.wait_connected(15.0) else 'timeout', flush=True)\n"
        "time.sleep(30)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # readline is bounded: the child prints within its own 15 s wait, or exits (EOF).
        assert child.stdout is not None and child.stdout.readline().strip() == "connected"
        watcher.wait_for(AVAILABILITY, "online")
        child.send_signal(signal.SIGKILL)
        offline = watcher.wait_for(AVAILABILITY, "offline", timeout=keepalive * 1.5 + 5.0)
        assert offline.payload == "offline"
    finally:
        child.kill()
        child.wait(timeout=5.0)
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()


def test_rejects_wildcard_subtopics() -> None:
    publisher = MqttPublisher("127.0.0.1", free_port())
    for bad in ("", "a/+", "#", "/events"):
        with pytest.raises(ValueError):
            publisher.publish(bad, "x")


@pytest.mark.parametrize("kwargs", [
    {"host": ""},
    {"port": 0},
    {"qos": 3},
    {"topic_prefix": "fer/#"},
    {"keepalive": 0},
    {"min_backoff": 5.0, "max_backoff": 1.0},
])
def test_rejects_impossible_settings_up_front(kwargs: dict[str, object]) -> None:
    settings: dict[str, object] = {"host": "127.0.0.1", **kwargs}
    with pytest.raises(ConfigError):
        MqttPublisher(**settings)  # type: ignore[arg-type]


def test_missing_mosquitto_skips_locally_but_fails_when_ci_requires_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.mqtt_broker as broker_module

    monkeypatch.setattr(broker_module, "mosquitto_binary", lambda: None)
    monkeypatch.delenv("FER_REQUIRE_MOSQUITTO", raising=False)
    with pytest.raises(pytest.skip.Exception, match="mosquitto not installed"):
        broker_module.require_mosquitto()
    monkeypatch.setenv("FER_REQUIRE_MOSQUITTO", "1")
    with pytest.raises(pytest.fail.Exception, match="FER_REQUIRE_MOSQUITTO=1"):
        broker_module.require_mosquitto()


def test_the_reason_a_connection_failed_is_the_operating_systems_words() -> None:
    import socket

    from edge.service.mqtt import _os_reason

    assert _os_reason(ConnectionRefusedError(111, "Connection refused")) == "Connection refused"
    assert _os_reason(socket.gaierror(-2, "Name or service not known")) == "Name or service not known"
    assert _os_reason(TimeoutError("timed out")) == "timed out"
    assert _os_reason(None) == "" and _os_reason(ValueError("not the OS")) == ""
