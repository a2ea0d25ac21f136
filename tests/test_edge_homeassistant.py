"""Home Assistant MQTT discovery against a real mosquitto: the retained config messages, the
state a daemon on the demo clip publishes for them, and how both follow a SIGHUP reload."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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
    wait_until,
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


# --- reloads ----------------------------------------------------------------------------------

NODE = "homeassistant/sensor/fer-edge"
SENSORS = 2 + len(json.loads(MANIFEST.read_text())["labels"]) if MANIFEST.is_file() else 0


def other_model(tmp_path: Path, name: str, rename: dict[str, str]) -> Path:
    """The shipped int8 model under another name and with labels renamed: the same outputs, so it
    loads, but Home Assistant must get other sensors."""
    data = json.loads(MANIFEST.read_text())
    data["name"] = name
    data["labels"] = [rename.get(label, label) for label in data["labels"]]
    data["artifacts"] = {"int8": data["artifacts"]["int8"]}
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(MANIFEST.parent / data["artifacts"]["int8"]["path"], models)
    (models / "manifest.json").write_text(json.dumps(data))
    return models / "manifest.json"


def daemon_config(tmp_path: Path, broker: tuple[str, int], manifest: Path = MANIFEST,
                  homeassistant: bool = True, extra: str = "") -> str:
    host, port = broker
    return (f"[model]\nmanifest = '{manifest}'\n[detector]\ncascade = '{CASCADE}'\n"
            f"[source]\nuri = '{CLIP}'\nloop = true\nrealtime = true\n"
            f"[events]\npath = '{tmp_path / 'events.jsonl'}'\n[http]\nenabled = false\n"
            f"[mqtt]\nenabled = true\nhost = '{host}'\nport = {port}\n"
            f"homeassistant = {str(homeassistant).lower()}\n{extra}")


class ReloadableDaemon:
    """`python -m edge run --config` in the background; ``reload`` rewrites the config, sends SIGHUP
    and waits until the daemon logged the reload as applied."""

    def __init__(self, tmp_path: Path, text: str) -> None:
        self.config = tmp_path / "edge.toml"
        self.config.write_text(text)
        self.stderr = tmp_path / "stderr.txt"
        with self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edge", "run", "--config", str(self.config)], cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=err,
                env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
        self.reloads = 0

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    def reload(self, text: str) -> None:
        self.config.write_text(text)
        self.process.send_signal(signal.SIGHUP)
        self.reloads += 1
        assert wait_until(lambda: self.log().count("reloaded config") == self.reloads, timeout=60), self.log()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[[str], ReloadableDaemon]]:
    started: list[ReloadableDaemon] = []

    def make(text: str) -> ReloadableDaemon:
        started.append(ReloadableDaemon(tmp_path, text))
        return started[-1]

    yield make
    for running in started:
        running.stop()


def configs(watcher: Subscriber, count: int) -> dict[str, str]:
    """The newest payload of every config topic, once ``count`` messages on ``homeassistant/#`` came."""
    assert wait_until(lambda: len(watcher.messages) >= count), watcher.messages
    return {m.topic: m.payload for m in watcher.messages}


def retained_configs(subscribe: Callable[[str], Subscriber], count: int) -> dict[str, str]:
    """What Home Assistant finds when it subscribes now: the retained configs (``count`` expected)."""
    fresh = subscribe("homeassistant/#")
    assert wait_until(lambda: len(fresh.messages) >= count), fresh.messages
    time.sleep(0.5)  # a retained config that should be gone would have come in the same burst
    assert all(m.retain for m in fresh.messages)
    return {m.topic: m.payload for m in fresh.messages}


@pytest.mark.slow
@pytest.mark.skipif(not (MANIFEST.is_file() and CLIP.is_file()), reason="shipped model or demo clip missing")
def test_a_reload_that_swaps_the_model_announces_its_sensors_and_removes_those_of_labels_it_lacks(
        mqtt_broker: tuple[str, int], subscribe: Callable[[str], Subscriber],
        daemon: Callable[[str], ReloadableDaemon], tmp_path: Path) -> None:
    watcher, states = subscribe("homeassistant/#"), subscribe("fer-edge/state")
    running = daemon(daemon_config(tmp_path, mqtt_broker))
    before = configs(watcher, SENSORS)
    assert f"{NODE}/share_neutral/config" in before
    # a new pipeline with the same model: nothing to announce again
    running.reload(daemon_config(tmp_path, mqtt_broker, extra="[tracker]\ndetect_every = 2\n"))
    swapped = other_model(tmp_path, "fer_vgg_calm", {"neutral": "calm"})
    running.reload(daemon_config(tmp_path, mqtt_broker, swapped))

    watcher.wait_for(f"{NODE}/share_neutral/config", "")  # (the broker clears the retain flag of live messages)
    # in order on one connection: the start's configs, the new model's, then the removal; an
    # announcement on the first reload would have come in between
    assert len(watcher.messages) == 2 * SENSORS + 1, [m.topic for m in watcher.messages]
    after = {topic: json.loads(payload) for topic, payload in configs(watcher, 2 * SENSORS + 1).items() if payload}
    assert set(after) == set(before) - {f"{NODE}/share_neutral/config"} | {f"{NODE}/share_calm/config"}
    assert {config["device"]["model"] for config in after.values()} == {"fer_vgg_calm"}
    assert after[f"{NODE}/share_calm/config"]["value_template"] == "{{ value_json.shares['calm'] }}"
    # the state counts the new model's labels
    assert wait_until(lambda: any("calm" in json.loads(p)["shares"] for p in states.payloads("fer-edge/state")))
    newest = json.loads(states.payloads("fer-edge/state")[-1])
    assert "calm" in newest["shares"] and "neutral" not in newest["shares"]
    # and a Home Assistant that subscribes now finds only the new model's sensors
    assert set(retained_configs(subscribe, SENSORS)) == set(after)
    assert running.stop() == 0


@pytest.mark.slow
@pytest.mark.skipif(not (MANIFEST.is_file() and CLIP.is_file()), reason="shipped model or demo clip missing")
def test_a_reload_that_turns_home_assistant_off_removes_its_sensors(
        mqtt_broker: tuple[str, int], subscribe: Callable[[str], Subscriber],
        daemon: Callable[[str], ReloadableDaemon], tmp_path: Path) -> None:
    watcher = subscribe("homeassistant/#")
    running = daemon(daemon_config(tmp_path, mqtt_broker))
    before = configs(watcher, SENSORS)
    running.reload(daemon_config(tmp_path, mqtt_broker, homeassistant=False))
    for topic in before:
        watcher.wait_for(topic, "")
    events = subscribe("fer-edge/events")
    events.wait_for("fer-edge/events")  # MQTT itself stays on
    assert retained_configs(subscribe, 0) == {}
    assert running.stop() == 0
