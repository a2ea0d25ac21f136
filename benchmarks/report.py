"""report.md, results.json and the charts of one run, all rendered from the results dict.

Everything is rendered from results.json alone, so a report can be rebuilt (after a soak run is
added, or by `fer-bench report DIR`) without measuring again, and every figure in it traces to
a measured value in the JSON: nothing here computes a number that was not measured.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.charts import write_charts
from benchmarks.errors import BenchError
from benchmarks.targets import NOT_MEASURED, judge, schedule_label, soak_origin, threads_label, verdict, warm_mb

STAGES = (("decode", "decode/capture"), ("convert", "grey conversion"), ("detect", "detection"),
          ("crop", "crop and resize"), ("classify", "classification"), ("track", "tracking"))


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _stat(stats: dict[str, Any] | None) -> str:
    """p50 with its IQR, the spread shown beside every median."""
    return "–" if not stats else f"{_ms(stats['p50'])} ± {_ms(stats['iqr'] / 2)}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f} %"


def _mb(n_bytes: int | None) -> str:
    return "–" if not n_bytes else f"{n_bytes / 2 ** 20:.2f} MB"


def _macs(value: int | None) -> str:
    return "–" if not value else f"{value / 1e6:.1f} M"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _model_row(results: dict[str, Any], artifact: str, threads: int = 1, batch: int = 1) -> dict[str, Any] | None:
    rows = results.get("model_latency", {}).get("rows", [])
    preferred = [r for r in rows if r["artifact"] == artifact and r["threads"] == threads and r["batch"] == batch]
    return preferred[0] if preferred else None


def int8_speed_note(results: dict[str, Any]) -> str | None:
    """Why int8 is not much faster than float32, when it is not: a common surprise on x86 hosts."""
    int8, float32 = _model_row(results, "int8"), _model_row(results, "float32")
    if int8 is None or float32 is None or not float32["stats"]["p50"]:
        return None
    speedup = float32["stats"]["p50"] / int8["stats"]["p50"]
    if speedup >= 1.5:
        return None
    note = f"int8 ran {speedup:.2f}x as fast as float32 here (batch 1, 1 thread)."
    found = results["system"].get("int8_dot_instructions")
    if found == []:
        note += (" This CPU reports no int8 dot-product instructions (AVX-VNNI/AVX512-VNNI/AMX on x86, dotprod/i8mm "
                 "on ARM), so int8 kernels do about as much work per multiply-accumulate as float32 ones; the int8 "
                 "file is still about a quarter of the size. Measure on the target device.")
    return note


def load_header(results: dict[str, Any]) -> str:
    """Runs before the runtime was imported ahead of the load timed a cold first load: say so."""
    if (results.get("model_latency") or {}).get("load_ms_excludes_import"):
        return "load ms"
    return "load ms (ours cold: includes importing the runtime)"


def _daemon_label(pipeline: dict[str, Any]) -> str:
    """The daemon-defaults column's name, with its detection schedule when the run recorded it."""
    every = pipeline.get("detect_every")
    return "daemon defaults" + (f" ({schedule_label(every)})" if every is not None else "")


def pipeline_note(results: dict[str, Any]) -> str:
    """What the pipeline columns ran with: thread counts as they were, and which schedule fer is set against."""
    pipeline = results.get("pipeline") or {}
    return (f"Pipeline columns: {threads_label(pipeline)} (OpenCV's Haar detection uses its own thread pool, which "
            "neither the daemon nor fer-bench sets). The daemon's defaults run the full-frame detector only on some "
            "frames and look near tracked faces in between; `fer` detects on every frame, so it sits in the "
            "full-detection columns and is compared only with those.")


def _peer_per_face(peer: dict[str, Any], name: str, images: int | None) -> str:
    """fer's ms/face with the batch it was timed at: one call over every face, not batch 8."""
    ms = peer.get("ms_per_face", {}).get(name)
    if ms is None:
        return "–"
    batch = (peer.get("ms_per_face_batch") or {}).get(name)
    if batch is None and images:  # runs before the batch was recorded: the runner's fixed batching then
        batch = images if "TFLite" in name else min(images, 256)
    if batch is None:
        return f"{_ms(ms)} (batch not recorded)"
    return f"{_ms(ms)} (all {batch:,} faces in one call)" if batch == images else f"{_ms(ms)} (batches of {batch:,})"


