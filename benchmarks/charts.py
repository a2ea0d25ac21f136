"""PNG charts for the report (matplotlib, Agg backend), each optional.

matplotlib is not an edge dependency; on a Pi without it the report is written without charts
and says so, instead of the whole run failing at the last step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.targets import threads_label

STAGE_ORDER = ("decode", "convert", "detect", "crop", "classify", "track")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def stage_chart(results: dict[str, Any], path: Path) -> bool:
    pipeline = results.get("pipeline", {})
    daemon, full = pipeline.get("rows", []), pipeline.get("full_detection_rows", [])
    rows = daemon + full
    if not rows:
        return False
    plt = _pyplot()
    peer = results.get("peer") or {}
    # fer detects on every frame: its bar sits beside our every-frame bars, the daemon's are labelled as such
    names = [f"{r['artifact']} ({r['runtime']})\ndaemon defaults" for r in daemon]
    names += [f"{r['artifact']} ({r['runtime']})\nfull detection every frame" for r in full]
    fig, ax = plt.subplots(figsize=(9, max(4.2, 1.2 + 0.5 * (len(rows) + 1))), dpi=110)
    left = [0.0] * len(rows)
    colors = plt.get_cmap("tab10").colors
    for k, stage in enumerate(STAGE_ORDER):
        widths = [r["stages"][stage]["p50"] for r in rows]
        ax.barh(names, widths, left=left, color=colors[k], label=stage)
        left = [a + b for a, b in zip(left, widths)]
    if peer.get("available") and peer.get("latency"):
        names.append("fer detect_emotions\nfull detection every frame")
        ax.barh(names[-1:], [peer["latency"]["p50"]], color="0.55", label="fer (whole call)")
        ax.errorbar([peer["latency"]["p50"]], [len(names) - 1], xerr=[[0], [peer["latency"]["p95"] - peer["latency"]["p50"]]],
                    fmt="none", ecolor="black", capsize=3)
    for i, r in enumerate(rows):
        ax.errorbar([r["total"]["p50"]], [i], xerr=[[0], [r["total"]["p95"] - r["total"]["p50"]]], fmt="none",
                    ecolor="black", capsize=3)
    ax.set_xlabel("ms per 640x480 frame (p50 per stage; whisker to total p95)")
    ax.set_title(f"Pipeline latency per stage, {threads_label(pipeline)} — {results['system']['host']} "
                 f"{results['system']['date']}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def accuracy_chart(results: dict[str, Any], path: Path) -> bool:
    models = list((results.get("accuracy") or {}).get("models", []))
    models += list((results.get("peer") or {}).get("accuracy", []))
    if not models:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    x = range(len(models))
    ax.bar([i - 0.2 for i in x], [m["accuracy"] for m in models], width=0.4, label="top-1")
    ax.bar([i + 0.2 for i in x], [m["macro_f1"] for m in models], width=0.4, label="macro-F1")
    for i, m in enumerate(models):
        ax.text(i - 0.2, m["accuracy"] + 0.01, f"{m['accuracy']:.3f}", ha="center", fontsize=7)
    ax.set_xticks(list(x), [m["name"].replace(" (", "\n(") for m in models], fontsize=7)
    ax.set_ylim(0, 1)
    data = results["accuracy"]
    where = "/".join(Path(data["data"]).parts[-2:])
    ax.set_title(f"Accuracy per model on {where} ({data['images']} faces)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def model_chart(results: dict[str, Any], path: Path) -> bool:
    rows = results.get("model_latency", {}).get("rows", [])
    if not rows:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.28 * len(rows)), dpi=110)
    labels = [f"{r['artifact']} {r['backend']} t{r['threads']} b{r['batch']}" for r in rows]
    per_face = [r["per_face_ms"] for r in rows]
    ax.barh(labels, per_face, color="tab:blue")
    for i, r in enumerate(rows):
        ax.text(per_face[i], i, f" {per_face[i]:.2f}", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ms per face (p50 of the batch / batch size)")
    ax.set_title("Model latency per artifact, backend, threads (t) and batch (b)", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def soak_chart(soak: dict[str, Any], path: Path) -> bool:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    frames = [s[0] for s in soak["samples"]]
    rss = [s[1] for s in soak["samples"]]
    ax.plot(frames, rss, marker=".", lw=1)
    ax.set_xlabel("frame")
    ax.set_ylabel("RSS (MB)")
    ax.set_title(f"RSS over {soak['frames']:,} frames ({soak['artifact']}, {soak['threads']} thread): "
                 f"fitted growth {soak['growth_mb']:+.2f} MB", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def confusion_charts(results: dict[str, Any], out: Path) -> list[str]:
    from train.evaluate import save_confusion_png

    written = []
    labels = (results.get("accuracy") or {}).get("labels") or []
    models = list((results.get("accuracy") or {}).get("models", [])) + list((results.get("peer") or {}).get("accuracy", []))
    for m in models:
        name = "confusion_" + "".join(c if c.isalnum() else "_" for c in m["name"]).strip("_").replace("__", "_") + ".png"
        save_confusion_png(m["confusion_matrix"], labels, out / name, f"{m['name']}: top-1 {m['accuracy']:.4f}")
        written.append(name)
    return written


def write_charts(results: dict[str, Any], out: Path) -> tuple[list[str], str]:
    """The PNGs written, and a note when charts could not be drawn."""
    try:
        _pyplot()
    except ImportError:
        return [], "matplotlib is not installed: no charts (pip install matplotlib)."
    written = []
    for name, draw in (("latency_stages.png", stage_chart), ("accuracy.png", accuracy_chart),
                       ("model_latency.png", model_chart)):
        if draw(results, out / name):
            written.append(name)
    if results.get("soak") and soak_chart(results["soak"], out / "soak_rss.png"):
        written.append("soak_rss.png")
    try:
        written += confusion_charts(results, out)
    except ImportError:
        pass
    return written, ""
