"""Redraw the pictures the docs show, from the demo clip and the shipped model (``make docs-images``):

- docs/images/demo-frame.png: an annotated frame of the demo clip (README's picture)
- docs/images/timeline.png: ``fer-edge analyze``'s timeline chart of the demo clip
- docs/images/live-view.png: the live view page in headless Chromium, the daemon on the demo clip

Each is checked to stay under 300 KB, so redrawing them cannot bloat the repository.

    python -m tests.docs_images --out docs/images
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "models" / "demo" / "demo_clip.mp4"
DEMO_CONFIG = ROOT / "edge" / "configs" / "demo.toml"
MAX_BYTES = 300_000


def demo_frame(out: Path) -> Path:
    """The frame of the clip with the most faces (the first such, halfway into its segment)."""
    import cv2

    from edge.analysis.drawing import draw_faces
    from edge.analysis.run import build_pipeline
    from edge.config import load_config

    pipeline = build_pipeline(load_config(DEMO_CONFIG))
    capture = cv2.VideoCapture(str(CLIP))
    best: tuple[int, int, object, object] | None = None
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        result = pipeline.process(image, index, index / 15)
        score = len(result.faces) * 100 - abs(index % 30 - 15)  # most faces, then mid-segment
        if best is None or score > best[0]:
            best = (score, index, image, result)
        index += 1
    capture.release()
    pipeline.classifier.close()
    assert best is not None, f"no frame decoded from {CLIP}"
    path = out / "demo-frame.png"
    cv2.imwrite(str(path), draw_faces(best[2], best[3], tuple(pipeline.labels)),  # type: ignore[arg-type]
                [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


def timeline(out: Path) -> Path:
    from edge.analysis.run import analyze
    from edge.config import load_config

    with tempfile.TemporaryDirectory() as tmp:
        analyze(CLIP, Path(tmp), load_config(DEMO_CONFIG), progress=False, annotate=False)
        path = out / "timeline.png"
        shutil.copyfile(Path(tmp) / "timeline.png", path)
    return path


def live_view(out: Path) -> Path:
    from tests.live_view_shot import screenshot_live_view

    path = out / "live-view.png"
    screenshot_live_view(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--only", choices=("demo-frame", "timeline", "live-view"), action="append")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = {"demo-frame": demo_frame, "timeline": timeline, "live-view": live_view}
    status = 0
    for name in args.only or jobs:
        try:
            path = jobs[name](args.out)
        except Exception as exc:  # noqa: BLE001 - a maintainer tool: say which picture failed and go on
            print(f"docs-images: error: {name}: {exc}", file=sys.stderr)
            status = 2
            continue
        size = path.stat().st_size
        if size > MAX_BYTES:
            print(f"docs-images: error: {path} is {size} bytes, over {MAX_BYTES}", file=sys.stderr)
            status = 2
        else:
            print(f"{path} ({size // 1000} KB)")
    return status


if __name__ == "__main__":
    sys.exit(main())