def summary_table(results: dict[str, Any]) -> list[str]:
    """The one table users choose an artifact from; also what the README carries."""
    acc = {m["name"]: m for m in (results.get("accuracy") or {}).get("models", [])}
    pipeline = results.get("pipeline", {})
    pipe = {r["artifact"]: r for r in pipeline.get("rows", [])}
    full = {r["artifact"]: r for r in pipeline.get("full_detection_rows", [])}
    arts = results.get("manifest", {}).get("artifacts", {})
    macs = results.get("model_latency", {}).get("macs_per_face", {})
    batches = results.get("config", {}).get("batches", [1])
    big = max(batches) if batches else 1
    ref = (results.get("accuracy") or {}).get("reference") or "float"
    daemon = _daemon_label(pipeline)
    header = ["model", "format", "size", "MACs/face", "top-1", "macro-F1", f"points lost vs {ref}",
              f"top-1 agreement with {ref}", "model ms, batch 1, 1 thread (p50 ± IQR/2)",
              f"ms/face at batch {big}", load_header(results), "peak RSS MB",
              f"pipeline ms/frame p50 ± IQR/2, {daemon}",
              "fps, daemon defaults", "pipeline ms/frame p50 ± IQR/2, full detection every frame",
              "fps, full detection every frame"]
    rows = []
    if "keras" in acc:
        m = acc["keras"]
        views = (results.get("accuracy") or {}).get("reference_views", 1)
        name = f"Keras float{f', {views} views' if views > 1 else ''} (reference)"
        rows.append([name, "keras", "–", "–", f"{m['accuracy']:.4f}", f"{m['macro_f1']:.4f}", "–", "–", "–", "–", "–",
                     "–", "–", "–", "–", "–"])
    for name, art in arts.items():
        m = acc.get(name)
        one = _model_row(results, name)
        many = _model_row(results, name, 1, big)
        lost = m.get("points_lost") if m else None
        rows.append([name, art["format"] + (f" ({one['backend']})" if one else ""), _mb(art["bytes"]),
                     _macs(macs.get(name)), f"{m['accuracy']:.4f}" if m else "–", f"{m['macro_f1']:.4f}" if m else "–",
                     "–" if lost is None else f"{lost:+.2f}", _pct(m.get("agreement")) if m else "–",
                     _stat(one["stats"]) if one else "–", _ms(many["per_face_ms"]) if many else "–",
                     _ms(one["load_ms"]) if one else "–", f"{one['peak_rss_mb']:.0f}" if one else "–",
                     *_pipeline_cells(pipe.get(name)), *_pipeline_cells(full.get(name))])
    peer = results.get("peer") or {}
    if peer.get("available"):
        images = (results.get("accuracy") or {}).get("images")
        for i, m in enumerate(peer.get("accuracy") or []):
            lost = m.get("points_lost")
            first = i == 0
            rows.append([f"{m['name']} — {peer['package']}", "peer", "–", "–", f"{m['accuracy']:.4f}",
                         f"{m['macro_f1']:.4f}", "–" if lost is None else f"{lost:+.2f}", _pct(m.get("agreement")),
                         "–", _peer_per_face(peer, m["name"], images), _ms(peer.get("load_ms")) if first else "–",
                         f"{peer['peak_rss_mb']:.0f}" if first and peer.get("peak_rss_mb") else "–", "–", "–",
                         _stat(peer.get("latency")) if first else "–",
                         f"{peer['fps']:.1f}" if first and peer.get("fps") else "–"])
    else:
        rows.append(["fer (PyPI)", "peer", "–", "–", "not measured", "", "", "", "", "", "", "", "", "", "", ""])
    return _table(header, rows)


def _pipeline_cells(row: dict[str, Any] | None) -> list[str]:
    """p50 and fps of one pipeline row; a schedule this run did not time says so, never a blank."""
    if row is None:
        return [NOT_MEASURED, "–"]
    return [_stat(row["total"]), f"{row['fps']:.1f}"]


def side_by_side_table(results: dict[str, Any]) -> list[str]:
    """The main model and every ``--also`` model: size, cost, accuracy and speed, int8 and float32."""
    entries = [{"name": results["manifest"]["name"], "parameters": (results["manifest"].get("source_model") or {})
                .get("parameters"), "artifacts": results["manifest"]["artifacts"], "accuracy": results.get("accuracy"),
                "model_latency": results.get("model_latency")}] + list(results.get("also", []))
    header = ["model", "parameters", "artifact", "size", "MACs/face", "top-1", "macro-F1", "points lost vs float",
              "model ms, batch 1, 1 thread (p50 ± IQR/2)"]
    rows = []
    for entry in entries:
        acc = {m["name"]: m for m in (entry.get("accuracy") or {}).get("models", [])}
        latency = entry.get("model_latency") or {}
        macs = latency.get("macs_per_face", {})
        for name, art in entry["artifacts"].items():
            if name not in ("int8", "float32") and len(entry["artifacts"]) > 1:
                continue
            m = acc.get(name)
            one = _model_row({"model_latency": latency}, name)
            lost = m.get("points_lost") if m else None
            params = entry.get("parameters")
            rows.append([entry["name"], f"{params:,}" if params else "–", name, _mb(art["bytes"]),
                         _macs(macs.get(name)), f"{m['accuracy']:.4f}" if m else "–",
                         f"{m['macro_f1']:.4f}" if m else "–", "–" if lost is None else f"{lost:+.2f}",
                         _stat(one["stats"]) if one else "–"])
    return _table(header, rows)


