"""The PyPI `fer` package as a peer, measured in the same run on the same faces and frames.

`fer` drags in tensorflow and more, so it lives in its own venv (``.venv-bench-fer``, built by
``fer-bench setup-peer``) and runs in a subprocess (``peer_fer_runner.py``) that returns JSON.
When the venv is missing or the runner fails, the result says why and carries no figures:
the report must never show a number that was not measured.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.accuracy import LabelledFaces, ModelAccuracy, scored
from benchmarks.detection import DetectionScore, score_detections
from benchmarks.errors import PeerUnavailable
from benchmarks.frames import ClipFrames
from benchmarks.timing import Stats, TimingPolicy, summarize
from edge.vision.faces import Box

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = ROOT / ".venv-bench-fer"
RUNNER = Path(__file__).with_name("peer_fer_runner.py")
FER_VERSION = "25.10.3"
STAMP = ".fer-bench-peer"
RUN_TIMEOUT = 3600
log = logging.getLogger("fer-bench")


def requirements(machine: str | None = None) -> list[str]:
    """What `fer` imports to run FER().detect_emotions: tensorflow (its model loader and TFLite
    interpreter), OpenCV (cv2.data's Haar cascade), numpy, requests and Pillow (imported by
    fer.utils), and pkg_resources (setuptools < 81) for its model paths. tensorflow-cpu is the
    smaller wheel where it exists (x86-64); elsewhere (aarch64, a Pi) it is plain tensorflow."""
    machine = machine or platform.machine()
    tensorflow = "tensorflow-cpu==2.21.0" if machine in ("x86_64", "AMD64") else "tensorflow==2.21.0"
    return [tensorflow, "opencv-python-headless>=4.8,<5", "numpy", "requests", "Pillow", "setuptools<81"]


def peer_python(venv: Path = DEFAULT_VENV) -> Path:
    return Path(os.environ.get("FER_BENCH_PEER_PYTHON") or venv / "bin" / "python")


def setup_peer(venv: Path = DEFAULT_VENV, force: bool = False) -> Path:
    """Create the venv and install `fer` with --no-deps plus ``requirements()``; idempotent via a stamp."""
    python = venv / "bin" / "python"
    stamp = venv / STAMP
    wanted = json.dumps({"fer": FER_VERSION, "requirements": requirements()})
    if not force and python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        log.info("peer venv %s is up to date", venv)
        return python
    _check_venv_folder(venv)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--no-deps", f"fer=={FER_VERSION}"],
        [str(python), "-m", "pip", "install", "-q", *requirements()],
        [str(python), "-c", "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; from fer.fer import FER; FER()"],
    ]
    for step in steps:
        log.info("peer setup: %s", " ".join(step[2:] if step[0] == str(python) else step))
        try:
            result = subprocess.run(step, capture_output=True, text=True, timeout=3600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PeerUnavailable(f"peer setup failed at '{' '.join(step[:4])}': {exc}") from None
        if result.returncode != 0:
            tail = [line for line in result.stderr.strip().splitlines() if line.strip()] or ["no output"]
            raise PeerUnavailable(f"peer setup failed at '{' '.join(step[-3:])}': {tail[-1][:300]}")
        if step is steps[0]:
            stamp.write_text("")  # ours from now on: a setup that fails later may clear it again
    stamp.write_text(wanted)
    return python


def _check_venv_folder(venv: Path) -> None:
    """`python -m venv --clear` empties the folder first: only one this command built (it holds the stamp)
    or an empty one, never a folder of the user's (or the project's own .venv) given as --venv by mistake."""
    if venv.is_dir() and not (venv / STAMP).is_file() and any(venv.iterdir()):
        raise PeerUnavailable(f"--venv {venv} is not empty and was not built by fer-bench setup-peer, so it would "
                              "be emptied: choose a new folder, or delete it yourself")


@dataclass(frozen=True)
class PeerResult:
    available: bool
    reason: str = ""
    package: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    model_files: dict[str, int] = field(default_factory=dict)
    accuracy: tuple[ModelAccuracy, ...] = ()
    accuracy_errors: dict[str, str] = field(default_factory=dict)
    ms_per_face: dict[str, float] = field(default_factory=dict)
    ms_per_face_batch: dict[str, int] = field(default_factory=dict)  # faces per call ms_per_face was timed at
    latency: Stats | None = None  # FER().detect_emotions per frame
    cpu_ms_per_frame: Stats | None = None
    fps: float | None = None
    load_ms: float | None = None
    import_ms: float | None = None
    peak_rss_mb: float | None = None
    frames_mb: float | None = None
    detection: DetectionScore | None = None
    network_attempts: tuple[str, ...] = ()
    method: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"available": self.available, "reason": self.reason, "package": self.package,
                "versions": self.versions, "model_files": self.model_files,
                "accuracy": [m.to_dict() for m in self.accuracy], "accuracy_errors": self.accuracy_errors,
                "ms_per_face": {k: round(v, 4) for k, v in self.ms_per_face.items()},
                "ms_per_face_batch": self.ms_per_face_batch,
                "latency": self.latency.to_dict() if self.latency else None,
                "cpu_ms_per_frame": self.cpu_ms_per_frame.to_dict() if self.cpu_ms_per_frame else None,
                "fps": self.fps, "load_ms": self.load_ms, "import_ms": self.import_ms,
                "peak_rss_mb": self.peak_rss_mb, "frames_mb": self.frames_mb,
                "detection": self.detection.to_dict() if self.detection else None,
                "network_attempts": list(self.network_attempts), "method": self.method}


METHOD = ("accuracy: each 48x48 test face through fer's emotion model directly with fer's own preprocessing "
          "(resize to 64x64, /255, (x-0.5)*2), since a Haar cascade finds no face in a tight 48x48 crop; both shipped "
          "models: the quantized TFLite one FER() uses by default, and emotion_model.hdf5 (FER(use_tflite=False)); "
          "ms/face is one call over every face (TFLite) or batches of 256 (hdf5), not at our batch sizes. "
          "latency: FER().detect_emotions(frame) with default settings on the same decoded 640x480 frames as ours. "
          "Labels mapped to ours by name. Network connections blocked during the run.")


def run_runner(python: Path, faces: np.ndarray | None, clip: ClipFrames | None, policy: TimingPolicy) -> dict[str, Any]:
    if not python.is_file():
        raise PeerUnavailable(f"peer python {python} not found: build the peer venv with `fer-bench setup-peer`")
    with tempfile.TemporaryDirectory(prefix="fer-bench-peer-") as tmp:
        args = [str(python), str(RUNNER), "--out", str(Path(tmp) / "peer.json"), "--warmup", str(policy.warmup),
                "--min-runs", str(policy.min_runs), "--min-seconds", str(policy.min_seconds),
                "--max-seconds", str(policy.max_seconds)]
        if faces is not None:
            np.savez(Path(tmp) / "faces.npz", images=faces)
            args += ["--faces", str(Path(tmp) / "faces.npz")]
        if clip is not None:
            np.savez(Path(tmp) / "frames.npz", frames=np.stack(clip.frames))
            args += ["--frames", str(Path(tmp) / "frames.npz")]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
        try:
            result = subprocess.run(args, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise PeerUnavailable(f"the fer runner did not finish in {RUN_TIMEOUT} s") from None
        except OSError as exc:
            raise PeerUnavailable(f"cannot start peer python {python}: {exc.strerror}") from None
        out = Path(tmp) / "peer.json"
        if result.returncode != 0 or not out.is_file():
            lines = [line for line in result.stderr.strip().splitlines() if line.strip()] or ["no output"]
            raise PeerUnavailable(f"the fer runner failed (exit {result.returncode}): {lines[-1][:300]}")
        return json.loads(out.read_text())


def to_indexes(names: list[str], labels: tuple[str, ...]) -> np.ndarray:
    unknown = sorted(set(names) - set(labels))
    if unknown:
        raise PeerUnavailable(f"fer answered labels we do not have: {', '.join(unknown)}")
    return np.asarray([labels.index(name) for name in names], dtype=np.int64)


def measure_peer(python: Path, faces: LabelledFaces | None, clip: ClipFrames | None, policy: TimingPolicy,
                 reference: np.ndarray | None = None) -> PeerResult:
    """Everything about `fer`, or ``available=False`` with the reason."""
    try:
        raw = run_runner(python, faces.images if faces is not None else None, clip, policy)
        versions = raw.get("versions", {})
        models = []
        ms_per_face = {}
        batches: dict[str, int] = {}
        for key, name in (("faces_tflite", "fer (TFLite, default)"), ("faces_hdf5", "fer (Keras .hdf5)")):
            if key in raw and faces is not None:
                predicted = to_indexes(raw[key]["predicted"], faces.labels)
                models.append(scored(name, "peer", faces, predicted, reference, f"fer {versions.get('fer', '')}"))
                ms_per_face[name] = raw[key]["ms_per_face"]
                if "batch" in raw[key]:
                    batches[name] = int(raw[key]["batch"])
        frames = raw.get("frames")
        detection = latency = cpu = None
        if frames:
            latency, cpu = summarize(frames["latency_ms"]), summarize(frames["cpu_ms"])
            if clip is not None and clip.truth is not None:
                found = [[(Box(*face["box"]), face["label"]) for face in frame] for frame in frames["found"]]
                detection = score_detections(clip.truth, found)
        return PeerResult(
            True, package=f"fer {versions.get('fer', '?')}", versions=versions, model_files=raw.get("model_files", {}),
            accuracy=tuple(models), accuracy_errors=raw.get("errors", {}), ms_per_face=ms_per_face,
            ms_per_face_batch=batches,
            latency=latency, cpu_ms_per_frame=cpu, fps=round(frames["fps"], 2) if frames else None,
            load_ms=round(frames["load_ms"], 2) if frames else None, import_ms=round(raw.get("import_ms", 0), 1),
            peak_rss_mb=round(raw["peak_rss_mb"], 1) if "peak_rss_mb" in raw else None,
            frames_mb=round(raw.get("frames_bytes", 0) / 2 ** 20, 1), detection=detection,
            network_attempts=tuple(raw.get("network_attempts", [])), method=METHOD)
    except PeerUnavailable as exc:
        return PeerResult(False, reason=str(exc), method=METHOD)
