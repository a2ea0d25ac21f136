"""Publishes the daemon's events to an MQTT broker, and its liveness through a retained topic.

The broker is a convenience, not the record (that is the JSONL event log): so nothing here may
block the camera loop or raise because the network is down. ``start()`` returns at once, paho's
network thread retries forever with exponential backoff, and while disconnected events are
counted as dropped rather than queued without bound in RAM.

Liveness: ``{prefix}/availability`` holds a retained "online" after every (re)connect, the
broker publishes the retained last will "offline" if the connection dies uncleanly (crash,
power cut, network loss), and ``stop()`` publishes "offline" itself because a clean disconnect
discards the will.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from edge.errors import ConfigError, EdgeError
from edge.service.events import dumps

__all__ = ["MqttPublisher"]

log = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"
# Messages paho may hold for (re)sending at qos>0. Bounded so a broker that accepts the TCP
# connection but stalls cannot make the Pi run out of memory.
MAX_QUEUED = 1000
# How long stop() waits for the broker to acknowledge "offline" before disconnecting anyway.
STOP_TIMEOUT = 2.0


def require_paho() -> Any:
    """paho's client module, or the one-line fix for where fer-edge was installed from."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise EdgeError("MQTT needs paho-mqtt 2.x: on a Pi re-run install.sh with --with-mqtt; "
                        "elsewhere pip install 'fer-edge[mqtt]'") from None
    return mqtt