def targets_table(results: dict[str, Any]) -> list[str]:
    """Judged again from the measured values, so an older results.json gets today's (truer) wording."""
    return _table(["target", "result", "measured", "note"],
                  [[t["target"], f"**{verdict(t['met'], t.get('judged', True))}**", t["measured"], t.get("note", "")]
                   for t in judge(results)])


def _instructions(found: list[str] | None) -> str:
    if found is None:
        return "not known"
    return ", ".join(found) if found else "none"


def _system(results: dict[str, Any]) -> list[str]:
    s = results["system"]
    versions = ", ".join(f"{k} {v}" for k, v in s.get("versions", {}).items())
    load = s.get("load_average_start") or []
    rows = [["host", s["host"]], ["date", s.get("time", s["date"])],
            ["CPU", s["cpu"] + (f" ({s['device_model']})" if s.get("device_model") else "")],
            ["device class", s["device_class"]], ["cores", str(s["cores"])],
            ["int8 dot-product instructions", _instructions(s.get("int8_dot_instructions"))],
            ["memory", f"{s.get('memory_mb', 0):.0f} MB"],
            ["OS", s["os"]], ["Python", s["python"]], ["libraries", versions],
            ["load average at start (1/5/15 min)", " / ".join(map(str, load)) or "–"],
            ["load average at end", " / ".join(map(str, s.get("load_average_end") or [])) or "–"],
            ["commit", s.get("git_commit") or "–"], ["duration", f"{s.get('duration_s', 0):.0f} s"]]
    return _table(["", ""], rows)


def _accuracy(results: dict[str, Any]) -> list[str]:
    data = results.get("accuracy") or {}
    if "models" not in data:
        return [f"Not measured: {data.get('error', 'no data')}"]
    lines = [f"Data: `{data['data']}` ({data['images']} faces). {data['reference_note']}.", ""]
    models = list(data["models"]) + list((results.get("peer") or {}).get("accuracy", []))
    header = ["class"] + [m["name"] for m in models]
    rows = [[label] + [f"{m['per_class_f1'][label]:.3f}" for m in models] for label in data["labels"]]
    rows.append(["**macro-F1**"] + [f"**{m['macro_f1']:.3f}**" for m in models])
    rows.append(["**top-1**"] + [f"**{m['accuracy']:.3f}**" for m in models])
    lines += ["Per-class F1:", ""] + _table(header, rows)
    voted = [m for m in models if m.get("ferplus")]
    if voted:
        lines += ["", _votes_note(voted[0]["ferplus"]), ""] + _table(
            ["measure"] + [m["name"] for m in voted], _vote_rows(voted))
    return lines


VOTE_MEASURES = (("accuracy", "top-1 (original labels)"), ("agreement", "FER+ agreement (majority label)"),
                 ("annotator_share", "annotator share"))


def _vote_rows(models: list[dict[str, Any]]) -> list[list[str]]:
    rows = [[label] + [f"{m['ferplus'][key]:.4f}" for m in models] for key, label in VOTE_MEASURES]
    if all(isinstance(m["ferplus"].get("without_duplicates"), dict) for m in models):
        rows += [[f"{label}, duplicates left out"] + [f"{m['ferplus']['without_duplicates'][key]:.4f}" for m in models]
                 for key, label in VOTE_MEASURES]
    return rows


def _votes_note(figures: dict[str, Any]) -> str:
    clean = figures.get("without_duplicates")
    left = (f" \"Duplicates left out\": without the {clean['left_out']} faces that are pixel for pixel a training "
            f"face ({clean['images']} left)." if isinstance(clean, dict) else "")
    return (f"Against FER+'s ten annotators (`--votes`): agreement with the FER+ majority label on the "
            f"{figures['agreement_images']} faces that have one among our classes (single votes dropped, the top "
            f"class holding more than half of the rest; contempt, unclear and not-a-face left out), and the mean "
            f"share of annotators who chose the predicted class over all {figures['images']} faces.{left}")


