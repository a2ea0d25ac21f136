"""The edge targets that benchmarks check, judged from a results dict: met, not met, or not measured.

Judged from the JSON (not from live objects) so a soak run added later re-judges the memory
target without re-running everything. Thresholds live here, next to their wording.
"""

from __future__ import annotations

from typing import Any

P50_MS = 10.0
SOAK_FRAMES = 10_000


def _target(name: str, goal: str, measured: str, met: bool | None, note: str = "") -> dict[str, Any]:
    return {"name": name, "target": goal, "measured": measured, "met": met, "note": note}


def warm_mb(soak: dict[str, Any]) -> float:
    if "warm_mb" in soak:
        return float(soak["warm_mb"])
    from benchmarks.soak import warm_rss

    return warm_rss(soak["samples"], soak["frames"]) if soak.get("samples") else float(soak["start_mb"])


def judge(results: dict[str, Any]) -> list[dict[str, Any]]:
    targets = []
    pipeline = results.get("pipeline") or {}
    rows = pipeline.get("rows") or []
    main = results.get("config", {}).get("target_artifact", "int8")
    row = next((r for r in rows if r["artifact"] == main and r["threads"] == 1), None)
    goal = f"end-to-end p50 <= {P50_MS:g} ms per 640x480 frame ({main}, 1 thread)"
    if row is None:
        targets.append(_target("latency", goal, "not measured", None,
                               f"no pipeline row for {main} at 1 thread"))
    else:
        p50 = row["total"]["p50"]
        targets.append(_target("latency", goal, f"p50 {p50:.2f} ms (p95 {row['total']['p95']:.2f} ms; "
                               f"{row['frames']} frames, {row['faces_per_frame']:.2f} faces/frame; decode excluded, "
                               f"with decode {row['total_with_decode']['p50']:.2f} ms)", p50 <= P50_MS,
                               f"CPU time p50 {row['cpu_ms_per_frame']['p50']:.2f} ms per frame; detection p50 "
                               f"{row['stages']['detect']['p50']:.2f} ms" if "stages" in row else ""))
    ours = (pipeline.get("detection") or {}).get(main)
    peer = results.get("peer") or {}
    theirs = peer.get("detection") if peer.get("available") else None
    goal = "detection recall >= fer's on the same frames (IoU >= 0.5)"
    if ours is None:
        targets.append(_target("recall", goal, "not measured", None, "the clip has no ground truth"))
    elif theirs is None:
        targets.append(_target("recall", goal, f"ours {ours['recall']:.3f} (precision {ours['precision']:.3f}); "
                               "fer not measured", None, peer.get("reason", "peer not run")))
    else:
        targets.append(_target("recall", goal, f"ours {ours['recall']:.3f} vs fer {theirs['recall']:.3f} "
                               f"(precision {ours['precision']:.3f} vs {theirs['precision']:.3f}, "
                               f"{ours['frames']} frames, {ours['truth']} faces)", ours["recall"] >= theirs["recall"]))
    soak = results.get("soak")
    goal = f"memory flat over a {SOAK_FRAMES:,}-frame run"
    if not soak:
        targets.append(_target("memory", goal, "not measured", None,
                               f"run `fer-bench soak --frames {SOAK_FRAMES}`"))
    else:
        short = soak["frames"] < SOAK_FRAMES
        targets.append(_target(
            "memory", goal, f"{soak['frames']:,} frames: RSS {soak['start_mb']:.1f} MB before the first frame, "
            f"{warm_mb(soak):.1f} after warm-up, {soak['end_mb']:.1f} at the end "
            f"(max {soak['max_mb']:.1f}), fitted growth {soak['growth_mb']:+.2f} MB "
            f"({soak['slope_kb_per_1000_frames']:+.1f} kB/1000 frames)",
            soak["flat"] if not short else None,
            f"shorter than {SOAK_FRAMES:,} frames: {'flat' if soak['flat'] else 'growing'} so far, not a verdict"
            if short else
            f"flat = fitted growth under {soak['flat_threshold_mb']:g} MB"))
    return targets


def verdict(met: bool | None) -> str:
    return {True: "met", False: "not met", None: "not measured"}[met]
