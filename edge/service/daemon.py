"""The headless camera daemon: capture thread, bounded queue, pipeline, events, HTTP, MQTT.

Built for weeks unattended: a camera that fails is reopened with backoff while /healthz says
degraded; a full queue drops (and counts) frames instead of blocking capture; every event is
flushed to the JSON Lines log before anything else is attempted; a broker that is down only
costs MQTT delivery; SIGTERM/SIGINT stop cleanly with exit 0 and SIGHUP reloads the config.

A reload is staged: the new config is checked and every part it changes (pipeline, source,
event log, MQTT, status server) is built and, where it can be, opened beside the running one;
only when all are ready are they swapped in. A refused reload touches nothing (docs/guarantees.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import resource
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.config import EdgeConfig, load_config, snapshots_dir
from edge.errors import EdgeError, SourceError, SourceNotInstalled
from edge.service.systemd import notify, watchdog_interval

log = logging.getLogger("fer-edge")


@dataclass(frozen=True)
class RunSummary:
    frames: int
    faces: int
    dropped: int
    events: int
    seconds: float
    reason: str

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (f"summary: {self.frames} frames, {self.faces} faces, {self.events} events, {self.dropped} dropped, "
                f"{self.seconds:.1f} s, {self.fps:.1f} FPS ({self.reason})")


@dataclass
class _Capture:
    """The capture thread and what it fills; replaced as a whole when the source changes."""

    thread: threading.Thread
    frames: "queue.Queue[Any]"
    done: threading.Event
    halt: threading.Event

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(timeout=5)


@dataclass
class _Staged:
    """What a reload built beside the running parts; None (or False) where nothing changes."""

    pipeline: Any = None
    restart_capture: bool = False
    source: Any = None  # a file source opened in advance; a camera opens once the old one is closed
    events: Any = None
    mqtt: Any = None
    mqtt_changed: bool = False
    server: Any = None
    server_changed: bool = False
    built: list[Any] = field(default_factory=list)  # to undo, newest first


SOURCE_FAILED = "source: "  # how /healthz words a source failure


class Health:
    """What /healthz reports; written by the capture and processing threads."""

    def __init__(self, stall_seconds: float) -> None:
        self.lock = threading.Lock()
        self.status = "starting"
        self.reason = ""
        self.source_down = False  # only a reopen clears it: see frame()
        self.last_frame = 0.0
        self.stall_seconds = stall_seconds
        self.started = time.time()

    def set(self, status: str, reason: str = "") -> None:
        with self.lock:
            self.status, self.reason, self.source_down = status, reason, False

    def source_failed(self, reason: str) -> None:
        """The frame source failed or could not be opened: degraded until ``source_back``."""
        with self.lock:
            self.status, self.reason, self.source_down = "degraded", f"{SOURCE_FAILED}{reason}", True

    def frame(self) -> None:
        """A frame was processed. It may have been read before the source failed (frames wait in the
        queue), so it says nothing of the source now: only a reopen clears a source failure."""
        with self.lock:
            self.last_frame = time.time()
            if self.status != "ok" and not self.source_down:
                self.status, self.reason = "ok", ""

    def source_back(self) -> None:
        """The capture thread reopened the source: a failure it reported is over."""
        with self.lock:
            if self.source_down:
                self.status, self.reason, self.source_down = "ok", "", False

    def snapshot(self, extra: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            status, reason = self.status, self.reason
            if status == "ok" and time.time() - self.last_frame > self.stall_seconds:
                status, reason = "degraded", f"no frame for {time.time() - self.last_frame:.0f} s"
            return {"status": status, "reason": reason, "uptime_seconds": round(time.time() - self.started, 1),
                    **extra}


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * resource.getpagesize()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Daemon:
    def __init__(self, config: EdgeConfig, config_path: Path | None = None, overrides: list[str] | None = None,
                 install_signals: bool = True) -> None:
        from edge.service.metrics import Registry

        self.config = config
        self.config_path = config_path
        self.overrides = overrides or []
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        self.install_signals = install_signals
        self.health = Health(config.daemon.stall_seconds)
        self.latest: dict[str, Any] | None = None
        self.registry = Registry()
        r = self.registry
        self.m_frames = r.counter("fer_edge_frames_total", "Frames processed")
        self.m_dropped = r.counter("fer_edge_frames_dropped_total", "Frames dropped because the queue was full")
        self.m_faces = r.counter("fer_edge_faces_total", "Faces classified")
        self.m_events = r.counter("fer_edge_events_total", "Events written to the JSON Lines log")
        self.m_event_errors = r.counter("fer_edge_event_write_errors_total", "Events that could not be written")
        self.m_reopens = r.counter("fer_edge_source_reopens_total", "Times the frame source was reopened")
        self.m_reloads = r.counter("fer_edge_config_reloads_total", "SIGHUP config reloads applied")
        self.m_reloads_rejected = r.counter("fer_edge_config_reloads_rejected_total",
                                            "SIGHUP config reloads refused; the running config stayed")
        self.m_latency = r.summary("fer_edge_frame_latency_ms", "Processing time per frame (ms)")
        self.m_queue = r.gauge("fer_edge_queue_depth", "Frames waiting in the queue")
        self.m_fps = r.gauge("fer_edge_fps", "Frames per second over the last 5 seconds")
        self.m_rss = r.gauge("fer_edge_resident_memory_bytes", "Resident memory of the daemon")
        self.m_mqtt = r.gauge("fer_edge_mqtt_connected", "1 when connected to the MQTT broker")
        self.m_up = r.gauge("fer_edge_healthy", "1 when /healthz reports ok")
        self.m_live = r.gauge("fer_edge_live_view_frames_encoded",
                              "JPEG frames the live view encoded since it started (0 while nobody watches)")
        stages = r.summary("fer_edge_stage_ms", "Time per frame in each pipeline stage (ms)", labelnames=("stage",))
        self.m_stage = {stage: stages.labels(stage=stage) for stage in ("detect", "crop", "classify", "track")}
        self.counts = {"frames": 0, "faces": 0, "dropped": 0, "events": 0}
        self.mqtt: Any = None
        self.sensor_state: Any = None  # Home Assistant's sensors, when [mqtt] homeassistant is on
        # Home Assistant discovery of the running publisher: the configs it announces now, and every
        # config topic it announced since it started (those no longer announced get removed)
        self._ha_configs: list[tuple[str, dict[str, Any]]] = []
        self._ha_topics: set[str] = set()
        self.events: Any = None
        self.event_source: Any = None  # frames or tracks mode: turns each FrameResult into events
        self.pipeline: Any = None
        self.capture: _Capture | None = None
        # _stamp() of the manifest and cascade the running pipeline was built from
        self._model_stamp: tuple[Any, ...] | None = None
        self._cascade_stamp: tuple[Any, ...] | None = None
        self.event_log_failing = False
        self._last_snapshot = 0.0  # time of the last opt-in snapshot
        self.server: Any = None
        self.live: Any = None  # the LiveView when [http] live_view is on
        self.labels: tuple[str, ...] = ()
        self.model_name = ""
        self._blocked_since: float | None = None  # monotonic time the capture thread entered open/read
        self.stop_reason = "stopped"  # what the summary says once stop_event is set
        self.stdout_gone = False  # --print-events' reader left (`| head -1`): nothing more is printed

    # --- signals -----------------------------------------------------------------------------
    def _install_signals(self) -> None:
        if not self.install_signals or threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: self.reload_event.set())

    # --- building blocks ---------------------------------------------------------------------
    def _build_pipeline(self, config: EdgeConfig, classifier: Any = None, detector: Any = None) -> Any:
        """A pipeline for ``config``; a running ``classifier`` or ``detector`` passed in is reused."""
        from edge.vision.classifier import Classifier
        from edge.config import detect_every
        from edge.vision.detectors import build_detector
        from edge.vision.pipeline import Pipeline
        from edge.vision.tracker import IouTracker

        if detector is None:
            self._cascade_stamp = _stamp(_detector_file(config))
            detector = build_detector(config.detector, config.model.threads)
        if classifier is None:
            self._model_stamp = _stamp(config.model.manifest)
            classifier = Classifier(config.model.manifest, config.model.artifact, threads=config.model.threads)
            log.info("model %s (%s, %s) with %d thread(s); labels: %s", config.model.manifest,
                     config.model.artifact, classifier.runtime, config.model.threads, ", ".join(classifier.labels))
            log.info("detector %s, full pass every %d frame(s)%s", config.detector.kind, detect_every(config),
                     ", faces aligned by their eyes" if config.detector.align and config.detector.kind != "haar" else "")
        t = config.tracker
        tracker = IouTracker(t.iou_threshold, t.max_age, t.smoothing) if t.enabled else None
        return Pipeline(detector, classifier, tracker, detect_every(config), config.detector.align)

    def _open_source(self, config: EdgeConfig) -> Any:
        from edge.vision.sources import source_from_config

        return source_from_config(config)

    def _event_source(self, config: EdgeConfig) -> Any:
        from edge.service.track_events import FrameEvents, TrackEvents

        e = config.events
        if e.mode == "tracks":
            return TrackEvents(self.labels, config.tracker.max_age, e.change_frames, e.change_margin)
        return FrameEvents(e.only_with_faces)

    def _use_pipeline(self, config: EdgeConfig, pipeline: Any) -> None:
        """Make ``pipeline`` the running one; labels, live view and event source follow its model."""
        self.pipeline = pipeline
        self.labels = tuple(pipeline.labels)
        self.model_name = pipeline.classifier.manifest.name
        if self.live is not None:
            self.live.set_labels(self.labels)

    def _finish_events(self, config: EdgeConfig) -> None:
        """Tracks still open end here (their tracker ends with this pipeline or mode)."""
        if self.events is not None and self.event_source is not None:
            for event in self.event_source.finish():
                self._emit(config, event)

    def _new_events(self, config: EdgeConfig) -> Any:
        from edge.service.events import EventLog

        return EventLog(config.events.path, config.events.max_bytes, config.events.backups)

    def _new_mqtt(self, config: EdgeConfig) -> Any:
        """A publisher for ``config`` (checked, not yet connecting), or None when MQTT is off."""
        if not config.mqtt.enabled:
            return None
        from edge.service.mqtt import MqttPublisher

        m = config.mqtt
        return MqttPublisher(m.host, m.port, m.topic_prefix, m.client_id or None, m.username or None,
                             m.password or None, m.qos, m.keepalive)

    def _start_mqtt(self, config: EdgeConfig) -> None:
        """Connect ``self.mqtt``, announcing Home Assistant's sensors first when asked to."""
        self.sensor_state = None
        self._ha_configs, self._ha_topics = [], set()
        if self.mqtt is None:
            return
        configs = self._discovery(config)
        if configs:
            self._announce(configs)
        self.mqtt.start()

    def _discovery(self, config: EdgeConfig) -> list[tuple[str, dict[str, Any]]]:
        """Home Assistant's config messages for ``config`` and the running model; none when it is off."""
        m = config.mqtt
        if not (m.enabled and m.homeassistant):
            return []
        from edge.service.homeassistant import discovery_messages

        return discovery_messages(m.topic_prefix, self.labels, m.discovery_prefix, self.model_name)

    def _announce(self, configs: list[tuple[str, dict[str, Any]]]) -> None:
        """Hand ``configs`` to the publisher with an empty config for every sensor it announced
        before and they lack (the share of a label the new model does not have), which is how Home
        Assistant removes an entity; the state then counts the running labels. The removals stay in
        the announcement, so a publisher that is offline at a reload still sends them on connecting."""
        from edge.service.homeassistant import SensorState, removal_messages

        live = {topic for topic, _ in configs}
        self.mqtt.announce([*configs, *removal_messages(self._ha_topics - live)])
        self._ha_configs = configs
        self._ha_topics |= live
        self.sensor_state = SensorState(self.labels)

    def _follow_model(self, config: EdgeConfig) -> None:
        """After a reload swapped the pipeline under an unchanged [mqtt], Home Assistant must see the
        new model's labels and name; a model with the same ones (or only a new detector or tracker)
        sends nothing, so a reload does not make every sensor flicker."""
        if self.mqtt is None or not self._ha_configs:
            return
        configs = self._discovery(config)
        if configs != self._ha_configs:
            self._announce(configs)

    def _retract_discovery(self, config: EdgeConfig) -> None:
        """Before the running publisher goes, remove the sensors ``config`` will not announce
        (homeassistant turned off, another prefix): otherwise their retained configs keep sensors
        in Home Assistant that nothing feeds. Only while connected: stop() sends "offline" after
        them on the same connection, and waits for nothing more."""
        from edge.service.homeassistant import removal_messages

        gone = self._ha_topics - {topic for topic, _ in self._discovery(config)}
        if gone and self.mqtt.connected:
            self.mqtt.announce(removal_messages(gone))

    def _new_server(self, config: EdgeConfig) -> Any:
        """A started status server for ``config`` (EdgeError if it cannot bind), or None when off."""
        if not config.http.enabled:
            return None
        from edge.service.status_server import StatusServer

        h = config.http
        live = None
        if h.live_view:
            from edge.service.live_view import LiveView

            live = LiveView(h.live_fps, h.timeline_minutes * 60)
            live.set_labels(self.labels)
        server = StatusServer(h.host, h.port, self.health_report, self.metrics_text, lambda: self.latest,
                              live, h.token)
        server.start()
        server.live_view = live  # the daemon feeds it frames while this server runs
        return server

    def _use_server(self, server: Any) -> None:
        self.server = server
        self.live = getattr(server, "live_view", None)

    def _start_outputs(self, config: EdgeConfig) -> None:
        self.events = self._new_events(config)
        log.info("events to %s%s", os.path.abspath(config.events.path),
                 " and stdout" if config.events.print else "")
        self.event_source = self._event_source(config)
        self.mqtt = self._new_mqtt(config)
        self._start_mqtt(config)
        self._use_server(self._new_server(config))

    def _stop_outputs(self) -> None:
        if self.mqtt is not None:
            self.mqtt.stop()
            self.mqtt = None
            self.sensor_state = None
        if self.events is not None:
            self.events.close()
        if self.server is not None:
            self.server.stop()
            self._use_server(None)

    # --- providers for the HTTP server -------------------------------------------------------
    def health_report(self) -> dict[str, Any]:
        extra = {"frames": self.counts["frames"], "dropped": self.counts["dropped"],
                 "mqtt_connected": bool(self.mqtt.connected) if self.mqtt is not None else None}
        if self.events is not None and self.events.errors:
            extra["event_write_errors"] = self.events.errors
            extra["event_log_error"] = self.events.last_error
        report = self.health.snapshot(extra)
        if report["status"] == "ok" and self.event_log_failing:
            report["status"], report["reason"] = "degraded", f"event log: {self.events.last_error}"
        return report

    def metrics_text(self) -> str:
        self.m_rss.set(_rss_bytes())
        self.m_up.set(1.0 if self.health_report()["status"] == "ok" else 0.0)
        if self.mqtt is not None:
            self.m_mqtt.set(1.0 if self.mqtt.connected else 0.0)
        if self.live is not None:
            self.m_live.set(float(self.live.encoded))
        return self.registry.render()

    # --- threads ------------------------------------------------------------------------------
    def _capture(self, config: EdgeConfig, frames: "queue.Queue[Any]", done: threading.Event,
                 halt: threading.Event, first_source: Any) -> None:
        """Read frames forever; reopen a failing source with exponential backoff."""
        backoff = config.source.reopen_min_seconds
        source = first_source
        while not halt.is_set():
            try:
                if source is None:
                    source = self._open_source(config)
                    with self._in_source_call():
                        source.open()
                    self.m_reopens.inc()
                    self.health.source_back()
                    log.info("reopened %s", source.description)
                backoff = config.source.reopen_min_seconds
                while not halt.is_set():
                    with self._in_source_call():
                        frame = source.read()
                    if frame is None:
                        done.set()
                        return
                    self._offer(frames, frame, source.live, halt)
            except SourceError as exc:
                self.health.source_failed(str(exc))
                log.warning("source failed: %s; reopening in %.1f s", exc, backoff)
                halt.wait(backoff)
                backoff = min(backoff * 2, config.source.reopen_max_seconds)
            finally:
                if source is not None:
                    source.close()
                    source = None
        done.set()

    @contextlib.contextmanager
    def _in_source_call(self) -> Iterator[None]:
        """Mark the capture thread as inside a camera call, which ``_hung`` times."""
        self._blocked_since = time.monotonic()
        try:
            yield
        finally:
            self._blocked_since = None

    def _offer(self, frames: "queue.Queue[Any]", frame: Any, live: bool, halt: threading.Event) -> None:
        if not live:  # a file: process every frame, paced by the consumer
            while not halt.is_set():
                try:
                    frames.put(frame, timeout=0.2)
                    return
                except queue.Full:
                    continue
            return
        try:
            frames.put_nowait(frame)
        except queue.Full:  # keep the newest frame: drop the oldest and count it
            try:
                frames.get_nowait()
            except queue.Empty:
                pass
            self.counts["dropped"] += 1
            self.m_dropped.inc()
            try:
                frames.put_nowait(frame)
            except queue.Full:
                pass

    def _handle(self, config: EdgeConfig, pipeline: Any, frame: Any) -> None:
        result = pipeline.process(frame.image, frame.index, frame.timestamp, frame.gray)
        self.health.frame()
        self.counts["frames"] += 1
        self.counts["faces"] += len(result.faces)
        self.m_frames.inc()
        self.m_faces.inc(len(result.faces))
        self.m_latency.observe(result.timings_ms["total"])
        for stage, summary in self.m_stage.items():
            summary.observe(result.timings_ms[stage])
        self.latest = result.to_event(frame.name)
        if self.live is not None:
            self.live.update(frame.image, result)
        if self.mqtt is not None and self.sensor_state is not None:
            state = self.sensor_state.update(result)
            if state is not None:
                self.mqtt.publish("state", state, retain=True)
        events = self.event_source.events(result, frame.name)
        for event in events:
            self._emit(config, event)
        if events and config.events.save_images and result.faces:
            self._save_snapshot(config, frame.image, result)

    def _emit(self, config: EdgeConfig, event: dict[str, Any]) -> None:
        """The log first (the record), then stdout and MQTT."""
        written = self.events.write(event)
        self.event_log_failing = not written
        if written:
            self.counts["events"] += 1
            self.m_events.inc()
        else:
            self.m_event_errors.inc()
        if config.events.print and not self.stdout_gone:
            self._print(event)
        if self.mqtt is not None:
            self.mqtt.publish_event(event)

    def _print(self, event: dict[str, Any]) -> None:
        """``--print-events``. A reader that goes away (``| head -1``) stops the daemon as SIGTERM
        would: the event is already in the log, and the rest shuts down in order, exit 0."""
        from edge.cli import quiet_closed_stdout

        try:
            print(_compact(event), flush=True)
        except BrokenPipeError:
            self.stdout_gone = True
            quiet_closed_stdout()
            log.info("stdout was closed by its reader; stopping")
            self.stop_reason = "stdout closed"
            self.stop_event.set()

    def _save_snapshot(self, config: EdgeConfig, image: Any, result: Any) -> None:
        """Opt-in only; at most one image per second so a busy scene cannot fill the card."""
        now = time.time()
        if now - self._last_snapshot < 1.0:
            return
        self._last_snapshot = now
        import cv2

        from edge.vision.pipeline import annotate

        folder = snapshots_dir(config.events)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(result.timestamp))}_{result.index:08d}.jpg"
            tmp = path.with_name(f".{path.name}.tmp.jpg")
            if cv2.imwrite(str(tmp), annotate(image, result)):
                tmp.replace(path)
        except OSError as exc:
            log.warning("cannot save snapshot: %s", exc)

    # --- main loop ----------------------------------------------------------------------------
    def _start_capture(self, config: EdgeConfig, source: Any, frames: "queue.Queue[Any] | None" = None) -> _Capture:
        frames = frames if frames is not None else queue.Queue(maxsize=config.daemon.queue_size)
        done, halt = threading.Event(), threading.Event()
        thread = threading.Thread(target=self._capture, args=(config, frames, done, halt, source),
                                  name="capture", daemon=True)
        thread.start()
        return _Capture(thread, frames, done, halt)

    def _first_source(self, config: EdgeConfig) -> Any:
        """The opened source; a file that cannot be opened or decoded stops the start, and so does a
        camera whose library is not installed; a camera that cannot be opened yet is retried by the
        capture thread."""
        source = self._open_source(config)
        if not source.live:
            from edge.preflight import check_source

            check_source(config)  # one frame decodes: a corrupt file fails here, not as an empty run
        try:
            source.open()
        except SourceError as exc:
            if not source.live or isinstance(exc, SourceNotInstalled):
                raise  # a missing file or library will not appear by retrying
            source.close()
            self.health.source_failed("could not be opened; retrying")
            return None
        return source

    def _run(self, config: EdgeConfig) -> str:
        """Run until stopped, the stream ends or max_frames; reloads happen in place. Return which."""
        self._use_pipeline(config, self._build_pipeline(config))
        try:
            source = self._first_source(config)
            self._start_outputs(config)
        except BaseException:
            self.pipeline.classifier.close()
            self._stop_outputs()
            raise
        self.capture = self._start_capture(config, source)
        notify("READY=1\nSTATUS=running")
        ping = watchdog_interval()
        last_ping = fps_mark = time.monotonic()
        fps_frames = self.counts["frames"]
        reason = "stopped"
        hung = False
        try:
            while True:
                if self.stop_event.is_set():
                    reason = self.stop_reason
                    break
                if self.reload_event.is_set():
                    self.reload_event.clear()
                    config = self._reload(config)
                    continue
                if config.daemon.max_frames and self.counts["frames"] >= config.daemon.max_frames:
                    reason = "max_frames"
                    break
                now = time.monotonic()
                hung = self._hung(config, now, hung)
                if ping is not None and now - last_ping >= ping and not hung:
                    notify("WATCHDOG=1")
                    last_ping = now
                if now - fps_mark >= 5.0:
                    self.m_fps.set((self.counts["frames"] - fps_frames) / (now - fps_mark))
                    fps_mark, fps_frames = now, self.counts["frames"]
                capture = self.capture
                try:
                    frame = capture.frames.get(timeout=0.2)
                except queue.Empty:
                    if capture.done.is_set() and capture.frames.empty():
                        reason = "end of stream"
                        break
                    continue
                self.m_queue.set(capture.frames.qsize())
                self._handle(config, self.pipeline, frame)
        finally:
            if self.capture is not None:
                self.capture.stop()
            self.pipeline.classifier.close()
            self._finish_events(config)
            self._stop_outputs()
        return reason

    def _reload(self, current: EdgeConfig) -> EdgeConfig:
        """The config that runs after a SIGHUP: the new one if every part it needs was built and
        checked, otherwise the current one, untouched (as on a Pi where systemd would not restart
        a daemon that exited on a bad reload)."""
        from edge.preflight import check_source

        staged = _Staged()
        stamps = self._model_stamp, self._cascade_stamp
        try:
            candidate = load_config(self.config_path, self.overrides)
            self._stage(current, candidate, staged, check_source)
        except EdgeError as exc:
            self._discard(staged)
            self._model_stamp, self._cascade_stamp = stamps  # still those of the running pipeline
            self.m_reloads_rejected.inc()
            log.error("reload refused, still running the previous config: %s", exc)
            return current
        self._swap(current, candidate, staged)
        self.config = candidate
        self.m_reloads.inc()
        log.info("reloaded config %s", self.config_path)
        return candidate

    def _stage(self, current: EdgeConfig, new: EdgeConfig, staged: _Staged, check_source: Any) -> None:
        """Build beside the running parts everything ``new`` changes; EdgeError if any is not ready."""
        # a model or cascade replaced on disk under the same path counts as changed
        same_model = new.model == current.model and _stamp(new.model.manifest) == self._model_stamp
        same_detector = new.detector == current.detector and _stamp(_detector_file(new)) == self._cascade_stamp
        if not (same_model and same_detector and new.tracker == current.tracker):
            staged.pipeline = self._build_pipeline(
                new, classifier=self.pipeline.classifier if same_model else None,
                detector=self.pipeline.detector if same_detector else None)
            if not same_model:
                staged.built.append(staged.pipeline.classifier)
        if (new.source != current.source or new.detector.detect_width != current.detector.detect_width
                or new.daemon.queue_size != current.daemon.queue_size):
            staged.restart_capture = True
            source = self._open_source(new)  # checks paths and names now
            if source.live:
                source.close()  # the running capture holds the device; it is opened after the swap
            else:
                check_source(new)
                source.open()
                staged.source = source
                staged.built.append(source)
        if (new.events.path, new.events.max_bytes, new.events.backups) != (
                current.events.path, current.events.max_bytes, current.events.backups):
            staged.events = self._new_events(new)
            staged.built.append(staged.events)
            if staged.events.errors:
                raise EdgeError(f"cannot open the event log {new.events.path}: {staged.events.last_error}")
        if new.mqtt != current.mqtt:
            staged.mqtt_changed = True
            staged.mqtt = self._new_mqtt(new)  # checked here, connected after the old one said offline
        if new.http != current.http:  # last: the only step that may have to let the running part go
            staged.server_changed = True
            same_port = (self.server is not None and new.http.enabled and new.http.port != 0
                         and new.http.port == self.server.port)
            if same_port:  # another host on the same port: the running server must let it go first
                self.server.stop()
                try:
                    staged.server = self._new_server(new)
                except EdgeError:
                    self.server.start()  # the address it just released
                    raise
                self.server = None
            else:
                staged.server = self._new_server(new)
                staged.built.append(staged.server)

    def _discard(self, staged: _Staged) -> None:
        for part in reversed(staged.built):
            closer = getattr(part, "stop", None) or getattr(part, "close")
            closer()

    def _swap(self, current: EdgeConfig, new: EdgeConfig, staged: _Staged) -> None:
        """Put the staged parts in place of the running ones; nothing here can fail on the config."""
        if staged.pipeline is not None or new.events != current.events:
            self._finish_events(current)  # the old tracker's (or mode's) tracks end with it
        if staged.pipeline is not None:
            old = self.pipeline
            self._use_pipeline(new, staged.pipeline)
            if old.classifier is not self.pipeline.classifier:
                old.classifier.close()
        if staged.restart_capture and self.capture is not None:
            old_capture = self.capture
            old_capture.stop()
            keep_queue = new.daemon.queue_size == current.daemon.queue_size
            self.capture = self._start_capture(new, staged.source, old_capture.frames if keep_queue else None)
        if staged.events is not None:
            old_events, self.events = self.events, staged.events
            old_events.close()
        if staged.pipeline is not None or new.events != current.events:
            self.event_source = self._event_source(new)
        if staged.mqtt_changed:
            if self.mqtt is not None:
                self._retract_discovery(new)
                self.mqtt.stop()  # "offline" from the old client before the new one says "online"
            self.mqtt = staged.mqtt
            self._start_mqtt(new)
        elif staged.pipeline is not None:
            self._follow_model(new)
        if staged.server_changed:
            if self.server is not None:
                self.server.stop()
            self._use_server(staged.server)
        self.health.stall_seconds = new.daemon.stall_seconds

    def _hung(self, config: EdgeConfig, now: float, was_hung: bool) -> bool:
        """Whether the capture thread has been stuck in one open/read for ``hang_seconds``.

        Reopening handles a camera that fails; a call that never returns (a libcamera request
        that times out inside the driver) raises nothing, so only a restart frees the device.
        Under systemd the watchdog stops being fed and systemd restarts the daemon; elsewhere
        /healthz says failed so whatever supervises it can.
        """
        since = self._blocked_since
        hung = since is not None and now - since >= config.daemon.hang_seconds
        if hung and not was_hung:
            assert since is not None
            message = f"the source has been blocked in one call for {now - since:.0f} s"
            self.health.set("failed", message)
            log.error("%s: %s", message, "no more watchdog pings, systemd will restart the daemon"
                      if watchdog_interval() is not None else "restart the daemon")
        return hung

    def run(self) -> RunSummary:
        self._install_signals()
        started = time.monotonic()
        reason = self._run(self.config)
        notify("STOPPING=1")
        return RunSummary(self.counts["frames"], self.counts["faces"], self.counts["dropped"],
                          self.counts["events"], time.monotonic() - started, reason)


def _stamp(path: str | None) -> tuple[Any, ...] | None:
    """What identifies a file's content cheaply (resolved path, size, mtime), to notice a model
    replaced under the same name; None when there is no such file."""
    if not path:
        return None
    try:
        resolved = Path(path).resolve()
        info = resolved.stat()
    except OSError:
        return None
    return (str(resolved), info.st_size, info.st_mtime_ns)


def _detector_file(config: EdgeConfig) -> str | None:
    """The file the detector is built from: Haar's cascade or BlazeFace's model."""
    return config.detector.model if config.detector.kind == "blazeface" else config.detector.cascade


def _compact(event: dict[str, Any]) -> str:
    import json

    return json.dumps(event, separators=(",", ":"))


def run_daemon(config_path: Path | None, overrides: list[str]) -> RunSummary:
    from edge.cli import CurrentStderr

    config = load_config(config_path, overrides)
    logging.basicConfig(level=config.daemon.log_level.upper(), format="fer-edge: %(message)s",
                        stream=CurrentStderr())
    return Daemon(config, config_path, overrides).run()