def _models(results: dict[str, Any]) -> list[str]:
    ml = results.get("model_latency", {})
    peak = ml.get("cpu_peak_gmacs_per_s", {})
    header = ["artifact", "backend", "threads", "batch", "p50 ms", "p95", "p99", "IQR", "min–max", "runs",
              "ms/face", "GMAC/s", "share of fp32 GEMM peak", load_header(results), "peak RSS MB", "model RSS MB"]
    rows = []
    for r in ml.get("rows", []):
        s = r["stats"]
        # Best GEMM rate at up to this many threads: a busy machine can make 2 threads slower than 1.
        gemm = max((v for k, v in peak.items() if int(k) <= r["threads"]), default=None)
        quantized = results.get("manifest", {}).get("artifacts", {}).get(r["artifact"], {}).get("input") in (
            "uint8", "int8")
        rows.append([r["artifact"], r["backend"], r["threads"], r["batch"], _ms(s["p50"]), _ms(s["p95"]), _ms(s["p99"]),
                     _ms(s["iqr"]), f"{_ms(s['min'])}–{_ms(s['max'])}", s["runs"], _ms(r["per_face_ms"]),
                     f"{r['gmacs_per_s']:.1f}" if r.get("gmacs_per_s") else "–",
                     "– (int8)" if quantized else
                     f"{r['gmacs_per_s'] / gemm * 100:.0f} %" if r.get("gmacs_per_s") and gemm else "–",
                     _ms(r["load_ms"]), f"{r['peak_rss_mb']:.0f}", f"{r['model_rss_mb']:.0f}"])
    lines = _table(header, rows)
    if peak:
        lines += ["", "CPU practical peak (fp32 matrix multiply through numpy's BLAS, measured in this run): "
                  + ", ".join(f"{v:.1f} GMAC/s with {k} thread(s)" for k, v in peak.items())
                  + ". The share is the float artifacts' GMAC/s over the best GEMM rate at up to that many threads; "
                  "int8 kernels are not compared with it (VNNI/dot-product instructions do 4 int8 MACs per fp32 "
                  "lane, so their peak is another number, not measured here)."]
    skipped = ml.get("skipped", [])
    if skipped:
        lines += ["", "Not measured: " + "; ".join(
            f"{s['artifact']}{'' if s['backend'] == '-' else ' on ' + s['backend']}: {s['reason']}" for s in skipped)
            + "."]
    lines += ["", "MACs per face are counted from each artifact's graph (conv, depthwise conv, dense/matmul). Model "
              "latency is `backend.run` on an already quantized batch of real faces; each artifact and backend runs "
              "in a fresh process, so load time and peak RSS are its own (model RSS = peak minus the RSS before "
              "loading, the runtime's import included)."
              + (" Load time starts after the runtime is imported." if "cold" not in load_header(results) else
                 " Load time of the first thread count includes importing the runtime (this run predates importing "
                 "it first).")]
    return lines


def _stage_table(rows_in: list[dict[str, Any]]) -> list[str]:
    """Per-stage p50 and p95 for each artifact, with the frames that ran the full detector apart."""
    header = ["stage"] + [f"{r['artifact']} p50 ± IQR/2" for r in rows_in] + [f"{r['artifact']} p95" for r in rows_in]
    rows = [[label] + [_stat(r["stages"][key]) for r in rows_in] + [_ms(r["stages"][key]["p95"]) for r in rows_in]
            for key, label in STAGES]
    rows.append(["**total** (frame in memory → faces)"] + [f"**{_stat(r['total'])}**" for r in rows_in]
                + [_ms(r["total"]["p95"]) for r in rows_in])
    rows.append(["total, frames that ran the full detector"] + [_detected_cell(r) for r in rows_in]
                + [_ms(r["total_detected"]["p95"]) if r.get("total_detected") else "–" for r in rows_in])
    rows.append(["total with decode"] + [_stat(r["total_with_decode"]) for r in rows_in]
                + [_ms(r["total_with_decode"]["p95"]) for r in rows_in])
    rows.append(["CPU ms per frame"] + [_stat(r["cpu_ms_per_frame"]) for r in rows_in]
                + [_ms(r["cpu_ms_per_frame"]["p95"]) for r in rows_in])
    rows.append(["frames per second"] + [f"{r['fps']:.1f}" for r in rows_in] + ["" for _ in rows_in])
    rows.append(["frames timed / faces per frame"] + [f"{r['frames']} / {r['faces_per_frame']:.2f}" for r in rows_in]
                + ["" for _ in rows_in])
    rows.append(["frames that ran the full detector"]
                + [NOT_MEASURED if "detected_frames" not in r else f"{r['detected_frames']} of {r['frames']}"
                   for r in rows_in] + ["" for _ in rows_in])
    return _table(header, rows)


def _detected_cell(row: dict[str, Any]) -> str:
    if "total_detected" not in row:
        return NOT_MEASURED
    return _stat(row["total_detected"]) if row["total_detected"] else "no such frame"


