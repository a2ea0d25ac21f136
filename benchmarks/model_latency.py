"""Model latency per artifact, backend, thread count and batch size, with MACs and MAC/s.

Each (artifact, backend) runs in its own subprocess (``model_worker``) so load time and peak
RSS belong to that model alone. The CPU's practical peak is measured too (an fp32 GEMM through
numpy's BLAS, per thread count), so achieved MAC/s can be read as a share of it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.errors import BenchError
from benchmarks.macs import artifact_macs
from benchmarks.timing import Stats, TimingPolicy

ROOT = Path(__file__).resolve().parents[1]
# tensorflow.lite is left out on purpose: it is deprecated, and importing it costs seconds and
# hundreds of MB in a benchmark meant to run on a Pi.
TFLITE_BACKENDS = {"ai_edge_litert.interpreter": "litert", "tflite_runtime.interpreter": "tflite_runtime"}
WORKER_TIMEOUT = 1800


@dataclass(frozen=True)
class ModelRow:
    artifact: str
    backend: str
    threads: int
    batch: int
    load_ms: float
    stats: Stats
    per_face_ms: float
    macs_per_face: int | None
    gmacs_per_s: float | None
    peak_rss_mb: float
    model_rss_mb: float
    file_bytes: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stats"] = self.stats.to_dict()
        return data


@dataclass(frozen=True)
class ModelLatency:
    rows: tuple[ModelRow, ...]
    macs: dict[str, int | None]
    cpu_peak_gmacs: dict[str, float]
    skipped: tuple[dict[str, str], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        # model_worker imports the runtime before timing a load; older runs' first load included it
        return {"rows": [r.to_dict() for r in self.rows], "macs_per_face": self.macs,
                "cpu_peak_gmacs_per_s": self.cpu_peak_gmacs, "skipped": list(self.skipped),
                "load_ms_excludes_import": True}


def backends_for(fmt: str) -> list[tuple[str, str | None]]:
    """(backend label, tflite module or None) for every runtime that could run ``fmt``; missing ones too."""
    if fmt == "tflite":
        return [(label, module) for module, label in TFLITE_BACKENDS.items()]
    return [("onnxruntime", None)]


def _installed(module: str | None, label: str) -> bool:
    name = module.split(".")[0] if module else label
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _env(threads: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if threads is not None:
        for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[key] = str(threads)
    return env


def _worker(args: list[str], job: dict[str, Any] | None, threads: int | None = None) -> dict[str, Any]:
    try:
        result = subprocess.run([sys.executable, "-m", "benchmarks.model_worker", *args], cwd=ROOT, env=_env(threads),
                                input=json.dumps(job) if job is not None else "", capture_output=True, text=True,
                                timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"error": f"worker timed out after {WORKER_TIMEOUT} s"}
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"worker exited with {result.returncode}: {tail[:300]}"}
    return json.loads(lines[-1])


def cpu_peak(threads: list[int], seconds: float = 0.5) -> dict[str, float]:
    """fp32 GEMM GMAC/s per thread count, each in a subprocess with BLAS pinned to that count."""
    peaks = {}
    for count in threads:
        result = _worker(["--gemm", str(seconds)], None, threads=count)
        if "gmacs_per_s" in result:
            peaks[str(count)] = float(result["gmacs_per_s"])
    return peaks


def measure_models(manifest_path: Path, artifacts: list[str], threads: list[int], batches: list[int],
                   policy: TimingPolicy, faces: np.ndarray) -> ModelLatency:
    from edge.vision.manifest import load_manifest

    manifest = load_manifest(manifest_path)
    rows: list[ModelRow] = []
    skipped: list[dict[str, str]] = []
    macs: dict[str, int | None] = {}
    with tempfile.TemporaryDirectory(prefix="fer-bench-") as tmp:
        faces_path = Path(tmp) / "faces.npy"
        np.save(faces_path, faces[: max(batches)])
        for name in artifacts:
            spec = manifest.artifact(name)
            path = manifest.artifact_path(name)
            try:
                macs[name] = artifact_macs(path, spec.format)
            except BenchError as exc:
                macs[name] = None
                skipped.append({"artifact": name, "backend": "-", "reason": f"MACs not counted: {exc}"})
            except Exception as exc:  # a runtime that cannot open the file: the worker will say more
                macs[name] = None
                skipped.append({"artifact": name, "backend": "-",
                                "reason": f"MACs not counted: {type(exc).__name__}: {str(exc)[:200]}"})
            for label, module in backends_for(spec.format):
                if not _installed(module, label):
                    skipped.append({"artifact": name, "backend": label, "reason": "not installed"})
                    continue
                job = {"manifest": str(manifest_path), "artifact": name, "tflite_module": module,
                       "threads": threads, "batches": batches, "policy": policy.to_dict(), "faces": str(faces_path)}
                result = _worker([], job)
                if "error" in result:
                    skipped.append({"artifact": name, "backend": label, "reason": result["error"]})
                    continue
                model_rss = max(0.0, result["peak_rss_mb"] - result["baseline_rss_mb"])
                for row in result["rows"]:
                    stats = Stats.from_dict(row["stats"])
                    per_face = stats.p50 / row["batch"]
                    gmacs = (macs[name] * row["batch"] / (stats.p50 / 1000) / 1e9) if macs[name] and stats.p50 else None
                    rows.append(ModelRow(name, label, row["threads"], row["batch"], row["load_ms"], stats,
                                         round(per_face, 4), macs[name], round(gmacs, 2) if gmacs else None,
                                         result["peak_rss_mb"], round(model_rss, 1), spec.bytes))
    gemm_seconds = min(0.5, max(0.05, policy.min_seconds / 4))
    return ModelLatency(tuple(rows), macs, cpu_peak(threads, gemm_seconds), tuple(skipped))
