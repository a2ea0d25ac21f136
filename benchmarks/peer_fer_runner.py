"""Runs inside the peer venv (the PyPI `fer` package): its accuracy and per-frame latency, as JSON.

Standalone on purpose: the peer venv has `fer` and its libraries but not fer-edge, so this file
imports only numpy, OpenCV and fer. The parent (benchmarks/peer.py) passes the same faces and
frames our pipeline used, as .npz files, and scores the answers itself.

What is measured, exactly:
- accuracy: every 48x48 test face goes through fer's emotion model directly, with fer's own
  preprocessing from ``FER.detect_emotions`` (cv2.resize to 64x64, /255, then (x-0.5)*2), all
  faces in one call (TFLite) or in batches of 256 (Keras), so its ms/face is at that batch. Its
  detector is not used here because a Haar cascade cannot find a face in a tight 48x48 crop.
  Both of fer's shipped models are scored: the quantized TFLite one ``FER()`` uses by default,
  and the Keras ``emotion_model.hdf5`` (``FER(use_tflite=False)``).
- latency: ``FER().detect_emotions(frame)`` (default settings: Haar on the full frame + TFLite
  model) on each 640x480 BGR frame, timed with perf_counter_ns, CPU time with process_time.
- detection: the boxes ``detect_emotions`` returned on the first pass, with their top emotion.
- network: socket connections are blocked and recorded, proving nothing is fetched at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import sys
import time

ATTEMPTS: list[str] = []


def block_network() -> None:
    """Refuse and record every internet connection; local (AF_UNIX) sockets still work."""
    original = socket.socket.connect

    def refuse(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            ATTEMPTS.append(repr(address))
            raise OSError("network blocked by fer-bench: the peer must not download anything")
        original(self, address)

    socket.socket.connect = refuse  # type: ignore[method-assign]


def preprocess(faces, size):  # type: ignore[no-untyped-def]
    """fer's own steps from FER.detect_emotions, minus detection and padding."""
    import cv2
    import numpy as np

    resized = np.stack([cv2.resize(face, size) for face in faces]).astype("float32")
    return (resized / 255.0 - 0.5) * 2.0


def classify_faces(faces, use_tflite: bool) -> dict:  # type: ignore[no-untyped-def]
    import numpy as np
    from fer.fer import FER

    detector = FER(use_tflite=use_tflite)
    labels = FER._get_labels()
    batch = preprocess(faces, (64, 64))
    chunk = len(batch) if use_tflite else 256  # the batch ms_per_face is timed at: the report must say it
    start = time.perf_counter_ns()
    if use_tflite:
        probs = np.asarray(detector._classify_emotions(batch))  # adds the channel axis itself
    else:
        probs = np.concatenate([np.asarray(detector._classify_emotions(batch[i:i + chunk, ..., None]))
                                for i in range(0, len(batch), chunk)])
    elapsed = (time.perf_counter_ns() - start) / 1e6
    return {"predicted": [labels[int(i)] for i in probs.argmax(axis=1)], "ms_per_face": elapsed / max(1, len(batch)),
            "batch": min(chunk, len(batch))}


def time_frames(frames, warmup: int, min_runs: int, min_seconds: float, max_seconds: float) -> dict:  # type: ignore[no-untyped-def]
    from fer.fer import FER

    t0 = time.perf_counter_ns()
    detector = FER()
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    n = len(frames)
    for i in range(warmup):
        detector.detect_emotions(frames[i % n])
    latency, cpu, found = [], [], []
    start = time.perf_counter_ns()
    index = 0
    while True:
        frame = frames[index % n]
        c0, t0 = time.process_time(), time.perf_counter_ns()
        result = detector.detect_emotions(frame)
        t1, c1 = time.perf_counter_ns(), time.process_time()
        latency.append((t1 - t0) / 1e6)
        cpu.append((c1 - c0) * 1000)
        if index < n:
            found.append([{"box": [int(v) for v in face["box"]],
                           "label": max(face["emotions"], key=face["emotions"].get)} for face in result])
        index += 1
        elapsed = (time.perf_counter_ns() - start) / 1e9
        if index >= n and ((index >= min_runs and elapsed >= min_seconds) or elapsed >= max_seconds):
            break
    return {"load_ms": load_ms, "latency_ms": latency, "cpu_ms": cpu, "found": found,
            "fps": index / ((time.perf_counter_ns() - start) / 1e9)}


def versions() -> dict:
    from importlib import metadata

    found = {"python": sys.version.split()[0]}
    for name in ("fer", "tensorflow", "tensorflow-cpu", "keras", "opencv-python-headless", "opencv-python",
                 "opencv-contrib-python", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def model_files() -> dict:
    import fer

    folder = os.path.join(os.path.dirname(fer.__file__), "data")
    return {name: os.path.getsize(os.path.join(folder, name)) for name in sorted(os.listdir(folder))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", help=".npz with 'images' (N, 48, 48) uint8")
    parser.add_argument("--frames", help=".npz with 'frames' (M, H, W, 3) uint8 BGR")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--min-runs", type=int, default=0)
    parser.add_argument("--min-seconds", type=float, default=0.0)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    block_network()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging
    import warnings

    import numpy as np

    warnings.filterwarnings("ignore")
    logging.getLogger("fer").setLevel(logging.WARNING)
    result: dict = {"errors": {}}
    t0 = time.perf_counter_ns()
    import fer.fer  # noqa: F401  (tensorflow comes with it)

    result["import_ms"] = (time.perf_counter_ns() - t0) / 1e6
    result["versions"] = versions()
    result["model_files"] = model_files()
    if args.frames:  # first, so the peak RSS below is detect_emotions' alone (plus the frames)
        frames = np.load(args.frames)["frames"]
        result["frames"] = time_frames(frames, args.warmup, args.min_runs, args.min_seconds, args.max_seconds)
        result["frames_bytes"] = int(frames.nbytes)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        del frames
    if args.faces:
        faces = np.load(args.faces)["images"]
        for key, use_tflite in (("tflite", True), ("hdf5", False)):
            try:
                result[f"faces_{key}"] = classify_faces(faces, use_tflite)
            except Exception as exc:  # report one model failing, keep the other
                result["errors"][f"faces_{key}"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    result["network_attempts"] = ATTEMPTS
    with open(args.out, "w") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