def _pipeline(results: dict[str, Any]) -> list[str]:
    p = results.get("pipeline", {})
    rows_in = p.get("rows", [])
    if not rows_in:
        return ["Not measured."]
    peer = results.get("peer") or {}
    lines = [f"Clip `{Path(p['clip']).name}`: {p['frames_distinct']} distinct {p['frame_size'][0]}x{p['frame_size'][1]} "
             f"frames, looped; {threads_label(p)} (OpenCV's Haar detection runs on its own thread pool, "
             "which neither the daemon nor fer-bench sets); the daemon's default detector and tracker settings. "
             "Stage times are `edge.Pipeline.process`'s own; decode is `cv2.VideoCapture` reading the file.", ""]
    lines += [f"### {_daemon_label(p)[0].upper()}{_daemon_label(p)[1:]}", "",
              "What the daemon runs: between full-frame detections each tracked face is looked for only near its "
              "last box, so most frames are cheap; the frames that ran the full detector are shown apart.", ""]
    lines += _stage_table(rows_in)
    full = p.get("full_detection_rows")
    lines += ["", "### Full detection on every frame", ""]
    if full:
        lines += ["The same pipeline with the full-frame detector on every frame (`detect_every = 1`), as `fer` "
                  "runs: the figure compared with `fer`.", ""] + _stage_table(full)
    else:
        lines += [f"{NOT_MEASURED[0].upper()}{NOT_MEASURED[1:]}: this run timed only the daemon's defaults, so "
                  "no figure of ours is like for like with `fer`'s detection on every frame."]
    if peer.get("available") and peer.get("latency"):
        lat, cpu = peer["latency"], peer.get("cpu_ms_per_frame")
        lines += ["", f"`fer`'s `FER().detect_emotions(frame)` on the same frames (detection on every frame): p50 "
                  f"{_stat(lat)} ms, p95 {_ms(lat['p95'])}, p99 {_ms(lat['p99'])} ({lat['runs']} runs), CPU "
                  f"{_stat(cpu)} ms per frame, {peer['fps']:.1f} fps."]
    return lines


def _detection(results: dict[str, Any]) -> list[str]:
    det = results.get("pipeline", {}).get("detection", {})
    every = results.get("pipeline", {}).get("detection_every_frame", {})
    main = results["config"]["target_artifact"]
    peer = results.get("peer") or {}
    entries = [(f"ours ({main}, full detection every frame)", every.get(main)),
               (f"ours ({main}, daemon defaults)", det.get(main))]
    if peer.get("available"):
        entries.append((f"{peer['package']}", peer.get("detection")))
    entries = [(n, d) for n, d in entries if d]
    if not entries:
        return ["Not measured (the clip has no ground-truth sidecar)."]
    rows = [[n, d["frames"], d["truth"], d["detected"], d["true_positives"], f"{d['recall']:.3f}", f"{d['precision']:.3f}",
             "–" if d["label_accuracy"] is None else f"{d['label_accuracy']:.3f}"] for n, d in entries]
    return (["Ground truth: the clip's sidecar boxes; a detection counts when IoU >= 0.5 (greedy one-to-one "
             "matching). Label accuracy is the emotion label's top-1 on matched faces (ours after the tracker's "
             "smoothing, fer's per frame).", ""]
            + _table(["detector", "frames", "faces", "detections", "matched", "recall", "precision", "label accuracy"],
                     rows))


def _detectors(results: dict[str, Any]) -> list[str]:
    from benchmarks.detectors import table

    det = results["detectors"]
    peer = results.get("peer") or {}
    peer_ms = (peer.get("latency") or {}).get("p50") if peer.get("available") else None
    lines = [f"Haar and BlazeFace on the same frames, int8 classifier, 1 thread: {det['method']}. The tilted "
             "clip and the stills show other faces on each frame, so they run without the tracker."
             + (f" vs fer: ms/frame over fer's {peer_ms:.2f} ms per frame in this run." if peer_ms else ""), ""]
    lines += table(det, peer_ms)
    return lines + ([""] + [f"- {n}" for n in det["notes"]] if det.get("notes") else [])


def _ratio_schedule(ratios: dict[str, Any]) -> str:
    """Which of our schedules a stored ratio used: older runs compared the daemon's, which is not like for like."""
    every = ratios.get("ours_detect_every")
    if every == 1:
        return "full detection every frame, like for like"
    return "daemon defaults, fewer full detections than fer: not like for like"


