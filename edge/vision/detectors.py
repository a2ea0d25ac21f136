"""The face detector a config's ``[detector]`` section names: the daemon, ``detect``, ``analyze``,
``validate-config`` and fer-bench all build it here, so they cannot drift apart.

Its own module so that the detectors depend on nothing above them: faces.py (Haar, boxes, crops) is
what blazeface.py builds on, and this one imports both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.errors import EdgeError
from edge.vision.faces import Detector, FaceDetector

if TYPE_CHECKING:
    from edge.config import DetectorSection


def build_detector(d: DetectorSection, threads: int = 1) -> Detector:
    """Haar, or BlazeFace (imported only then: it loads a TFLite runtime)."""
    if d.kind == "blazeface":
        from edge.vision.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(d.model, d.min_score, d.max_faces, threads, d.min_size)
    if d.kind == "haar":
        return FaceDetector.from_config(d)
    from edge.config import DETECTOR_KINDS

    raise EdgeError(f"detector.kind must be one of {', '.join(DETECTOR_KINDS)}, not {d.kind!r}")
