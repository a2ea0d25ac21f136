"""Where edge/vision/blazeface.py's framing constants come from: BlazeFace's raw box and keypoints
against the framing the classifier's crop margin expects (Haar's box, 1/1.04 of FER2013's crop).

Two references, printed side by side (the constants in blazeface.py are their mean, rounded):
FER2013 *train* faces pasted at 100-200 px in 640x480 frames (truth: the pasted square / 1.04), and
real portraits (truth: Haar's box on the photo) when the research-licensed folder is around.

    python -m benchmarks.blazeface_fit [--fer2013 DIR] [--portraits DIR] [--faces 300]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.detectors import portrait_scene, env_folder
from edge.vision.faces import Box

MODEL = Path(__file__).resolve().parents[1] / "models" / "blazeface" / "face_detection_back.tflite"
FER_MARGIN = 1.04  # FER2013's crop over Haar's box (crop_margin 0.02 per side)


def measure(frames: Sequence[np.ndarray], truths: Sequence[Box], angles: Sequence[int], model: Path) -> dict[str, float]:
    """Medians over the faces found: truth side / raw box side, how far the truth's centre sits above
    the box's (in box heights), where it sits between eyes and mouth, and the box's shrink at 30 degrees."""
    import cv2

    import edge.vision.blazeface as bf

    detector = bf.BlazeFaceDetector(model)
    rows: dict[int, list[tuple[float, float, float]]] = {}
    for frame, truth, angle in zip(frames, truths, angles):
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        square, fit = bf.letterbox(gray, detector.size)
        raw = []  # BlazeFace's own boxes and keypoints in frame pixels, before any framing
        for rel_box, rel_points, _ in detector.run(square):
            corners = (np.asarray(rel_box).reshape(2, 2) * detector.size - (fit.pad_x, fit.pad_y)) / fit.scale
            points = (rel_points * detector.size - (fit.pad_x, fit.pad_y)) / fit.scale
            (x0, y0), (x1, y1) = corners
            raw.append((Box(int(x0), int(y0), int(x1 - x0), int(y1 - y0)), points, (y0 + y1) / 2, max(x1 - x0, y1 - y0)))
        if not raw:
            continue
        box, points, raw_cy, side = max(raw, key=lambda r: truth.iou(r[0]))
        if truth.iou(box) < 0.3:
            continue
        eyes = (points[0] + points[1]) / 2
        towards_mouth = points[3] - eyes
        centre = np.array([truth.x + truth.w / 2, truth.y + truth.h / 2])
        along = float(np.dot(centre - eyes, towards_mouth) / max(float(np.dot(towards_mouth, towards_mouth)), 1e-6))
        rows.setdefault(angle, []).append((truth.w / side, (raw_cy - centre[1]) / side, along))
    upright = np.array(rows.get(0, [(np.nan,) * 3]))
    tilted = np.array(rows.get(30, []) + rows.get(-30, []) or [(np.nan,) * 3])
    return {"faces": sum(len(v) for v in rows.values()), "scale": float(np.median(upright[:, 0])),
            "shift_up": float(np.median(upright[:, 1])), "keypoint_centre": float(np.median(upright[:, 2])),
            "shrink_at_30": float(np.median(upright[:, 0]) / np.median(tilted[:, 0]))}


def fer_frames(folder: Path, count: int, seed: int = 1) -> tuple[list[np.ndarray], list[Box], list[int]]:
    from edge.demo_clip import load_faces, make_background
    from edge.tilted_clip import paste_tilted

    faces = load_faces(folder)
    rng = np.random.default_rng(seed)
    room = make_background((640, 480), rng)
    frames, truths, angles = [], [], []
    for index in rng.choice(len(faces), min(count, len(faces)), replace=False):
        size = int(rng.integers(100, 201))
        for angle in (0, 30, -30):
            frame = room.copy()
            cx, cy = rng.uniform(size, 640 - size), rng.uniform(size, 480 - size)
            paste_tilted(frame, faces[int(index)][0], (cx, cy), size, angle)
            side = size / FER_MARGIN
            frames.append(np.clip(frame, 0, 255).astype(np.uint8))
            truths.append(Box(int(round(cx - side / 2)), int(round(cy - side / 2)), int(round(side)), int(round(side))))
            angles.append(angle)
    return frames, truths, angles


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.blazeface_fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--fer2013", type=Path, default=env_folder("FER2013_DIR"))
    parser.add_argument("--portraits", type=Path, default=env_folder("PORTRAITS_DIR"))
    parser.add_argument("--faces", type=int, default=300)
    args = parser.parse_args(argv)
    fits = {}
    if args.fer2013 and (args.fer2013 / "train").is_dir():
        fits["FER2013 train"] = measure(*fer_frames(args.fer2013 / "train", args.faces), args.model)
    if args.portraits and args.portraits.is_dir():
        scene = portrait_scene(args.portraits, angles=(0, 30, -30))
        if scene is not None:
            fits["portraits"] = measure(scene.frames, [t[0][0] for t in scene.truth], scene.angles, args.model)
    if not fits:
        print("error: neither FER2013 (with train/) nor the portraits folder found", file=sys.stderr)
        return 2
    for name, fit in fits.items():
        print(f"{name}: {fit['faces']} faces; Haar side = {fit['scale']:.3f} x BlazeFace's box, centre "
              f"{fit['shift_up']:.3f} box heights higher, {fit['keypoint_centre']:.3f} of the way from the eyes "
              f"to the mouth; at 30 degrees the box is {fit['shrink_at_30']:.3f}x its upright size")
    return 0


if __name__ == "__main__":
    sys.exit(main())
