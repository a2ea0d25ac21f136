"""The daemon's configuration as validated data (``edge.toml``), with ``section.key=value`` overrides.

Unknown keys and wrong types are errors at start-up, not surprises at 3 a.m. Relative paths
are resolved against the config file's folder, so a config and its models can move together.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edge.errors import ConfigError
from edge.documents import read_document
from edge.packaged import shipped_blazeface, shipped_cascade, shipped_manifest
from edge.typed_config import Sections, build_section

@dataclass(frozen=True)
class ModelSection:
    manifest: str = str(shipped_manifest())  # inside the installed package (edge.packaged)
    artifact: str = "int8"
    threads: int = 1


@dataclass(frozen=True)
class SourceSection:
    uri: str = "picamera2"  # picamera2[:N], a device index, /dev/videoN, a video, URL, image, folder or glob
    width: int = 640
    height: int = 480
    fps: float = 15.0
    loop: bool = False  # restart a video file at its end (demos)
    realtime: bool = False  # deliver a video file at its own frame rate, as a camera would (rehearsals)
    reopen_min_seconds: float = 1.0
    reopen_max_seconds: float = 30.0


@dataclass(frozen=True)
class DetectorSection:
    kind: str = "haar"  # haar, or blazeface: finds faces tilted 30 degrees (docs/detectors.md)
    model: str = str(shipped_blazeface())  # blazeface only
    min_score: float = 0.5  # blazeface only
    align: bool = True  # turn faces upright by their eyes before cropping (blazeface: haar has no eye points)
    cascade: str = str(shipped_cascade())
    # 1.15/4/48 at 320 px: the recall of OpenCV's usual 1.1/5/40 on all 70 bundled test faces at
    # three sizes (0.71), in two thirds of the time
    scale_factor: float = 1.15
    min_neighbors: int = 4
    min_size: int = 48  # pixels of the full frame
    detect_width: int = 320  # frames are downscaled to this width for detection
    max_faces: int = 8


@dataclass(frozen=True)
class TrackerSection:
    enabled: bool = True
    iou_threshold: float = 0.3
    max_age: int = 10  # frames a track survives without a detection
    smoothing: float = 0.5  # weight of the newest probabilities in the per-track moving average
    # the full-frame detector runs every N frames; in between, each tracked face is looked for again
    # only around its last box (a fraction of the cost), so new faces appear within N frames.
    # 0: the detector's own default (haar 3, blazeface 1; docs/detectors.md has the measurements)
    detect_every: int = 0


@dataclass(frozen=True)
class EventsSection:
    path: str = "events.jsonl"
    max_bytes: int = 10_000_000
    backups: int = 5
    only_with_faces: bool = True
    save_images: bool = False  # privacy: no images are stored unless this is turned on
    images_dir: str = ""  # "": a snapshots folder beside events.path, which the daemon can write
    print: bool = False  # also echo each event to stdout
    # "frames": an event per frame with faces; "tracks": appear / change / leave per face (docs/events.md)
    mode: str = "frames"
    change_frames: int = 5  # tracks mode: frames in a row a new emotion must lead before a change event
    change_margin: float = 0.1  # tracks mode: by how much probability it must lead the reported one


@dataclass(frozen=True)
class HttpSection:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8321
    # the live view page at / (docs/live-view.md); off by default, and on any address but loopback
    # only with a token, which every request but /healthz must then carry
    live_view: bool = False
    token: str = ""
    live_fps: float = 5.0  # most frames a second the page is sent (encoded only while someone watches)
    timeline_minutes: float = 5.0  # how much history the page's emotion timeline shows


@dataclass(frozen=True)
class MqttSection:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "fer-edge"
    client_id: str = ""
    username: str = ""
    password: str = ""
    qos: int = 1
    keepalive: int = 30
    # Home Assistant MQTT discovery (docs/home-assistant.md): sensors for faces in view, the dominant
    # emotion and each emotion's share, on <topic_prefix>/state, tied to <topic_prefix>/availability
    homeassistant: bool = False
    discovery_prefix: str = "homeassistant"


@dataclass(frozen=True)
class DaemonSection:
    queue_size: int = 2
    max_frames: int = 0  # stop after this many frames (0 = run until stopped)
    stall_seconds: float = 10.0  # no frame for this long: health is degraded
    # a camera or stream call blocked this long (a hung libcamera request, a stalled RTSP read):
    # health is failed and the systemd watchdog is no longer fed, so systemd restarts the daemon
    hang_seconds: float = 60.0
    log_level: str = "info"


@dataclass(frozen=True)
class EdgeConfig(Sections):
    model: ModelSection = field(default_factory=ModelSection)
    source: SourceSection = field(default_factory=SourceSection)
    detector: DetectorSection = field(default_factory=DetectorSection)
    tracker: TrackerSection = field(default_factory=TrackerSection)
    events: EventsSection = field(default_factory=EventsSection)
    http: HttpSection = field(default_factory=HttpSection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    daemon: DaemonSection = field(default_factory=DaemonSection)


PATH_KEYS = {("model", "manifest"), ("detector", "cascade"), ("detector", "model"), ("events", "path"), ("events", "images_dir")}
LOG_LEVELS = ("debug", "info", "warning", "error")
EVENT_MODES = ("frames", "tracks")
DETECTOR_KINDS = ("haar", "blazeface")
# full-frame passes every N frames when tracker.detect_every is 0: a Haar pass costs ~10x a search
# near a tracked face; a BlazeFace pass costs no more than one near a face (see docs/detectors.md)
DEFAULT_DETECT_EVERY = {"haar": 3, "blazeface": 1}


def detect_every(config: EdgeConfig) -> int:
    """Frames between full-frame detector passes: the config's, or the detector's default when 0."""
    return config.tracker.detect_every or DEFAULT_DETECT_EVERY[config.detector.kind]


def _section(cls: type, values: dict[str, Any], name: str, base: Path | None) -> Any:
    """The section, with the relative paths the file gave resolved against its folder."""
    try:
        section = build_section(cls, values, name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if base is None:
        return section
    changes = {}
    for key in values:
        value = getattr(section, key)
        if not value:
            continue
        if (name, key) in PATH_KEYS or ((name, key) == ("source", "uri") and _is_relative_path(value)):
            changes[key] = _joined(base, value)
    return dataclasses.replace(section, **changes)


def _joined(base: Path, value: str) -> str:
    """``value`` (``~`` expanded) against ``base`` unless absolute, with ``..`` folded: logs and errors show
    /x/models/manifest.json, not /x/edge/configs/../../models/manifest.json. normpath, not resolve(), so
    a path through a symlink (install.sh's /opt/fer-edge/current) keeps naming the link."""
    path = Path(value).expanduser()
    return os.path.normpath(path if path.is_absolute() else base / path)


def _is_relative_path(uri: str) -> bool:
    """A source URI that names a file, folder or glob (not a camera, device index or URL)."""
    return not (uri.startswith(("picamera2", "/", "~")) or "://" in uri or uri.isdigit())


SECTIONS = {f.name: f.default_factory for f in fields(EdgeConfig)}  # type: ignore[misc]


def build_config(raw: dict[str, Any], base: Path | None = None, source: Path | None = None) -> EdgeConfig:
    """The checked config from ``raw``; relative paths against ``base``. Errors name ``source``, the file
    ``raw`` came from, when there is one: it may be FER_EDGE_CONFIG, the installed config or bundle's
    --config, none of which the command line shows."""
    try:
        return _build_config(raw, base)
    except ConfigError as exc:
        if source is None:
            raise
        raise ConfigError(f"{source}: {exc}") from None


def _build_config(raw: dict[str, Any], base: Path | None) -> EdgeConfig:
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown config section [{unknown[0]}] (known: {', '.join(SECTIONS)})")
    parts = {}
    for name, factory in SECTIONS.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"config section [{name}] must be a table")
        parts[name] = _section(type(factory()), values, name, base)
    config = EdgeConfig(**parts)
    validate(config)
    return config


