"""Build a short camera-like clip from real FER2013 faces, with per-frame ground truth.

The daemon needs something to chew on where no camera is attached (CI, a laptop, a demo on a
projector). Real faces from the data set keep the classifier honest; pasting them into a plausible
room with sensor noise and slow drift exercises the detector, the tracker and the smoothing the way
a webcam would. The sidecar JSON records each pasted box and its true label so a run over the clip
can be scored, not just watched.

    python -m edge.demo_clip --data tests/data/fer2013_sample/test --out models/demo/demo_clip.mp4
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.cli import ArgumentParser, report_edge_errors
from edge.errors import EdgeError
from edge.packaged import shipped_cascade

FaceSample = tuple[np.ndarray, str]

DEFAULT_CASCADE = shipped_cascade()
FACE_SIZE = (120, 200)  # pixels at 480 rows; scaled with the frame height
SEGMENT = 30  # frames before the faces on screen change
FEATHER = 4  # pixels of border blended into the background
HAAR = {"scaleFactor": 1.1, "minNeighbors": 5, "minSize": (40, 40)}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm")


@dataclass(frozen=True)
class Placement:
    """One face on screen for one segment: where it starts and ends, linearly interpolated."""

    face: int
    size: int
    start: tuple[float, float]
    end: tuple[float, float]

    def box(self, t: float) -> list[int]:
        x = self.start[0] + (self.end[0] - self.start[0]) * t
        y = self.start[1] + (self.end[1] - self.start[1]) * t
        return [int(round(x)), int(round(y)), self.size, self.size]


def load_faces(data_dir: Path) -> list[tuple[np.ndarray, str, str]]:
    """(48x48 greyscale face, label, file) for every image under ``data_dir/<label>/``."""
    if not Path(data_dir).is_dir():
        raise EdgeError(f"no such folder: {data_dir}")
    faces = []
    for label_dir in sorted(path for path in Path(data_dir).iterdir() if path.is_dir()):
        for file in sorted(label_dir.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            image = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
            if image is not None:
                faces.append((image, label_dir.name, f"{label_dir.name}/{file.name}"))
    if not faces:
        raise EdgeError(f"no face images in {data_dir}/<label>/ (expected FER2013 class folders)")
    return faces


def make_background(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A static room: a lit wall gradient, a few blurred furniture-like blocks and a vignette.

    Everything is smooth so the codec spends its bits on the faces, and nothing looks like a face
    to a Haar cascade.
    """
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light_x = rng.uniform(0.2, 0.8) * width
    wall = 150 + 40 * (1 - yy / height) - 25 * np.abs(xx - light_x) / width
    for _ in range(int(rng.integers(2, 5))):
        w = int(rng.uniform(0.15, 0.45) * width)
        h = int(rng.uniform(0.2, 0.6) * height)
        x = int(rng.uniform(-0.1, 0.9) * width)
        y = int(rng.uniform(0.3, 0.9) * height)
        block = np.zeros_like(wall)
        block[max(y, 0):y + h, max(x, 0):x + w] = rng.uniform(-60, 35)
        wall += cv2.GaussianBlur(block, (0, 0), sigmaX=max(width, height) / 120)
    radius = np.hypot((xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2))
    wall *= 1 - 0.3 * np.clip(radius - 0.4, 0, None) ** 1.5
    tint = np.array([0.94, 1.0, 1.06], dtype=np.float32)  # BGR: a slightly warm room light
    return np.clip(wall[..., None] * tint, 0, 255).astype(np.float32)


def feather_mask(size: int, feather: int = FEATHER) -> np.ndarray:
    """1 inside, ramping to 0 over the outer ``feather`` pixels: hides the square's edge while
    leaving the face content itself untouched."""
    ramp = np.clip((np.minimum(np.arange(size), np.arange(size)[::-1]) + 0.5) / max(feather, 1), 0, 1)
    return np.minimum.outer(ramp, ramp).astype(np.float32)[..., None]


def paste_face(frame: np.ndarray, face: np.ndarray, box: Sequence[int]) -> None:
    """Upscale a 48x48 face to the box (bicubic, like a camera seeing it closer) and blend it in."""
    x, y, size, _ = box
    large = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    tinted = large[..., None] * np.array([0.97, 1.0, 1.04], dtype=np.float32)
    alpha = feather_mask(size)
    region = frame[y:y + size, x:x + size]
    region[:] = alpha * tinted + (1 - alpha) * region


