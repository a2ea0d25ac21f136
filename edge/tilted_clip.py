"""Build a clip of the same FER2013 faces upright and tilted (0, +-15, +-30 degrees), with ground truth.

People in a room tilt their heads; Haar stops finding faces past ~20 degrees. This clip shows
every face at every angle, six to a frame, so a detector's recall and the end-to-end accuracy can
be compared angle by angle on identical faces. Every sample face is used (none is picked for being
easy to detect). The sidecar gives each face's upright box (the pasted square before the turn),
label and angle.

    python -m edge.tilted_clip --data tests/data/fer2013_sample/test --out models/demo/tilted_clip.mp4
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.cli import ArgumentParser, report_edge_errors
from edge.demo_clip import count_frames, feather_mask, load_faces, make_background, sidecar_path, write_sidecar
from edge.errors import EdgeError

ANGLES = (0, 15, -15, 30, -30)
GRID = (3, 2)  # columns, rows of faces per frame
FACE_SIZE = 130  # pixels at 480 rows: a person a couple of metres from a 640x480 camera


def paste_tilted(frame: np.ndarray, face: np.ndarray, centre: tuple[float, float], size: int, angle: float) -> None:
    """Upscale the face to ``size``, turn it by ``angle`` degrees (positive: counter-clockwise, as
    a head tilted to the viewer's left) about its centre, and blend it in with a feathered edge."""
    side = int(np.ceil(size * 1.45))
    offset = (side - size) / 2
    large = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    canvas = np.zeros((side, side), np.float32)
    alpha = np.zeros((side, side), np.float32)
    o = int(round(offset))
    canvas[o:o + size, o:o + size] = large
    alpha[o:o + size, o:o + size] = feather_mask(size)[..., 0]
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    canvas = cv2.warpAffine(canvas, matrix, (side, side), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(alpha, matrix, (side, side), flags=cv2.INTER_LINEAR)[..., None]
    x0, y0 = int(round(centre[0] - side / 2)), int(round(centre[1] - side / 2))
    # the turned square's empty corners may stick out of the frame: paste only the part inside
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(frame.shape[1], x0 + side), min(frame.shape[0], y0 + side)
    canvas, alpha = canvas[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0], alpha[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    region = frame[fy0:fy1, fx0:fx1]
    tinted = canvas[..., None] * np.array([0.97, 1.0, 1.04], dtype=np.float32)
    region[:] = alpha * tinted + (1 - alpha) * region


def make_tilted_clip(faces: Sequence[tuple[np.ndarray, str]], path: Path, fps: float = 15, seed: int = 0,
                     angles: Sequence[int] = ANGLES) -> Path:
    """Write ``path`` (mp4v, 640x480) and its sidecar: for each angle, every face once, six a frame."""
    if not faces:
        raise EdgeError("make_tilted_clip needs at least one face")
    width, height = 640, 480
    cols, rows = GRID
    per_frame = cols * rows
    cell_w, cell_h = width / cols, height / rows
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    order = [int(i) for i in rng.permutation(len(faces))]
    background = make_background((width, height), rng)
    background += rng.normal(0, 2.0, background.shape[:2]).astype(np.float32)[..., None]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise EdgeError(f"cannot write {path}: OpenCV has no mp4v encoder here")
    extent = FACE_SIZE * 1.37  # a square turned 30 degrees
    truth = []
    try:
        for angle in angles:
            for start in range(0, len(order), per_frame):
                frame = background.copy()  # no temporal noise: every frame is new faces, bits go to them
                entries = []
                for slot, face_index in enumerate(order[start:start + per_frame]):
                    col, row = slot % cols, slot // cols
                    jitter_x = rng.uniform(-1, 1) * max(0.0, (cell_w - extent) / 2 - 2)
                    jitter_y = rng.uniform(-1, 1) * max(0.0, (cell_h - extent) / 2 - 2)
                    cx, cy = (col + 0.5) * cell_w + jitter_x, (row + 0.5) * cell_h + jitter_y
                    face, label = faces[face_index]
                    paste_tilted(frame, face, (cx, cy), FACE_SIZE, angle)
                    box = [int(round(cx - FACE_SIZE / 2)), int(round(cy - FACE_SIZE / 2)), FACE_SIZE, FACE_SIZE]
                    entries.append({"box": box, "label": label, "angle": angle, "face": face_index})
                writer.write(np.clip(frame, 0, 255).astype(np.uint8))
                truth.append({"index": len(truth), "faces": entries})
    finally:
        writer.release()
    written = count_frames(path)
    if written != len(truth):
        raise EdgeError(f"{path}: wrote {len(truth)} frames but {written} read back")
    write_sidecar(path, {"clip": path.name, "frames": len(truth), "fps": fps, "size": [width, height],
                         "box_format": "xywh", "angles": list(angles),
                         "labels": sorted({label for _, label in faces}), "ground_truth": truth})
    return path


def pick_per_label(samples: Sequence[tuple[np.ndarray, str, str]], per_label: int) -> list[tuple[np.ndarray, str]]:
    """The first ``per_label`` faces of each label (files in name order): a balanced set small
    enough that the committed clip stays under ~500 KB (mp4v spends ~15 KB on a frame of new faces)."""
    counts: dict[str, int] = {}
    chosen = []
    for image, label, _ in samples:
        if counts.get(label, 0) < per_label:
            counts[label] = counts.get(label, 0) + 1
            chosen.append((image, label))
    return chosen


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m edge.tilted_clip", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of <label>/*.jpg FER2013 faces")
    parser.add_argument("--out", type=Path, required=True, help="clip to write (.mp4); ground truth goes to OUT.json")
    parser.add_argument("--fps", type=float, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-label", type=int, default=5, help="faces of each label (default 5)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return report_edge_errors(lambda: write_tilted_clip(args))


def write_tilted_clip(args: argparse.Namespace) -> None:
    if args.per_label < 1:
        raise EdgeError(f"--per-label must be >= 1, not {args.per_label}")
    faces = pick_per_label(load_faces(args.data), args.per_label)
    clip = make_tilted_clip(faces, args.out, args.fps, args.seed)
    print(f"wrote {clip} ({count_frames(clip)} frames of {len(faces)} faces at angles "
          f"{', '.join(map(str, ANGLES))}; {clip.stat().st_size / 1024:.0f} KB) and {sidecar_path(clip)}")


if __name__ == "__main__":
    sys.exit(main())
