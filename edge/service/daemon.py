"""The headless camera daemon: capture thread, bounded queue, pipeline, events, HTTP, MQTT.

Built for weeks unattended: a camera that fails is reopened with backoff while /healthz says
degraded; a full queue drops (and counts) frames instead of blocking capture; every event is
flushed to the JSON Lines log before anything else is attempted; a broker that is down only
costs MQTT delivery; SIGTERM/SIGINT stop cleanly with exit 0 and SIGHUP reloads the config.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import resource
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.config import EdgeConfig, load_config, snapshots_dir
from edge.errors import EdgeError, SourceError
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


class Health:
    """What /healthz reports; written by the capture and processing threads."""

    def __init__(self, stall_seconds: float) -> None:
        self.lock = threading.Lock()
        self.status = "starting"
        self.reason = ""
        self.last_frame = 0.0
        self.stall_seconds = stall_seconds
        self.started = time.time()

    def set(self, status: str, reason: str = "") -> None:
        with self.lock:
            self.status, self.reason = status, reason

    def frame(self) -> None:
        with self.lock:
            self.last_frame = time.time()
            if self.status != "ok":
                self.status, self.reason = "ok", ""

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
        self.m_reloads = r.counter("fer_edge_config_reloads_total", "Successful SIGHUP config reloads")
        self.m_latency = r.summary("fer_edge_frame_latency_ms", "Processing time per frame (ms)")
        self.m_queue = r.gauge("fer_edge_queue_depth", "Frames waiting in the queue")
        self.m_fps = r.gauge("fer_edge_fps", "Frames per second over the last 5 seconds")
        self.m_rss = r.gauge("fer_edge_resident_memory_bytes", "Resident memory of the daemon")
        self.m_mqtt = r.gauge("fer_edge_mqtt_connected", "1 when connected to the MQTT broker")
        self.m_up = r.gauge("fer_edge_healthy", "1 when /healthz reports ok")
        stages = r.summary("fer_edge_stage_ms", "Time per frame in each pipeline stage (ms)", labelnames=("stage",))
        self.m_stage = {stage: stages.labels(stage=stage) for stage in ("detect", "crop", "classify", "track")}
        self.counts = {"frames": 0, "faces": 0, "dropped": 0, "events": 0}
        self.mqtt: Any = None
        self.events: Any = None
        self.event_log_failing = False
        self._last_snapshot = 0.0  # time of the last opt-in snapshot
        self.server: Any = None
        self._blocked_since: float | None = None  # monotonic time the capture thread entered open/read

    # --- signals -----------------------------------------------------------------------------
    def _install_signals(self) -> None:
        if not self.install_signals or threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: self.reload_event.set())

    # --- building blocks ---------------------------------------------------------------------
    def _build_pipeline(self, config: EdgeConfig) -> Any:
        from edge.vision.classifier import Classifier
        from edge.config import detect_every
        from edge.vision.faces import build_detector
        from edge.vision.pipeline import Pipeline
        from edge.vision.tracker import IouTracker

        classifier = Classifier(config.model.manifest, config.model.artifact, threads=config.model.threads)
        detector = build_detector(config.detector, config.model.threads)
        t = config.tracker
        tracker = IouTracker(t.iou_threshold, t.max_age, t.smoothing) if t.enabled else None
        log.info("model %s (%s, %s) with %d thread(s); labels: %s", config.model.manifest, config.model.artifact,
                 classifier.runtime, config.model.threads, ", ".join(classifier.labels))
        log.info("detector %s, full pass every %d frame(s)%s", config.detector.kind, detect_every(config),
                 ", faces aligned by their eyes" if config.detector.align and config.detector.kind != "haar" else "")
        return Pipeline(detector, classifier, tracker, detect_every(config), config.detector.align)

    def _open_source(self, config: EdgeConfig) -> Any:
        from edge.vision.sources import source_from_config

        return source_from_config(config)

    def _start_outputs(self, config: EdgeConfig) -> None:
        from edge.service.events import EventLog

        self.events = EventLog(config.events.path, config.events.max_bytes, config.events.backups)
        if config.mqtt.enabled:
            from edge.service.mqtt import MqttPublisher

            m = config.mqtt
            self.mqtt = MqttPublisher(m.host, m.port, m.topic_prefix, m.client_id or None, m.username or None,
                                      m.password or None, m.qos, m.keepalive)
            self.mqtt.start()
        if config.http.enabled and self.server is None:
            from edge.service.status_server import StatusServer

            self.server = StatusServer(config.http.host, config.http.port, self.health_report, self.metrics_text,
                                       lambda: self.latest)
            self.server.start()

    def _stop_outputs(self, keep_server: bool = False) -> None:
        if self.mqtt is not None:
            self.mqtt.stop()
            self.mqtt = None
        if self.events is not None:
            self.events.close()
        if self.server is not None and not keep_server:
            self.server.stop()
            self.server = None

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
                self.health.set("degraded", f"source: {exc}")
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
        event = result.to_event(frame.name)
        self.latest = event
        if result.faces or not config.events.only_with_faces:
            written = self.events.write(event)
            self.event_log_failing = not written
            if written:
                self.counts["events"] += 1
                self.m_events.inc()
            else:
                self.m_event_errors.inc()
            if config.events.print:
                print(_compact(event), flush=True)
            if self.mqtt is not None:
                self.mqtt.publish_event(event)
            if config.events.save_images and result.faces:
                self._save_snapshot(config, frame.image, result)

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
    def _run_config(self, config: EdgeConfig) -> str:
        """Run until stopped, reloaded, the stream ends or max_frames; return which."""
        pipeline = self._build_pipeline(config)
        source = self._open_source(config)
        try:
            source.open()
        except SourceError:
            if not source.live:
                raise  # a missing file will not appear by retrying
            source.close()
            source = None
            self.health.set("degraded", "source could not be opened; retrying")
        self._start_outputs(config)
        frames: "queue.Queue[Any]" = queue.Queue(maxsize=config.daemon.queue_size)
        done, halt = threading.Event(), threading.Event()
        capture = threading.Thread(target=self._capture, args=(config, frames, done, halt, source),
                                   name="capture", daemon=True)
        capture.start()
        notify("READY=1\nSTATUS=running")
        ping = watchdog_interval()
        last_ping = fps_mark = time.monotonic()
        fps_frames = self.counts["frames"]
        reason = "stopped"
        hung = False
        try:
            while True:
                if self.stop_event.is_set():
                    reason = "stopped"
                    break
                if self.reload_event.is_set():
                    reason = "reload"
                    break
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
                try:
                    frame = frames.get(timeout=0.2)
                except queue.Empty:
                    if done.is_set() and frames.empty():
                        reason = "end of stream"
                        break
                    continue
                self.m_queue.set(frames.qsize())
                self._handle(config, pipeline, frame)
        finally:
            halt.set()
            capture.join(timeout=5)
            pipeline.classifier.close()
            self._stop_outputs(keep_server=reason == "reload")
        return reason

    def _reloaded(self, current: EdgeConfig) -> EdgeConfig | None:
        """The new config if it would run; otherwise None, and the running one stays (as on a Pi
        where systemd would not restart a daemon that exited on a bad reload)."""
        from edge.preflight import preflight

        try:
            candidate = load_config(self.config_path, self.overrides)
            preflight(candidate)
        except EdgeError as exc:
            log.error("reload failed, keeping the previous config: %s", exc)
            return None
        if candidate.http != current.http and self.server is not None:
            self.server.stop()  # _start_outputs binds the new address
            self.server = None
        self.m_reloads.inc()
        log.info("reloaded config %s", self.config_path)
        return candidate

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
        config = self.config
        previous: EdgeConfig | None = None  # the config a reload replaced, until the new one has run
        while True:
            try:
                reason = self._run_config(config)
            except EdgeError as exc:
                if previous is None:
                    raise
                log.error("the reloaded config failed, going back to the previous one: %s", exc)
                config, previous = previous, None
                self.config = config
                continue
            previous = None
            if reason != "reload":
                break
            self.reload_event.clear()
            candidate = self._reloaded(config)
            if candidate is not None:
                config, previous = candidate, config
                self.config = config
        notify("STOPPING=1")
        summary = RunSummary(self.counts["frames"], self.counts["faces"], self.counts["dropped"],
                             self.counts["events"], time.monotonic() - started, reason)
        return summary


def _compact(event: dict[str, Any]) -> str:
    import json

    return json.dumps(event, separators=(",", ":"))


def run_daemon(config_path: Path | None, overrides: list[str]) -> RunSummary:
    config = load_config(config_path, overrides)
    logging.basicConfig(level=config.daemon.log_level.upper(), format="fer-edge: %(message)s", stream=sys.stderr)
    return Daemon(config, config_path, overrides).run()