def _peer(results: dict[str, Any]) -> list[str]:
    peer = results.get("peer") or {}
    if not peer.get("available"):
        return [f"**Not measured**: {peer.get('reason') or 'peer not run'}. No figure for `fer` is shown."]
    r = results.get("ratios") or {}
    files = ", ".join(f"{k} ({_mb(v)})" for k, v in peer.get("model_files", {}).items())
    versions = ", ".join(f"{k} {v}" for k, v in peer.get("versions", {}).items())
    lines = [f"Package: {peer['package']} in its own venv ({versions}). Shipped model files: {files}.", "",
             f"How: {peer['method']}", "",
             f"Network connections attempted during the run: {len(peer.get('network_attempts', []))}"
             + (f" ({', '.join(peer['network_attempts'])})" if peer.get("network_attempts") else
                " (nothing is downloaded at run time)") + ".", ""]
    if r:
        ours = _ratio_schedule(r)
        lines += _table(["ratio (taken in this run)", "value"], [
            [f"pipeline p50 latency, ours ({r['artifact']}, {ours}) / fer's detect_emotions",
             f"{r['latency_p50_ours_over_fer']:.3f}"],
            [f"fer / ours ({ours}): speed-up", f"{r['speedup_fer_over_ours']:.1f}x"],
            [f"CPU ms per frame, ours ({ours}) / fer", "–" if r.get("cpu_ms_ours_over_fer") is None
             else f"{r['cpu_ms_ours_over_fer']:.3f}"],
            [f"top-1 points, ours ({r['artifact']}) − fer (TFLite)", "–" if "top1_points_ours_minus_fer" not in r
             else f"{r['top1_points_ours_minus_fer']:+.2f}"],
            ["macro-F1, ours − fer (TFLite)", "–" if "macro_f1_ours_minus_fer" not in r
             else f"{r['macro_f1_ours_minus_fer']:+.4f}"]])
    lines += ["", f"fer process: tensorflow import {peer.get('import_ms', 0) / 1000:.1f} s, `FER()` {_ms(peer.get('load_ms'))} ms, "
              f"peak RSS {peer.get('peak_rss_mb') or 0:.0f} MB while timing detect_emotions (including "
              f"{peer.get('frames_mb') or 0:.0f} MB of frames held in memory)."]
    if peer.get("accuracy_errors"):
        lines += ["", "fer models that failed: " + "; ".join(f"{k}: {v}" for k, v in peer["accuracy_errors"].items())]
    lines += ["", "Caveat: fer's model comes pre-trained by its authors on FER2013; the package does not document "
              "which images it trained or selected its model on, so its figures on a FER2013 split may be optimistic."]
    return lines


def _soak(results: dict[str, Any]) -> list[str]:
    soak = results.get("soak")
    if not soak:
        return ["Not run. `fer-bench soak --frames 10000` runs it and adds it here."]
    rows = [[f"{soak['frames']:,}", f"every {soak['every']}", f"{soak['start_mb']:.1f}", f"{warm_mb(soak):.1f}",
             f"{soak['end_mb']:.1f}",
             f"{soak['max_mb']:.1f}", f"{soak['slope_kb_per_1000_frames']:+.1f}", f"{soak['growth_mb']:+.2f}",
             "yes" if soak["flat"] else "no", f"{soak['seconds']:.0f} s", _ms(soak["p50_ms"])]]
    intro = (f"`{soak['artifact']}`, classifier {soak['threads']} thread (OpenCV's detection on its own threads), "
             "the demo clip looped at the daemon's defaults (decode included). Flat = the line fitted to RSS after "
             f"the first 10 % of frames grows less than {soak['flat_threshold_mb']:g} MB over the run." + _soak_when(soak))
    return [intro, ""] + _table(["frames", "sampled", "RSS before first frame MB", "after warm-up MB", "end MB",
                                 "max MB", "slope kB/1000 frames", "fitted growth MB", "flat", "wall time",
                                 "p50 ms/frame"], rows)


def _soak_when(soak: dict[str, Any]) -> str:
    """When and by what the soak was measured: it is a run of its own, possibly carried over from another folder."""
    if soak.get("carried_over"):
        sha = str(soak.get("artifact_sha256") or "?")[:12]
        return f" Not measured in this run: {soak_origin(soak)[2:]} (artifact sha256 {sha})."
    if soak.get("measured_at"):
        return f" Measured by `fer-bench soak` at {soak['measured_at']}."
    return " Measured by `fer-bench soak` into this folder."


def _provenance(results: dict[str, Any]) -> str:
    """The report's promise about where its figures come from, true also when a soak was added or carried over."""
    soak = results.get("soak")
    if not soak:
        return "every figure below was measured in this run."
    if soak.get("carried_over"):
        return ("every figure below was measured in this run, except the memory soak, carried over from an earlier "
                "run of the same model (see Memory soak).")
    return "every figure below was measured in this run, the memory soak by `fer-bench soak` into this folder."


