"""Per-device-class reference CSVs (benchmarks/reference/<class>.csv) and comparing a run to one.

A reference is written by the tool from a real run (never typed), one row per measured
configuration, each marked with the device it was measured on. A run on another machine is
compared row by row as ratios (this / reference), matched on kind, artifact, backend, threads
and batch.

Latency compares across machines; accuracy does not, unless both runs scored the same model on
the same faces. Each row records the scored data (path, image count, a sha256 of the pixels and
labels) and the model's sha256, and an accuracy difference is shown only when all of them match.
A reference written before these columns existed is read as "unknown": latency still compares.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from benchmarks.errors import BenchError

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = ROOT / "benchmarks" / "reference"
COLUMNS = ("device_class", "measured_on", "host", "date", "commit", "kind", "artifact", "backend", "threads", "batch",
           "p50_ms", "p95_ms", "p99_ms", "iqr_ms", "runs", "ms_per_face", "gmacs_per_s", "fps", "cpu_ms_per_frame",
           "load_ms", "peak_rss_mb", "top1", "macro_f1", "recall", "quick", "load_avg_start", "data", "images",
           "data_sha256", "model_sha256")
KEY = ("kind", "artifact", "backend", "threads", "batch")
# The pipeline records its runtime's module (ai_edge_litert), model timing the runtime's short name (litert):
# one runtime, one name, in new references and when reading older ones.
BACKEND_NAMES = {"ai_edge_litert": "litert"}
# what must match for two top-1 figures to differ only by the machine (or not at all)
SAME_ACCURACY = (("data_sha256", "test data"), ("images", "image count"), ("model_sha256", "model"))


def reference_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    s = results["system"]
    base = {"device_class": s["device_class"], "measured_on": s.get("device_model") or s["cpu"], "host": s["host"],
            "date": s["date"], "commit": s.get("git_commit", ""), "quick": results["config"].get("quick", False),
            "load_avg_start": (s.get("load_average_start") or [""])[0]}
    accuracy = results.get("accuracy") or {}
    acc = {m["name"]: m for m in accuracy.get("models", [])}
    base |= {"data": accuracy.get("data"), "images": accuracy.get("images"), "data_sha256": accuracy.get("data_sha256")}
    shas = {name: art.get("sha256") for name, art in results.get("manifest", {}).get("artifacts", {}).items()}
    rows = []
    for r in results.get("model_latency", {}).get("rows", []):
        st = r["stats"]
        rows.append({**base, "kind": "model", "artifact": r["artifact"], "backend": r["backend"], "threads": r["threads"],
                     "batch": r["batch"], "p50_ms": st["p50"], "p95_ms": st["p95"], "p99_ms": st["p99"],
                     "iqr_ms": st["iqr"], "runs": st["runs"], "ms_per_face": r["per_face_ms"],
                     "gmacs_per_s": r.get("gmacs_per_s"), "load_ms": r["load_ms"], "peak_rss_mb": r["peak_rss_mb"],
                     "top1": acc.get(r["artifact"], {}).get("accuracy"),
                     "macro_f1": acc.get(r["artifact"], {}).get("macro_f1"), "model_sha256": shas.get(r["artifact"])})
    detection = results.get("pipeline", {}).get("detection", {})
    for r in results.get("pipeline", {}).get("rows", []):
        st = r["total"]
        rows.append({**base, "kind": "pipeline", "artifact": r["artifact"], "backend": backend_name(r["runtime"]),
                     "threads": r["threads"], "batch": "", "p50_ms": st["p50"], "p95_ms": st["p95"], "p99_ms": st["p99"],
                     "iqr_ms": st["iqr"], "runs": st["runs"], "fps": r["fps"],
                     "cpu_ms_per_frame": r["cpu_ms_per_frame"]["p50"],
                     "recall": detection.get(r["artifact"], {}).get("recall"), "model_sha256": shas.get(r["artifact"])})
    for r in results.get("pipeline", {}).get("full_detection_rows", []):
        st = r["total"]
        rows.append({**base, "kind": "pipeline_every_frame", "artifact": r["artifact"],
                     "backend": backend_name(r["runtime"]),
                     "threads": r["threads"], "batch": "", "p50_ms": st["p50"], "p95_ms": st["p95"],
                     "p99_ms": st["p99"], "iqr_ms": st["iqr"], "runs": st["runs"], "fps": r["fps"],
                     "cpu_ms_per_frame": r["cpu_ms_per_frame"]["p50"], "model_sha256": shas.get(r["artifact"])})
    peer = results.get("peer") or {}
    if peer.get("available") and peer.get("latency"):
        st = peer["latency"]
        fer_acc = next(iter(peer.get("accuracy") or []), {})
        rows.append({**base, "kind": "peer", "artifact": peer["package"].replace(" ", "-"), "backend": "tensorflow",
                     "threads": "", "batch": "", "p50_ms": st["p50"], "p95_ms": st["p95"], "p99_ms": st["p99"],
                     "iqr_ms": st["iqr"], "runs": st["runs"], "fps": peer.get("fps"),
                     "cpu_ms_per_frame": (peer.get("cpu_ms_per_frame") or {}).get("p50"), "load_ms": peer.get("load_ms"),
                     "peak_rss_mb": peer.get("peak_rss_mb"), "top1": fer_acc.get("accuracy"),
                     "macro_f1": fer_acc.get("macro_f1"), "recall": (peer.get("detection") or {}).get("recall"),
                     "model_sha256": _peer_model(peer)})
    return rows


def _peer_model(peer: dict[str, Any]) -> str:
    """fer's model is pinned by its package version and model files: the identity its accuracy depends on."""
    files = ",".join(f"{name}:{size}" for name, size in sorted((peer.get("model_files") or {}).items()))
    return f"{peer.get('package', '?')} [{files}]" if files else str(peer.get("package", ""))


