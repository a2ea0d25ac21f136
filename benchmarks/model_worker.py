"""One artifact on one backend, in a fresh process: load time, latency per threads x batch, peak RSS.

A fresh process per artifact is what makes peak RSS mean "this model on this runtime" rather than
"everything the benchmark loaded so far". Reads a JSON job on stdin, prints one JSON line.

    python -m benchmarks.model_worker < job.json
    python -m benchmarks.model_worker --gemm [SECONDS]  # fp32 GEMM throughput: the CPU's practical peak
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def rss_mb() -> float:
    """Current resident set size (not the peak), from /proc; 0 where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def runtime_module(fmt: str, tflite_module: str | None) -> str:
    """The module ``Classifier`` will import to run ``fmt``."""
    if fmt == "onnx":
        return "onnxruntime"
    from edge.vision.backends import TFLITE_MODULES

    return tflite_module or TFLITE_MODULES[0]


def import_runtime(fmt: str, tflite_module: str | None) -> None:
    """Import the runtime before the load is timed: "load ms" is the model's load, not the first
    import of LiteRT or onnxruntime in this fresh process (which only the first thread count paid).

    An import that fails is left for ``Classifier`` to report, with its own message and fallbacks.
    """
    import importlib

    try:
        importlib.import_module(runtime_module(fmt, tflite_module))
    except Exception:  # ImportError, or numpy ABI errors raised as others: Classifier reports it
        pass


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from benchmarks.timing import TimingPolicy, measure, summarize
    from edge.vision.classifier import Classifier
    from edge.vision.manifest import load_manifest
    from edge.vision.quant import quantize

    manifest = load_manifest(job["manifest"])
    faces = np.load(job["faces"])
    policy = TimingPolicy(**job["policy"])
    module = job.get("tflite_module")
    baseline = rss_mb()  # before the runtime's import: model RSS keeps counting the runtime it needs
    import_runtime(manifest.artifact(job["artifact"]).format, module)
    rows = []
    runtime = ""
    for threads in job["threads"]:
        t0 = time.perf_counter_ns()
        classifier = Classifier(manifest, job["artifact"], threads=threads, verify=False, tflite_module=module)
        load_ms = (time.perf_counter_ns() - t0) / 1e6
        runtime = classifier.runtime
        for batch in job["batches"]:
            picked = faces[np.arange(batch) % len(faces)]
            tensor = np.ascontiguousarray(quantize(picked[..., None], classifier.input_spec))
            classifier.backend.run(tensor)  # resize and allocate outside the timed runs
            samples = measure(lambda: classifier.backend.run(tensor), policy)
            rows.append({"threads": threads, "batch": batch, "load_ms": round(load_ms, 3),
                         "stats": summarize(samples).to_dict()})
        classifier.close()
        del classifier
    return {"runtime": runtime, "rows": rows, "baseline_rss_mb": round(baseline, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def gemm_peak(seconds: float = 0.5, n: int = 512) -> dict[str, Any]:
    """Sustained float32 matrix-multiply rate: what the BLAS gets from this CPU, in GMAC/s."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    runs = 0
    start = time.perf_counter()
    while True:
        a @ b
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and runs >= 3:
            break
    return {"gmacs_per_s": round(runs * n ** 3 / elapsed / 1e9, 2), "n": n, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["--gemm"]:
            result = gemm_peak(float(argv[1]) if len(argv) > 1 else 0.5)
        else:
            result = run_job(json.loads(sys.stdin.read()))
    except Exception as exc:  # the parent turns this into a "skipped: reason" row
        result = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