def plan_segments(count: int, frames: int, size: tuple[int, int], rng: np.random.Generator) -> list[list[Placement]]:
    """One or two faces per segment, in separate halves so they never overlap, drifting slowly."""
    width, height = size
    scale = height / 480
    low, high = (int(round(FACE_SIZE[0] * scale)), int(round(FACE_SIZE[1] * scale)))
    segments: list[list[Placement]] = []
    next_face = 0
    for segment in range((frames + SEGMENT - 1) // SEGMENT):
        two = count > 1 and segment % 3 != 1  # 2, 1, 2, 2, 1, ...: 7 faces in 4 segments
        lanes = [(0, width // 2), (width // 2, width)] if two else [(int(width * 0.15), int(width * 0.85))]
        placements = []
        for lane_start, lane_end in lanes:
            face_size = int(min(rng.integers(low, high + 1), lane_end - lane_start - 8, height - 8))
            margin = 4
            max_x = lane_end - face_size - margin
            max_y = height - face_size - margin
            start = (rng.uniform(lane_start + margin, max_x), rng.uniform(margin, max_y))
            drift = rng.uniform(1.0, 2.0) * SEGMENT  # a few pixels a frame
            angle = rng.uniform(0, 2 * np.pi)
            end = (float(np.clip(start[0] + drift * np.cos(angle), lane_start + margin, max_x)),
                   float(np.clip(start[1] + drift * np.sin(angle), margin, max_y)))
            placements.append(Placement(next_face % count, face_size, start, end))
            next_face += 1
        segments.append(placements)
    return segments


def interleave_labels(faces: Sequence[FaceSample], rng: np.random.Generator) -> list[int]:
    """Face indices ordered so consecutive faces show different emotions."""
    by_label: dict[str, list[int]] = {}
    for index in rng.permutation(len(faces)):
        by_label.setdefault(faces[int(index)][1], []).append(int(index))
    order = []
    queues = [by_label[label] for label in sorted(by_label)]
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop())
    return order


def make_demo_clip(faces: list[tuple[np.ndarray, str]], path: Path, frames: int = 120,
                   size: tuple[int, int] = (640, 480), fps: float = 15, seed: int = 0) -> Path:
    """Write ``path`` (mp4v) and ``path + .json`` ground truth; returns ``path``.

    ``faces`` are (greyscale face, label) pairs; their order is shuffled by ``seed`` so labels
    alternate. The ground-truth box is the pasted square, i.e. the FER crop.
    """
    if not faces:
        raise EdgeError("make_demo_clip needs at least one face")
    if frames <= 0:
        raise EdgeError(f"frames must be positive, got {frames}")
    if size[0] < 160 or size[1] < 120:
        raise EdgeError(f"size must be at least 160x120 to fit two faces, got {size[0]}x{size[1]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    order = interleave_labels(faces, rng)
    segments = plan_segments(len(order), frames, size, rng)
    background = make_background(size, rng)
    # Fixed-pattern noise is free for the codec; a little temporal noise keeps it looking live.
    background += rng.normal(0, 2.0, background.shape[:2]).astype(np.float32)[..., None]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise EdgeError(f"cannot write {path}: OpenCV has no mp4v encoder here")
    truth = []
    try:
        for index in range(frames):
            segment = segments[index // SEGMENT]
            t = (index % SEGMENT) / max(SEGMENT - 1, 1)
            frame = background + rng.normal(0, 1.5, background.shape[:2]).astype(np.float32)[..., None]
            entries = []
            for placement in segment:
                face, label = faces[order[placement.face]]
                box = placement.box(t)
                paste_face(frame, face, box)
                entries.append({"box": box, "label": label, "face": order[placement.face]})
            writer.write(np.clip(frame, 0, 255).astype(np.uint8))
            truth.append({"index": index, "faces": entries})
    finally:
        writer.release()
    written = count_frames(path)
    if written != frames:
        raise EdgeError(f"{path}: wrote {frames} frames but {written} read back")
    sidecar = {"clip": path.name, "frames": frames, "fps": fps, "size": [width, height],
               "box_format": "xywh", "labels": sorted({label for _, label in faces}), "ground_truth": truth}
    write_sidecar(path, sidecar)
    return path


def sidecar_path(clip: Path) -> Path:
    return Path(f"{clip}.json")


def name_sources(clip: Path, files: Sequence[str]) -> None:
    """Add each face's sample file to the sidecar, so a misclassified face can be looked up."""
    sidecar = json.loads(sidecar_path(clip).read_text())
    for entry in sidecar["ground_truth"]:
        for face in entry["faces"]:
            face["file"] = files[face["face"]]
    write_sidecar(clip, sidecar)


def write_sidecar(clip: Path, sidecar: dict) -> None:
    """JSON with one line per frame: small, diffable, and still readable with ``less``."""
    header = {key: value for key, value in sidecar.items() if key != "ground_truth"}
    frames = ",\n  ".join(json.dumps(entry) for entry in sidecar["ground_truth"])
    text = json.dumps(header, indent=1)[:-2] + f',\n "ground_truth": [\n  {frames}\n ]\n}}\n'
    sidecar_path(clip).write_text(text)


def count_frames(path: Path) -> int:
    """Frames actually decodable, because CAP_PROP_FRAME_COUNT is only the container's claim."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    try:
        while capture.isOpened() and capture.read()[0]:
            count += 1
    finally:
        capture.release()
    return count


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter_w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    inter_h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = inter_w * inter_h
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


def detectable_faces(faces: Sequence[FaceSample], cascade: cv2.CascadeClassifier,
                     sizes: Sequence[int] = (120, 160, 200), seed: int = 0) -> list[int]:
    """Indices of faces the cascade finds at every paste size, so the demo shows detections
    rather than a classifier waiting for a detector that never fires."""
    rng = np.random.default_rng(seed)
    canvas = make_background((480, 480), rng)
    keep = []
    for index, (face, _) in enumerate(faces):
        found = 0
        for size in sizes:
            frame = canvas.copy()
            box = [(480 - size) // 2, (480 - size) // 2, size, size]
            paste_face(frame, face, box)
            gray = cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
            found += any(iou(box, hit) >= 0.3 for hit in cascade.detectMultiScale(gray, **HAAR))
        if found == len(sizes):
            keep.append(index)
    return keep


def haar_recall(clip: Path, cascade: cv2.CascadeClassifier, min_iou: float = 0.3) -> tuple[int, int, int]:
    """(faces found, faces pasted, false detections) over the clip, matching by IoU."""
    truth = json.loads(sidecar_path(clip).read_text())["ground_truth"]
    capture = cv2.VideoCapture(str(clip))
    found = total = false = 0
    try:
        for entry in truth:
            ok, frame = capture.read()
            if not ok:
                break
            hits = cascade.detectMultiScale(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), **HAAR)
            matched = [any(iou(face["box"], hit) >= min_iou for hit in hits) for face in entry["faces"]]
            found += sum(matched)
            total += len(matched)
            false += sum(not any(iou(face["box"], hit) >= min_iou for face in entry["faces"]) for hit in hits)
    finally:
        capture.release()
    return found, total, false


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}") from None
    return width, height


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m edge.demo_clip", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of <label>/*.jpg FER2013 faces")
    parser.add_argument("--out", type=Path, required=True, help="clip to write (.mp4); ground truth goes to OUT.json")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", type=parse_size, default=(640, 480), help="WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--fps", type=float, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cascade", type=Path, default=DEFAULT_CASCADE,
                        help="Haar cascade used to prefer faces it can detect and to report recall")
    parser.add_argument("--all-faces", action="store_true", help="use every face, detectable or not")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return report_edge_errors(lambda: write_demo_clip(args))


def write_demo_clip(args: argparse.Namespace) -> None:
    samples = load_faces(args.data)
    faces = [(image, label) for image, label, _ in samples]
    cascade = cv2.CascadeClassifier(str(args.cascade)) if args.cascade.is_file() else None
    if cascade is not None and cascade.empty():
        raise EdgeError(f"cannot load Haar cascade {args.cascade}")
    chosen = list(range(len(faces)))
    if cascade is not None and not args.all_faces:
        detectable = detectable_faces(faces, cascade, seed=args.seed)
        if detectable:
            chosen = detectable
        print(f"Haar finds {len(detectable)}/{len(faces)} sample faces when pasted; using "
              f"{len(chosen)} ({', '.join(sorted({faces[i][1] for i in chosen}))})")
    clip = make_demo_clip([faces[i] for i in chosen], args.out, args.frames, args.size, args.fps, args.seed)
    name_sources(clip, [samples[i][2] for i in chosen])
    size_kb = clip.stat().st_size / 1024
    print(f"wrote {clip} ({args.frames} frames, {args.size[0]}x{args.size[1]} @ {args.fps:g} fps, "
          f"{size_kb:.0f} KB) and {sidecar_path(clip)}")
    if cascade is not None:
        found, total, false = haar_recall(clip, cascade)
        print(f"Haar recall on the clip: {found}/{total} = {found / max(total, 1):.1%}, "
              f"{false} false detections")


if __name__ == "__main__":
    sys.exit(main())
