"""Detection recall and precision against a clip's ground-truth boxes (IoU >= 0.5, greedy matching).

The same matching scores our pipeline and the `fer` package, so "recall at least as good as
fer's" is a comparison of two numbers computed one way, on the same frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from edge.vision.faces import Box

MIN_IOU = 0.5


@dataclass(frozen=True)
class DetectionScore:
    frames: int
    truth: int
    detected: int
    true_positives: int
    recall: float
    precision: float
    label_accuracy: float | None  # emotion label right, among matched faces
    min_iou: float = MIN_IOU

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def match(truth: Sequence[Box], found: Sequence[Box], min_iou: float = MIN_IOU) -> list[tuple[int, int]]:
    """(truth index, found index) pairs, best overlaps first, each box used once."""
    pairs = sorted(((t.iou(f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)), reverse=True)
    used_t: set[int] = set()
    used_f: set[int] = set()
    matched = []
    for overlap, i, j in pairs:
        if overlap < min_iou:
            break
        if i in used_t or j in used_f:
            continue
        used_t.add(i)
        used_f.add(j)
        matched.append((i, j))
    return matched


def score_detections(truth: Sequence[Sequence[tuple[Box, str]]], found: Sequence[Sequence[tuple[Box, str]]],
                     min_iou: float = MIN_IOU) -> DetectionScore:
    """``truth[k]`` and ``found[k]`` are the (box, label) lists of frame k."""
    n_truth = n_found = tp = right = 0
    for frame_truth, frame_found in zip(truth, found):
        n_truth += len(frame_truth)
        n_found += len(frame_found)
        pairs = match([b for b, _ in frame_truth], [b for b, _ in frame_found], min_iou)
        tp += len(pairs)
        right += sum(frame_truth[i][1] == frame_found[j][1] for i, j in pairs)
    frames = min(len(truth), len(found))
    return DetectionScore(frames, n_truth, n_found, tp, tp / n_truth if n_truth else 0.0,
                          tp / n_found if n_found else 0.0, right / tp if tp else None, min_iou)
