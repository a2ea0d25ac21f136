"""Home Assistant MQTT discovery (``[mqtt] homeassistant = true``): sensors that appear by themselves.

Home Assistant creates an entity for every retained config message under
``<discovery_prefix>/<component>/<node_id>/<object_id>/config``. We announce one device with:
faces in view, the dominant emotion, and one sensor per emotion of the model (the share of the
faces in view showing it, in %). All read one retained state topic, ``<topic_prefix>/state``, and
all follow the daemon's availability topic, so they turn "unavailable" when the daemon stops or
its last will fires. The configs are published on every (re)connect, because a broker may have
been restarted without persistence. A sensor that is gone (a label the model swapped in by a reload
lacks, or Home Assistant turned off) is removed the way Home Assistant documents: an empty
retained payload on its config topic.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.vision.pipeline import FrameResult

STATE_SUBTOPIC = "state"
MIN_INTERVAL = 1.0  # seconds between state messages: a sensor history, not a frame stream
ICONS = {"angry": "mdi:emoticon-angry", "disgust": "mdi:emoticon-sick", "fear": "mdi:emoticon-frown",
         "happy": "mdi:emoticon-happy", "sad": "mdi:emoticon-sad", "surprise": "mdi:emoticon-excited",
         "neutral": "mdi:emoticon-neutral"}


def node_id(topic_prefix: str) -> str:
    """A discovery-safe id from the topic prefix: two daemons with two prefixes are two devices."""
    return re.sub(r"[^a-zA-Z0-9_-]+", "_", topic_prefix.strip("/")).strip("_") or "fer_edge"


def discovery_messages(topic_prefix: str, labels: tuple[str, ...], discovery_prefix: str = "homeassistant",
                       model: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(topic, config payload) for every sensor; retained by the caller."""
    prefix = topic_prefix.rstrip("/")
    node = node_id(prefix)
    device = {"identifiers": [f"fer-edge-{node}"], "name": f"fer-edge {prefix}", "manufacturer": "fer-edge",
              "model": model or "facial emotion recognition"}
    common = {"state_topic": f"{prefix}/{STATE_SUBTOPIC}", "availability_topic": f"{prefix}/availability",
              "payload_available": "online", "payload_not_available": "offline", "device": device,
              "origin": {"name": "fer-edge"}}
    sensors: list[tuple[str, dict[str, Any]]] = [
        ("faces", {"name": "Faces in view", "value_template": "{{ value_json.faces }}",
                   "state_class": "measurement", "icon": "mdi:account-group"}),
        ("dominant_emotion", {"name": "Dominant emotion", "value_template": "{{ value_json.dominant }}",
                              "icon": "mdi:emoticon-outline"}),
    ]
    for label in labels:
        key = re.sub(r"[^a-z0-9_]+", "_", label.lower())
        sensors.append((f"share_{key}", {"name": f"{label.capitalize()} share",
                                         "value_template": f"{{{{ value_json.shares['{label}'] }}}}",
                                         "unit_of_measurement": "%", "state_class": "measurement",
                                         "icon": ICONS.get(label, "mdi:emoticon-outline")}))
    return [(f"{discovery_prefix}/sensor/{node}/{object_id}/config",
             {**config, **common, "unique_id": f"fer_edge_{node}_{object_id}", "object_id": f"{node}_{object_id}"})
            for object_id, config in sensors]


def removal_messages(topics: Iterable[str]) -> list[tuple[str, str]]:
    """(topic, "") for every config topic: Home Assistant removes the entity of an empty config, and
    the broker forgets a retained message replaced by an empty one; retained by the caller."""
    return [(topic, "") for topic in sorted(set(topics))]


class SensorState:
    """What the sensors read: faces in view, the most shown emotion ("none" without faces), and the
    share of the faces in view showing each emotion. A new state is returned only when it changed,
    and at most once per ``interval`` seconds (the newest one wins)."""

    def __init__(self, labels: tuple[str, ...], interval: float = MIN_INTERVAL) -> None:
        self.labels = tuple(labels)
        self.interval = interval
        self._sent: dict[str, Any] | None = None
        self._sent_at = -float("inf")

    def update(self, result: FrameResult, now: float | None = None) -> dict[str, Any] | None:
        now = time.monotonic() if now is None else now
        state = self.state(result)
        if state == self._sent or now - self._sent_at < self.interval:
            return None
        self._sent, self._sent_at = state, now
        return state

    def state(self, result: FrameResult) -> dict[str, Any]:
        counts = dict.fromkeys(self.labels, 0)
        for face in result.faces:
            counts[face.label] = counts.get(face.label, 0) + 1
        total = len(result.faces)
        dominant = max(counts, key=lambda label: counts[label]) if total else "none"
        return {"faces": total, "dominant": dominant,
                "shares": {label: round(100 * counts[label] / total) if total else 0 for label in self.labels}}