def render(results: dict[str, Any], charts: list[str], chart_note: str = "") -> str:
    s = results["system"]
    lines = [f"# fer-bench: {s['host']}, {s['date']}", "",
             f"Model `{results['manifest']['name']}` from `{results['manifest']['path']}` (manifest created "
             f"{results['manifest'].get('created') or '?'}). Generated by `{results['config'].get('command') or 'fer-bench'}`; "
             f"{_provenance(results)}", ""]
    speed = int8_speed_note(results)
    notes = list(results.get("notes", [])) + ([speed] if speed else []) + ([chart_note] if chart_note else [])
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Summary", ""] + summary_table(results) + ["", pipeline_note(results), ""]
    lines += ["## Targets", ""] + targets_table(results) + [""]
    if results.get("also"):
        lines += ["## Models side by side", "",
                  "The same faces and the same model timing (batch 1, 1 thread); each model's data is loaded as its own run "
                  "recorded it.", ""] + side_by_side_table(results) + [""]
    lines += ["## Accuracy", ""] + _accuracy(results) + [""]
    lines += ["## Model latency", ""] + _models(results) + [""]
    lines += ["## Pipeline latency per stage", ""] + _pipeline(results) + [""]
    lines += ["## Face detection on the demo clip", ""] + _detection(results) + [""]
    if results.get("detectors"):
        lines += ["## Face detectors side by side", ""] + _detectors(results) + [""]
    lines += ["## Peer: the `fer` package", ""] + _peer(results) + [""]
    lines += ["## Memory soak", ""] + _soak(results) + [""]
    lines += ["## System", ""] + _system(results) + [""]
    if charts:
        lines += ["## Charts", ""]
        lines += [f"![{c}]({c})" for c in charts if not c.startswith("confusion_")]
        confusion = [c for c in charts if c.startswith("confusion_")]
        if confusion:
            lines += ["", "Confusion matrices: " + ", ".join(f"[{c[10:-4]}]({c})" for c in confusion)]
        lines += [""]
    lines += ["Timings are p50 with ± half the interquartile range; p95/p99 and min–max in the detail tables. "
              "Comparisons are ratios of figures taken in this one run.", ""]
    return "\n".join(lines)


def _tilted_found(row: dict[str, Any] | None) -> str:
    """The share of faces found at the steepest tilt measured (both directions: the lower one)."""
    angles = (row or {}).get("by_angle") or {}
    steep = [a for a in angles if abs(float(a)) == max((abs(float(k)) for k in angles), default=0) and float(a)]
    return "–" if not steep else (f"{min(angles[a]['recall'] for a in steep):.3f} "
                                  f"(±{abs(float(steep[0])):.0f}°)")


def headline_table(results: dict[str, Any]) -> list[str]:
    """Ours (int8, with each detector) beside fer: the few columns a user chooses by. Every cell is
    read from this run's results; what the run did not measure shows as a dash."""
    from benchmarks.detectors import shipped_setup

    acc = {m["name"]: m for m in (results.get("accuracy") or {}).get("models", [])}
    full = {r["artifact"]: r for r in results["pipeline"].get("full_detection_rows", [])}  # every run times it
    det = results.get("detectors") or {}  # runs before the detector comparison have none
    rows_by = {(r["scene"].split(",")[0].split(" (")[0], r["setup"]): r for r in det.get("rows", [])}

    def detector_row(scene: str, kind: str) -> dict[str, Any] | None:
        return rows_by.get((scene, shipped_setup(kind)))

    def portraits_or_clip(kind: str) -> dict[str, Any] | None:
        return detector_row("real portraits", kind) or detector_row("tilted clip", kind)

    def votes(m: dict[str, Any] | None) -> list[str]:
        f = (m or {}).get("ferplus") or {}
        return [f"{f['agreement']:.4f}" if "agreement" in f else "–",
                f"{f['annotator_share']:.4f}" if "annotator_share" in f else "–"]

    int8, one = acc.get("int8"), _model_row(results, "int8")
    haar_frame = (full.get("int8") or {}).get("total", {}).get("p50")
    # the every-frame row the speed target reads (BlazeFace's default schedule is every frame too)
    blaze_demo = (rows_by.get(("demo clip", f"{shipped_setup('blazeface')}, full pass every 1"))
                  or detector_row("demo clip", "blazeface"))
    header = ["", "face detector", "top-1, FER2013 labels", "FER+ agreement", "annotator share",
              "ms/face, batch 1, 1 thread", "ms/frame, full detection every frame", "demo clip: faces found",
              "tilted faces found"]
    rows = []
    for kind, frame_ms in (("haar", haar_frame), ("blazeface", (blaze_demo or {}).get("ms_per_frame"))):
        rows.append([f"fer-edge, int8{' (default)' if kind == 'haar' else ''}", "Haar" if kind == "haar" else "BlazeFace",
                     f"{int8['accuracy']:.4f}" if int8 else "–", *votes(int8),
                     _ms(one["stats"]["p50"]) if one else "–", _ms(frame_ms),
                     f"{detector_row('demo clip', kind)['recall']:.3f}" if detector_row("demo clip", kind) else "–",
                     _tilted_found(portraits_or_clip(kind))])
    peer = results.get("peer") or {}
    if peer.get("available"):
        images = (results.get("accuracy") or {}).get("images")
        m = next(iter(peer.get("accuracy") or []), None)
        recall = (peer.get("detection") or {}).get("recall")
        rows.append([f"{m['name'] if m else 'fer'} — {peer['package']}", "Haar (fer's)",
                     f"{m['accuracy']:.4f}" if m else "–", *votes(m),
                     _peer_per_face(peer, m["name"], images) if m else "–",
                     _ms((peer.get("latency") or {}).get("p50")),
                     f"{recall:.3f}" if isinstance(recall, (int, float)) else "–", "–"])
    scene = ("real portraits placed small and tilted" if portraits_or_clip("haar") is detector_row("real portraits", "haar")
             and detector_row("real portraits", "haar") else "the tilted clip")
    note = ("ms/frame: p50 over the demo clip's 640x480 frames, decode excluded; Haar and fer from the pipeline "
            "timing, BlazeFace from the detector comparison of the same run. Faces found: recall at IoU >= 0.5 at "
            f"each detector's default schedule; tilted: {scene}, the lower of the two directions. FER+ columns: "
            "agreement with the ten annotators' majority label, and the mean share of annotators who chose the "
            "predicted emotion (`--votes`).")
    return _table(header, rows) + ["", note]