class MqttPublisher:
    """Non-blocking MQTT publisher with availability topic, last will and automatic reconnect."""

    def __init__(self, host: str, port: int = 1883, topic_prefix: str = "fer-edge",
                 client_id: str | None = None, username: str | None = None,
                 password: str | None = None, qos: int = 1, keepalive: int = 30,
                 min_backoff: float = 1.0, max_backoff: float = 60.0) -> None:
        _check_config(host, port, topic_prefix, qos, keepalive, min_backoff, max_backoff)
        mqtt = require_paho()
        self.host = host
        self.port = port
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.topic_prefix = topic_prefix.rstrip("/")
        self.qos = qos
        self.keepalive = keepalive
        self.availability_topic = f"{self.topic_prefix}/availability"
        self.events_topic = f"{self.topic_prefix}/events"
        self.published = 0  # handed to paho for sending while connected
        self.dropped = 0  # not sent: disconnected, or paho's bounded queue was full
        self.connects = 0  # successful (re)connections, for a flapping-link metric
        self.last_error: str | None = None  # why the last connection attempt or link failed
        self.failed_attempts = 0  # connection attempts that failed, over the publisher's life
        self._reported: str | None = None  # the trouble last logged: each kind is logged once, not per attempt
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._state = "new"  # new -> started -> stopped
        self._announcements: list[tuple[str, str]] = []  # retained (topic, payload) sent on every connect

        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                             client_id=client_id or "")
        if username is not None:
            client.username_pw_set(username, password)
        # The will must be registered before connecting: the broker stores it with the CONNECT.
        client.will_set(self.availability_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=min_backoff, max_delay=max_backoff)  # type: ignore[arg-type]
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_log = self._on_log
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        self._client = client
        self._no_conn = mqtt.MQTT_ERR_NO_CONN
        self._ok = mqtt.MQTT_ERR_SUCCESS

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Begin connecting in paho's background thread; never blocks on, nor fails for, the broker.

        Calling it again while running does nothing; a stopped publisher cannot be restarted
        (make a new one), because paho's client is not meant to be reused after loop_stop.
        """
        with self._lock:
            if self._state == "started":
                return
            if self._state == "stopped":
                raise EdgeError("MqttPublisher was stopped; create a new one to reconnect")
            self._state = "started"
        # connect_async only records the address; the first attempt happens in the loop thread,
        # which also retries a failed first connection (retry_first_connection) forever.
        self._client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self._client.loop_start()

    def stop(self) -> None:
        """Say "offline" (if connected), disconnect cleanly and join paho's thread. Idempotent."""
        with self._lock:
            if self._state != "started":
                self._state = "stopped"
                return
            self._state = "stopped"
        if self._connected.is_set():
            info = self._client.publish(self.availability_topic, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=STOP_TIMEOUT)
            except (RuntimeError, ValueError):  # not queued: the link died meanwhile; the will covers it
                pass
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    def __enter__(self) -> MqttPublisher:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- publishing ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a connection; for tests and startup diagnostics."""
        return self._connected.wait(timeout)

    def announce(self, messages: Sequence[tuple[str, Any]]) -> None:
        """Retained messages on full topics (Home Assistant discovery), sent now if connected and
        again after every reconnect, so a broker restarted without persistence gets them back."""
        encoded = [(topic, payload if isinstance(payload, str) else dumps(payload)) for topic, payload in messages]
        with self._lock:
            self._announcements = encoded
        if self._connected.is_set():
            self._send_announcements(self._client)

    def _send_announcements(self, client: Any) -> None:
        with self._lock:
            messages = list(self._announcements)
        for topic, payload in messages:
            client.publish(topic, payload, qos=1, retain=True)

    def publish_event(self, event: dict[str, Any]) -> bool:
        """Publish one event as JSON on ``{prefix}/events``; False (counted as dropped) if not sent."""
        return self.publish("events", event)

    def publish(self, subtopic: str, payload: dict[str, Any] | str, retain: bool = False) -> bool:
        """Publish on ``{prefix}/{subtopic}``; dicts are sent as compact JSON.

        Returns True when paho accepted the message for sending. Never queues while disconnected:
        the event is counted in ``dropped`` and False is returned, and the caller's JSONL log
        remains the complete record.
        """
        if not subtopic or "+" in subtopic or "#" in subtopic or subtopic.startswith("/"):
            raise ValueError(f"invalid MQTT subtopic {subtopic!r}: empty, leading '/' or wildcard")
        if not self._connected.is_set():
            with self._lock:
                self.dropped += 1
            return False
        data = payload if isinstance(payload, str) else dumps(payload)
        info = self._client.publish(f"{self.topic_prefix}/{subtopic}", data, qos=self.qos, retain=retain)
        # NO_CONN here means the link dropped between our check and paho's: at qos>0 paho keeps
        # the message (bounded by MAX_QUEUED) and sends it after reconnecting.
        sent = info.rc == self._ok or (info.rc == self._no_conn and self.qos > 0)
        with self._lock:
            if sent:
                self.published += 1
            else:
                self.dropped += 1
        return sent

    # -- paho callbacks (network thread; must never raise) ------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self.last_error = f"broker refused connection: {reason_code}"
            self._report(f"MQTT broker {self.host}:{self.port} refused the connection ({reason_code}); "
                         f"{self._retrying()}")
            return
        self._reported = None
        self.connects += 1
        self._connected.set()
        client.publish(self.availability_topic, ONLINE, qos=1, retain=True)
        self._send_announcements(client)
        log.info("MQTT connected to %s:%d", self.host, self.port)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if self._state == "stopped":
            return
        self.last_error = f"disconnected: {reason_code}"
        if was_connected:
            self._report(f"MQTT connection to {self.host}:{self.port} lost ({reason_code}); reconnecting")

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        # paho does not pass the error, but calls this from inside its `except OSError:`
        why = _os_reason(sys.exc_info()[1])
        self.last_error = f"cannot connect to {self.host}:{self.port}" + (f": {why}" if why else "")
        self.failed_attempts += 1
        log.debug("MQTT connection to %s:%d failed (attempt %d)", self.host, self.port, self.failed_attempts)
        self._report(f"MQTT broker {self.host}:{self.port} is not reachable" + (f" ({why})" if why else "")
                     + f"; {self._retrying()}")

    def _retrying(self) -> str:
        return (f"retrying in {self.min_backoff:g} s, then at most every {self.max_backoff:g} s "
                "(events still go to the event log)")

    def _report(self, message: str) -> None:
        """A warning when the trouble changes, not on every attempt: a broker down for a night
        would otherwise write a line per retry. Each attempt is still logged at debug level."""
        if message != self._reported:
            self._reported = message
            log.warning("%s", message)

    def _on_log(self, client: Any, userdata: Any, level: int, text: str) -> None:
        """paho's own log, at debug level only. Its errors are the states the callbacks above already
        report with host and port ("Client is not connected. Socket: None)..." on every retry)."""
        log.debug("paho: %s", text)

    def __repr__(self) -> str:
        return (f"MqttPublisher({self.host}:{self.port}, prefix={self.topic_prefix!r}, "
                f"connected={self.connected}, published={self.published}, dropped={self.dropped})")


def _check_config(host: str, port: int, topic_prefix: str, qos: int, keepalive: int,
                  min_backoff: float, max_backoff: float) -> None:
    """Reject settings paho would only trip over later, in its thread, where nobody sees it."""
    if not host:
        raise ConfigError("mqtt host must not be empty")
    if not 0 < port < 65536:
        raise ConfigError(f"mqtt port must be 1-65535, got {port}")
    prefix = topic_prefix.rstrip("/")
    if not prefix or "+" in prefix or "#" in prefix:
        raise ConfigError(f"mqtt topic_prefix must be non-empty and wildcard-free, got {topic_prefix!r}")
    if qos not in (0, 1, 2):
        raise ConfigError(f"mqtt qos must be 0, 1 or 2, got {qos}")
    if keepalive < 1:
        raise ConfigError(f"mqtt keepalive must be >= 1 second, got {keepalive}")
    if not 0 < min_backoff <= max_backoff:
        raise ConfigError(f"mqtt backoff needs 0 < min_backoff <= max_backoff, got {min_backoff}, {max_backoff}")


def _os_reason(error: BaseException | None) -> str:
    """"Connection refused", "Name or service not known", "timed out": what the OS said, or nothing."""
    if not isinstance(error, OSError):
        return ""
    return error.strerror or str(error) or type(error).__name__
