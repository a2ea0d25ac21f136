"""Home Assistant MQTT discovery against a real mosquitto: the retained config messages, and the
state a daemon on the demo clip publishes for them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.config import load_config
from edge.errors import ConfigError
from edge.service.homeassistant import SensorState, discovery_messages
from edge.service.mqtt import MqttPublisher
from edge.vision.faces import Box
from edge.vision.pipeline import Face, FrameResult
from tests.edge_helpers import CASCADE, MANIFEST, ROOT
from tests.mqtt_broker import (  # noqa: F401 - fixtures are used by name
    Subscriber,
    mqtt_broker,
    subscribe,
)

LABELS = ("angry", "happy", "neutral")
CLIP = ROOT / "models" / "demo" / "demo_clip.mp4"


def frame(*labels: str) -> FrameResult:
    faces = tuple(Face(Box(i * 60, 0, 50, 50), label, 0.9, {name: 0.9 if name == label else 0.05 for name in LABELS},
                       i + 1) for i, label in enumerate(labels))
    return FrameResult(0, 0.0, faces)


def test_discovery_announces_faces_dominant_and_one_sensor_per_emotion_on_one_state_topic() -> None:
    messages = dict(discovery_messages("home/cam-1", LABELS, "homeassistant", "fer_vgg"))
    assert sorted(messages) == sorted(f"homeassistant/sensor/home_cam-1/{name}/config" for name in
                                      ("faces", "dominant_emotion", "share_angry", "share_happy", "share_neutral"))
    for config in messages.values():
        assert config["state_topic"] == "home/cam-1/state"
        assert config["availability_topic"] == "home/cam-1/availability"
        assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
        assert config["device"]["identifiers"] == ["fer-edge-home_cam-1"]
    assert len({config["unique_id"] for config in messages.values()}) == len(messages)
    happy = messages["homeassistant/sensor/home_cam-1/share_happy/config"]
    assert happy["value_template"] == "{{ value_json.shares['happy'] }}" and happy["unit_of_measurement"] == "%"


def test_the_state_is_sent_when_it_changes_and_at_most_once_a_second() -> None:
    sensors = SensorState(LABELS, interval=1.0)
    assert sensors.update(frame("happy", "happy", "angry"), now=10.0) == {
        "faces": 3, "dominant": "happy", "shares": {"angry": 33, "happy": 67, "neutral": 0}}
    assert sensors.update(frame("happy", "happy", "angry"), now=12.0) is None  # unchanged
    assert sensors.update(frame("angry"), now=12.5) is not None
    assert sensors.update(frame(), now=13.0) is None  # changed, but too soon after the last
    assert sensors.update(frame(), now=13.5) == {"faces": 0, "dominant": "none",
                                                 "shares": {"angry": 0, "happy": 0, "neutral": 0}}


def test_config_needs_mqtt_for_home_assistant() -> None:
    with pytest.raises(ConfigError, match="needs mqtt.enabled"):
        load_config(None, ["mqtt.homeassistant=true"])
    config = load_config(None, ["mqtt.homeassistant=true", "mqtt.enabled=true"])
    assert config.mqtt.discovery_prefix == "homeassistant"


def test_discovery_configs_are_retained_and_sent_again_after_the_publisher_connects(
        mqtt_broker: tuple[str, int], subscribe: Callable[[str], Subscriber]) -> None:
    publisher = MqttPublisher(*mqtt_broker, min_backoff=0.2, max_backoff=1.0)
    messages = discovery_messages("fer-edge", LABELS)
    publisher.announce(messages)  # before connecting: sent on connect
    publisher.start()
    try:
        assert publisher.wait_connected(15.0)
        watcher = subscribe("homeassistant/#")
        for topic, config in messages:
            received = watcher.wait_for(topic)
            assert json.loads(received.payload) == config
        late = subscribe("homeassistant/sensor/fer-edge/faces/config")
        assert late.wait_for("homeassistant/sensor/fer-edge/faces/config").retain
    finally:
        publisher.stop()


@pytest.mark.slow
@pytest.mark.skipif(not (MANIFEST.is_file() and CLIP.is_file()), reason="shipped model or demo clip missing")
def test_a_daemon_on_the_demo_clip_feeds_the_sensors_and_goes_unavailable_when_it_stops(
        mqtt_broker: tuple[str, int], subscribe: Callable[[str], Subscriber], tmp_path: Path) -> None:
    host, port = mqtt_broker
    watcher = subscribe("#")
    done = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--source", str(CLIP), "--events", str(tmp_path / "events.jsonl"),
         "--manifest", str(MANIFEST), "--set", f"detector.cascade={CASCADE}", "--set", "source.realtime=true",
         "--set", "http.enabled=false", "--set", "mqtt.enabled=true", "--set", f"mqtt.host={host}",
         "--set", f"mqtt.port={port}", "--set", "mqtt.homeassistant=true"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    labels = json.loads(MANIFEST.read_text())["labels"]
    configs = {m.topic: json.loads(m.payload) for m in watcher.messages if m.topic.startswith("homeassistant/")}
    assert len(configs) == 2 + len(labels)
    assert {c["availability_topic"] for c in configs.values()} == {"fer-edge/availability"}
    assert {c["state_topic"] for c in configs.values()} == {"fer-edge/state"}
    watcher.wait_for("fer-edge/availability", "offline")
    states = [json.loads(payload) for payload in watcher.payloads("fer-edge/state")]
    # 8 s of clip at its own rate, at most one state a second, one per change
    assert 2 <= len(states) <= 10
    for state in states:
        assert state["dominant"] in labels or (state["dominant"] == "none" and state["faces"] == 0)
        assert set(state["shares"]) == set(labels)
        if state["faces"]:
            assert abs(sum(state["shares"].values()) - 100) <= len(labels)  # whole percents
            assert state["shares"][state["dominant"]] == max(state["shares"].values())
    assert any(state["faces"] == 2 for state in states)  # the clip shows two faces at times
    retained = subscribe("fer-edge/state").wait_for("fer-edge/state")
    assert retained.retain and json.loads(retained.payload) == states[-1]