def readme_table(results: dict[str, Any], source: str = "") -> str:
    """The block the README carries: the headline table and the targets of the latest run on this machine;
    every other table is in the run's report.md."""
    s = results["system"]
    head = (f"Measured by `fer-bench` on {s['host']} ({s['cpu']}, {s['cores']} cores) on {s['date']}"
            + (f", load average {s['load_average_start'][0]:.2f} at start" if s.get("load_average_start") else "")
            + f"{' — ' + source if source else ''}. Regenerate with `make bench`.")
    folder = source.removesuffix("/results.json")  # `fer-bench readme` may name the file or its folder
    report = f" Every table of this run: [{folder}/report.md]({folder}/report.md)." if source else ""
    return "\n".join([head + report, ""] + headline_table(results) + ["", "Targets:", ""]
                      + targets_table(results)) + "\n"


def write_results(results: dict[str, Any], out: Path) -> Path:
    """results.json first (the source of truth), then charts, then report.md; returns report.md."""
    out.mkdir(parents=True, exist_ok=True)
    results["targets"] = judge(results)
    tmp = out / ".results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, out / "results.json")
    charts, note = write_charts(results, out)
    report = out / "report.md"
    report.write_text(render(results, charts, note))
    return report


def load_results(path: Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    from edge.documents import read_document

    data = read_document(path, "results file", BenchError)
    if not isinstance(data, dict) or data.get("schema") != "fer-bench-results":
        raise BenchError(f"{path} is not a fer-bench results.json")
    return data


START, END = "<!-- fer-bench:start -->", "<!-- fer-bench:end -->"


def check_readme(readme: Path, start: str = START, end: str = END) -> str:
    """The README's text, if it can take the table; called before a run too, so a wrong --readme
    fails in one line before the measuring rather than after it."""
    try:
        text = readme.read_text()
    except OSError as exc:
        raise BenchError(f"cannot read {readme}: {exc.strerror}") from None
    if start not in text or end not in text or text.index(start) > text.index(end):
        raise BenchError(f"{readme} has no '{start}' ... '{end}' markers to put the table between")
    return text


def update_readme(readme: Path, block: str, start: str = START, end: str = END) -> None:
    """Replace the text between the markers; the README must already have them."""
    from benchmarks.outputs import write_text_atomic

    text = check_readme(readme, start, end)
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    write_text_atomic(readme, f"{before}{start}\n{block}{end}{after}", "README")


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """Renderers index results.json directly. A file that carries the schema tag but lost or retyped a
    field (hand-edited, or cut by a tool) must fail as one line naming it, not as a KeyError in a table."""
    try:
        yield
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
        path = Path(path) / "results.json" if Path(path).is_dir() else path
        detail = f"missing {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise BenchError(f"{path} is not a complete fer-bench results.json ({detail})") from None