def write_reference(results: dict[str, Any], path: Path | None = None, allow_quick: bool = False) -> Path:
    if results["config"].get("quick") and not allow_quick:
        raise BenchError("refusing to write a reference from a --quick run (its figures are not stable)")
    from benchmarks.outputs import check_writable_file, write_text_atomic

    path = Path(path) if path else REFERENCE_DIR / f"{results['system']['device_class']}.csv"
    check_writable_file(path, "reference")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in reference_rows(results):
        writer.writerow({k: ("" if row.get(k) is None else row.get(k, "")) for k in COLUMNS})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"cannot create the folder of reference {path}: {exc.strerror or exc}") from None
    write_text_atomic(path, buffer.getvalue(), "reference")
    return path


def read_reference(path: Path) -> list[dict[str, str]]:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise BenchError(f"reference {path} does not exist (write one with `fer-bench reference RESULTS`)") from None
    except OSError as exc:
        raise BenchError(f"cannot read reference {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BenchError(f"{path} is not a fer-bench reference CSV (not UTF-8 text)") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or any(column not in rows[0] for column in KEY + ("p50_ms",)):
        raise BenchError(f"{path} is not a fer-bench reference CSV")
    return rows


def backend_name(name: str) -> str:
    return BACKEND_NAMES.get(name, name)


def _key(row: dict[str, Any]) -> tuple[str, ...]:
    """(kind, artifact, backend, threads, batch), the backend by its one name (a reference may hold the other)."""
    return tuple(backend_name(str(row.get(k, ""))) if k == "backend" else str(row.get(k, "")) for k in KEY)


def _float(value: Any) -> float | None:
    """A CSV cell as a number; None when it is empty or not a finite number (nothing to divide by)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _ms_cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def accuracy_comparable(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    """Why the two rows' top-1 cannot be compared ('' when they can): different faces or model, or unknown."""
    mine, reference = _float(ours.get("top1")), _float(theirs.get("top1"))
    if mine is None and reference is None:
        return ""  # a latency-only row (pipeline): nothing to compare, nothing to explain
    if mine is None or reference is None:
        return "no accuracy in " + ("this run" if mine is None else "the reference")
    for column, what in SAME_ACCURACY:
        a, b = str(ours.get(column) or ""), str(theirs.get(column) or "")
        if not a or not b:
            return f"{what} not recorded in {'this run' if not a else 'the reference'}"
        if a != b:
            return f"different {what}"
    return ""


def compare(results: dict[str, Any], reference: list[dict[str, str]]) -> tuple[list[dict[str, Any]], str]:
    """Rows present in both, with ratios this/reference; and a markdown table of them.

    Latency ratios are always shown; an accuracy difference only for the same model on the same faces
    (otherwise the row says why not), since a different test set or model is not a machine's doing.
    """
    ours = {_key(r): r for r in reference_rows(results)}
    theirs = {_key(r): r for r in reference}
    matched = []
    for key in [k for k in theirs if k in ours]:
        a, b = ours[key], theirs[key]
        p50_a, p50_b = _float(a.get("p50_ms")), _float(b.get("p50_ms"))
        top_a, top_b = _float(a.get("top1")), _float(b.get("top1"))
        why_not = accuracy_comparable(a, b)
        matched.append({"kind": key[0], "artifact": key[1], "backend": key[2], "threads": key[3], "batch": key[4],
                        "reference_p50_ms": p50_b, "this_p50_ms": p50_a,
                        "ratio": round(p50_a / p50_b, 3) if p50_a and p50_b else None,
                        "top1_diff_points": round((top_a - top_b) * 100, 2) if not why_not and top_a is not None
                        and top_b is not None else None, "top1_not_comparable": why_not,
                        "reference_on": b.get("measured_on", "")})
    if not matched:
        raise BenchError("no configuration of this run matches the reference (kind, artifact, backend, threads, batch)")
    on = {m["reference_on"] for m in matched}
    lines = [f"Reference measured on: {', '.join(sorted(on))}; this run: {results['system'].get('device_model') or results['system']['cpu']} "
             f"({results['system']['host']}, {results['system']['date']}). ratio = this / reference (> 1: slower here). "
             "A top-1 difference is shown only for the same model on the same test faces.",
             "", "| kind | artifact | backend | threads | batch | reference p50 ms | this p50 ms | ratio | top-1 diff (points) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in matched:
        ratio = "–" if m["ratio"] is None else f"{m['ratio']:.2f}"
        diff = f"{m['top1_diff_points']:+.2f}" if m["top1_diff_points"] is not None else \
            f"not comparable: {m['top1_not_comparable']}" if m["top1_not_comparable"] else "–"
        lines.append(f"| {m['kind']} | {m['artifact']} | {m['backend']} | {m['threads']} | {m['batch']} | "
                     f"{_ms_cell(m['reference_p50_ms'])} | {_ms_cell(m['this_p50_ms'])} | {ratio} | {diff} |")
    return matched, "\n".join(lines) + "\n"
