"""One benchmark run, start to finish: the order of the parts and what goes into results.json.

Order matters: model latency runs in subprocesses, then our pipeline in this process, and only
then the accuracy part, which may import tensorflow here; the peer runs last in its own venv and
process. Code timed in this process therefore never shares it with a loaded tensorflow.

The pipeline is timed twice: at the daemon's defaults (what the daemon costs) and with full
detection on every frame, the only one compared with `fer`, which detects on every frame.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.errors import BenchError, FacesUnavailable
from benchmarks.outputs import display_path
from benchmarks.timing import QUICK_MODEL, QUICK_PIPELINE, TimingPolicy

log = logging.getLogger("fer-bench")
SCHEMA = "fer-bench-results"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RunSettings:
    manifest: Path
    data: Path
    split: str
    artifacts: tuple[str, ...]
    threads: tuple[int, ...]
    batches: tuple[int, ...]
    clip: Path
    frames: int
    model_policy: TimingPolicy
    pipeline_policy: TimingPolicy
    peer_policy: TimingPolicy
    peer: bool = True
    peer_python: Path | None = None
    keras: bool = True
    limit_faces: int = 0
    quick: bool = False
    command: str = ""
    also: tuple[Path, ...] = ()  # other models (say a MobileNetV2 backbone) set beside this one
    detectors: bool = True  # Haar and BlazeFace side by side (benchmarks.detectors)
    votes: Path | None = None  # FER+ votes for the scored faces: agreement figures beside top-1

    def to_dict(self) -> dict[str, Any]:
        """Paths as a report shows them: the models and clip relative to the repository, the data sets by name."""
        from train.data_location import data_name, votes_name

        data = asdict(self)
        for key in ("manifest", "clip"):
            data[key] = display_path(data[key])
        data["data"] = data_name(self.data)
        data["votes"] = votes_name(self.votes) if self.votes is not None else None
        data["peer_python"] = str(self.peer_python) if self.peer_python is not None else None
        data["also"] = [display_path(path) for path in self.also]
        for key in ("model_policy", "pipeline_policy", "peer_policy"):
            data[key] = getattr(self, key).to_dict()
        data["target_artifact"] = "int8" if "int8" in self.artifacts else self.artifacts[0]
        return data


def policies(quick: bool, runs: int | None, min_time: float | None, frames: int) -> tuple[TimingPolicy, ...]:
    """(model, pipeline, peer) timing rules; ``--runs`` and ``--min-time`` override the defaults."""
    if quick:
        model, pipeline, peer = QUICK_MODEL, QUICK_PIPELINE, TimingPolicy(warmup=1, min_runs=1, min_seconds=0.0,
                                                                          max_seconds=1.0)
    else:
        model = TimingPolicy(warmup=10, min_runs=200, min_seconds=2.0, max_seconds=15.0)
        pipeline = TimingPolicy(warmup=10, min_runs=max(300, frames), min_seconds=5.0, max_seconds=60.0)
        peer = TimingPolicy(warmup=5, min_runs=frames, min_seconds=5.0, max_seconds=120.0)
    if runs is not None:
        model = TimingPolicy(model.warmup, runs, model.min_seconds, model.max_seconds)
        pipeline = TimingPolicy(pipeline.warmup, runs, pipeline.min_seconds, pipeline.max_seconds)
        peer = TimingPolicy(peer.warmup, runs, peer.min_seconds, peer.max_seconds)
    if min_time is not None:
        model, pipeline, peer = (TimingPolicy(p.warmup, p.min_runs, min_time, max(p.max_seconds, min_time))
                                 for p in (model, pipeline, peer))
    return model, pipeline, peer


def check_settings(settings: RunSettings) -> Any:
    """Fail fast, before minutes of measuring, on a bad manifest, artifact, clip or data path."""
    from edge.errors import EdgeError
    from edge.vision.manifest import check_artifact, load_manifest

    try:
        manifest = load_manifest(settings.manifest)
        for name in settings.artifacts:
            check_artifact(manifest, name)
    except EdgeError as exc:
        raise BenchError(str(exc)) from None
    if not settings.artifacts:  # results.json names its target artifact: there must be one
        raise BenchError(f"no artifact to measure: {settings.manifest} lists none, or --artifacts named none")
    from benchmarks.frames import check_clip

    check_clip(settings.clip)
    if not settings.data.exists():
        raise BenchError(f"data path {settings.data} does not exist")
    for path in settings.also:
        try:
            load_manifest(path)
        except EdgeError as exc:
            raise BenchError(f"--also: {exc}") from None
    if any(t < 1 for t in settings.threads) or any(b < 1 for b in settings.batches) or settings.frames < 1:
        raise BenchError("--threads, --batch and --frames must be positive")
    if settings.limit_faces < 0:
        raise BenchError(f"--limit-faces must be 0 (every face) or more, not {settings.limit_faces}")
    return manifest


def run(settings: RunSettings) -> dict[str, Any]:
    from benchmarks import accuracy as acc
    from benchmarks.frames import load_frames
    from benchmarks.model_latency import measure_models
    from benchmarks.peer import PeerResult, measure_peer, peer_python
    from benchmarks.pipeline_latency import measure_pipelines
    from benchmarks.system import busy_note, load_average, system_info
    from benchmarks.targets import judge

    manifest = check_settings(settings)
    info = system_info()
    notes = [n for n in [busy_note(info)] if n]
    if settings.quick:
        notes.append("--quick: tiny run counts to prove the tool works; these figures are not stable.")
    started = time.perf_counter()
    try:
        faces = acc.load_faces(settings.data, settings.split, manifest.labels, settings.limit_faces, manifest.info,
                                settings.votes)
        faces_error = ""
    except FacesUnavailable as exc:  # any other reason (--data, --split) is an error before timing, not a note
        faces, faces_error = None, str(exc)
        notes.append(f"Accuracy not measured: {exc}")
    import numpy as np

    timing_faces = faces.images if faces is not None else np.random.default_rng(0).integers(
        0, 256, (max(settings.batches), 48, 48), dtype=np.uint8)
    log.info("model latency: %s x threads %s x batch %s", ",".join(settings.artifacts),
             ",".join(map(str, settings.threads)), ",".join(map(str, settings.batches)))
    models = measure_models(settings.manifest, list(settings.artifacts), list(settings.threads),
                            list(settings.batches), settings.model_policy, timing_faces)
    from edge.vision.manifest import load_manifest

    others = [(load_manifest(path), path) for path in settings.also]
    other_results = [_other_model(manifest, path, settings, timing_faces) for manifest, path in others]
    log.info("pipeline latency on %s", settings.clip.name)
    clip = load_frames(settings.clip, settings.frames)
    if clip.size != (640, 480):
        notes.append(f"Frames are {clip.size[0]}x{clip.size[1]}, not 640x480.")
    pipeline_rows, detection, skipped = measure_pipelines(settings.manifest, list(settings.artifacts), 1, clip,
                                                          settings.pipeline_policy)
    notes.extend(skipped)
    log.info("pipeline latency with full detection on every frame (like for like with fer)")
    full_rows, full_detection, skipped = measure_pipelines(settings.manifest, list(settings.artifacts), 1, clip,
                                                           settings.pipeline_policy, detect_every=1)
    notes.extend(skipped)
    accuracy = None
    if faces is not None:
        log.info("accuracy on %s (%d faces)", faces.source, len(faces.targets))
        accuracy, _ = acc.measure_accuracy(settings.manifest, list(settings.artifacts), faces,
                                           settings.keras, threads=max(settings.threads))
        notes.extend(accuracy.notes)
    for (other, path), result in zip(others, other_results):
        result["accuracy"] = _score_other_model(other, path, result, settings)
    if settings.peer:
        log.info("peer: the fer package")
        # No float reference for fer: "points lost to quantization" and agreement are about our own artifacts;
        # ours vs fer is in the ratios instead.
        peer = measure_peer(settings.peer_python or peer_python(), faces, clip, settings.peer_policy)
        if not peer.available:
            log.warning("peer not measured: %s", peer.reason)
    else:
        peer = PeerResult(False, reason="peer comparison skipped (--no-peer)")
    detectors = None
    if settings.detectors:
        from benchmarks.detectors import measure_detectors, env_folder

        log.info("face detectors side by side")
        # --quick: the committed clips only; real portraits and tilted FER2013 faces take a minute more
        shared = (None, None) if settings.quick else (env_folder("PORTRAITS_DIR"),
                                                      env_folder("FER2013_DIR"))
        detectors = measure_detectors(settings.manifest, settings.clip, *shared)
    results: dict[str, Any] = {
        "schema": SCHEMA, "version": SCHEMA_VERSION, "system": info, "config": settings.to_dict(),
        "manifest": {"path": display_path(settings.manifest), "name": manifest.name, "created": manifest.info.get("created"),
                     "source_model": manifest.info.get("source_model"), "labels": list(manifest.labels),
                     "artifacts": {name: _artifact_entry(manifest.artifact(name)) for name in settings.artifacts}},
        "accuracy": accuracy.to_dict() if accuracy else {"error": faces_error},
        "model_latency": models.to_dict(),
        "pipeline": _pipeline_entry(settings, clip, pipeline_rows, full_rows, detection, full_detection),
        "peer": peer.to_dict(),
        "notes": notes,
    }
    if other_results:
        results["also"] = other_results
    if detectors is not None:
        results["detectors"] = detectors
    results["ratios"] = ratios(results)
    results["targets"] = judge(results)
    info["load_average_end"] = load_average()
    info["duration_s"] = round(time.perf_counter() - started, 1)
    return results


def _artifact_entry(artifact: Any) -> dict[str, Any]:
    """What results.json keeps of an artifact; the sha256 says which model a figure (or a soak) belongs to."""
    return {"format": artifact.format, "bytes": artifact.bytes, "path": artifact.path, "input": artifact.input.dtype,
            "sha256": artifact.sha256}


def _pipeline_entry(settings: RunSettings, clip: Any, rows: list[Any], full_rows: list[Any],
                    detection: dict[str, Any], full_detection: dict[str, Any]) -> dict[str, Any]:
    """Both pipeline schedules, with the thread counts that make their labels true."""
    from benchmarks.pipeline_latency import opencv_threads

    every = rows[0].detect_every if rows else None
    return {"clip": str(settings.clip), "frames_distinct": len(clip.frames), "frame_size": list(clip.size),
            "threads": 1, "opencv_threads": rows[0].opencv_threads if rows else opencv_threads(),
            "detect_every": every, "rows": [r.to_dict() for r in rows],
            "full_detection_rows": [r.to_dict() for r in full_rows],
            "detection": {k: v.to_dict() for k, v in detection.items()},
            "detection_every_frame": {k: v.to_dict() for k, v in full_detection.items()}}


def _compared_artifacts(manifest: Any) -> list[str]:
    """What a model set beside the main one is judged by: its int8 and its float32."""
    chosen = [name for name in ("int8", "float32") if name in manifest.artifacts]
    return chosen or list(manifest.artifacts)[:1]


def _other_model(manifest: Any, path: Path, settings: RunSettings, timing_faces: Any) -> dict[str, Any]:
    """Model latency of another manifest's int8/float32, timed exactly as the main model's."""
    from benchmarks.model_latency import measure_models

    artifacts = _compared_artifacts(manifest)
    log.info("model latency (--also %s): %s", manifest.name, ",".join(artifacts))
    models = measure_models(path, artifacts, list(settings.threads), list(settings.batches), settings.model_policy,
                            timing_faces)
    source = manifest.info.get("source_model") or {}
    return {"manifest": display_path(path), "name": manifest.name, "parameters": source.get("parameters"),
            "labels": list(manifest.labels),
            "artifacts": {name: {"format": manifest.artifact(name).format, "bytes": manifest.artifact(name).bytes}
                          for name in artifacts},
            "model_latency": models.to_dict()}


def _score_other_model(manifest: Any, path: Path, other: dict[str, Any], settings: RunSettings) -> dict[str, Any]:
    """Accuracy of another manifest on the same data, loaded the way its own run loaded it."""
    from benchmarks import accuracy as acc

    try:
        faces = acc.load_faces(settings.data, settings.split, manifest.labels, settings.limit_faces, manifest.info,
                                settings.votes)
    except BenchError as exc:
        return {"error": str(exc)}
    log.info("accuracy (--also %s) on %s (%d faces)", manifest.name, faces.source, len(faces.targets))
    scored, _ = acc.measure_accuracy(path, list(other["artifacts"]), faces, settings.keras,
                                     threads=max(settings.threads))
    return scored.to_dict()


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Ours / fer's, taken in this one run; absent when the peer was not measured.

    Latency is compared only with our full detection on every frame, as `fer` detects on every
    frame; the daemon's default schedule skips most full detections and would flatter us.
    """
    peer = results.get("peer") or {}
    rows = results.get("pipeline", {}).get("full_detection_rows", [])
    main = results["config"]["target_artifact"]
    ours = next((r for r in rows if r["artifact"] == main), None)
    if not peer.get("available") or ours is None or not peer.get("latency"):
        return {}
    out = {"artifact": main, "ours_detect_every": ours["detect_every"],
           "latency_p50_ours_over_fer": round(ours["total"]["p50"] / peer["latency"]["p50"], 4),
           "cpu_ms_ours_over_fer": round(ours["cpu_ms_per_frame"]["p50"] / peer["cpu_ms_per_frame"]["p50"], 4)
           if peer.get("cpu_ms_per_frame") and peer["cpu_ms_per_frame"]["p50"] else None,
           "speedup_fer_over_ours": round(peer["latency"]["p50"] / ours["total"]["p50"], 2)}
    acc = {m["name"]: m for m in (results.get("accuracy") or {}).get("models", [])}
    fer_acc = next(iter(peer.get("accuracy") or []), None)
    if main in acc and fer_acc:
        out["top1_points_ours_minus_fer"] = round((acc[main]["accuracy"] - fer_acc["accuracy"]) * 100, 2)
        out["macro_f1_ours_minus_fer"] = round(acc[main]["macro_f1"] - fer_acc["macro_f1"], 4)
    return out