def validate(config: EdgeConfig) -> None:
    c = config
    checks = [
        (c.model.threads >= 1, "model.threads must be >= 1"),
        (c.source.width > 0 and c.source.height > 0, "source.width and source.height must be > 0"),
        (c.source.fps > 0, "source.fps must be > 0"),
        (0 < c.source.reopen_min_seconds <= c.source.reopen_max_seconds,
         "source.reopen_min_seconds must be > 0 and <= reopen_max_seconds"),
        (c.detector.kind in DETECTOR_KINDS,
         f"detector.kind must be one of {', '.join(DETECTOR_KINDS)}, not {c.detector.kind!r}"),
        (0.0 < c.detector.min_score < 1.0, "detector.min_score must be in (0, 1)"),
        (c.detector.scale_factor > 1.0, "detector.scale_factor must be > 1.0"),
        (c.detector.min_neighbors >= 0, "detector.min_neighbors must be >= 0"),
        (c.detector.min_size >= 8, "detector.min_size must be >= 8"),
        (c.detector.detect_width >= 64, "detector.detect_width must be >= 64"),
        (c.detector.max_faces >= 1, "detector.max_faces must be >= 1"),
        (0.0 < c.tracker.iou_threshold < 1.0, "tracker.iou_threshold must be in (0, 1)"),
        (c.tracker.max_age >= 0, "tracker.max_age must be >= 0"),
        (0.0 < c.tracker.smoothing <= 1.0, "tracker.smoothing must be in (0, 1]"),
        (c.tracker.detect_every >= 0, "tracker.detect_every must be >= 0 (0: the detector's default)"),
        (c.events.max_bytes >= 1024, "events.max_bytes must be >= 1024"),
        (c.events.backups >= 0, "events.backups must be >= 0"),
        (c.events.mode in EVENT_MODES, f"events.mode must be one of {', '.join(EVENT_MODES)}"),
        (c.events.mode != "tracks" or c.tracker.enabled, "events.mode = \"tracks\" needs tracker.enabled = true"),
        (c.events.change_frames >= 1, "events.change_frames must be >= 1"),
        (0.0 <= c.events.change_margin < 1.0, "events.change_margin must be in [0, 1)"),
        (0 <= c.http.port <= 65535, "http.port must be in 0..65535"),
        (not c.http.live_view or is_loopback(c.http.host) or bool(c.http.token),
         f"http.live_view on http.host = {c.http.host!r} shows the camera to the network: set http.token "
         "(or bind 127.0.0.1)"),
        (not c.http.live_view or c.http.enabled, "http.live_view = true needs http.enabled = true"),
        (0 < c.http.live_fps <= 30, "http.live_fps must be in (0, 30]"),
        (0 < c.http.timeline_minutes <= 60, "http.timeline_minutes must be in (0, 60]"),
        (0 < c.mqtt.port <= 65535, "mqtt.port must be in 1..65535"),
        (c.mqtt.qos in (0, 1, 2), "mqtt.qos must be 0, 1 or 2"),
        (c.mqtt.keepalive >= 1, "mqtt.keepalive must be >= 1"),
        (bool(c.mqtt.topic_prefix) and not any(ch in c.mqtt.topic_prefix for ch in "#+"),
         "mqtt.topic_prefix must be non-empty without # or +"),
        (bool(c.mqtt.discovery_prefix) and not any(ch in c.mqtt.discovery_prefix for ch in "#+"),
         "mqtt.discovery_prefix must be non-empty without # or +"),
        (not c.mqtt.homeassistant or c.mqtt.enabled, "mqtt.homeassistant = true needs mqtt.enabled = true"),
        (c.daemon.queue_size >= 1, "daemon.queue_size must be >= 1"),
        (c.daemon.max_frames >= 0, "daemon.max_frames must be >= 0"),
        (c.daemon.stall_seconds > 0, "daemon.stall_seconds must be > 0"),
        (c.daemon.hang_seconds > 0, "daemon.hang_seconds must be > 0"),
        (c.daemon.log_level in LOG_LEVELS, f"daemon.log_level must be one of {', '.join(LOG_LEVELS)}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> EdgeConfig:
    """Read ``path`` (TOML), apply overrides (``section.key=value``, relative to the cwd), validate."""
    raw: dict[str, Any] = {}
    base: Path | None = None
    if path is not None:
        path = Path(path)
        raw = read_document(path, "config file", ConfigError, fmt="toml")
        base = path.resolve().parent
    config = build_config(raw, base, path)
    if overrides:
        merged = config.to_dict()
        cwd = Path.cwd()
        for text in overrides:
            key, sep, value = text.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot or not name:
                raise ConfigError(f"override {text!r} must look like section.key=value")
            if section not in merged:
                raise ConfigError(f"unknown config section [{section}] (known: {', '.join(SECTIONS)})")
            if name not in merged[section]:
                raise ConfigError(f"unknown config key {section}.{name} (known: {', '.join(merged[section])})")
            value = value.strip()
            if (section, name) in PATH_KEYS and value:
                value = _joined(cwd, value)
            merged[section][name] = value
        config = build_config(merged, None)
    return config


def snapshots_dir(events: EventsSection) -> Path:
    """Where opt-in snapshots go: ``images_dir``, or beside the event log (under systemd the one
    writable place the unit grants, where a bare relative folder would land in read-only /)."""
    return Path(events.images_dir) if events.images_dir else Path(events.path).parent / "snapshots"
