"""The shipped ten-view artifact, checked with edge's dependencies only (no tensorflow).

``models/views10`` is the opt-in that averages each face over ten views inside the int8 model. This
builds the ten views ``fer-train evaluate --views 10`` scores with numpy (train.distill.views, which
needs no tensorflow), runs each through the shipped single-view int8 model and averages them, so a
views artifact that averaged the wrong views, or none, would disagree.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.vision.classifier import Classifier
from edge.vision.manifest import load_manifest
from tests.edge_helpers import MANIFEST, ROOT, SAMPLE
from train.distill import views

VIEWS10 = ROOT / "models" / "views10" / "manifest.json"

pytestmark = pytest.mark.skipif(not VIEWS10.is_file() or not MANIFEST.is_file(), reason="views artifact not built")


def _faces() -> np.ndarray:
    paths = sorted((SAMPLE / "test").glob("*/*.jpg"))
    return np.stack([cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in paths])


def test_ten_view_artifact_averages_the_ten_views_of_each_face() -> None:
    assert load_manifest(VIEWS10).info["test_time_augmentation"] == "views10"
    faces = _faces()
    with Classifier(MANIFEST, "int8") as single:
        per_view = [single.predict(np.ascontiguousarray(view)) for view in views(faces, 10)]
        plain = single.predict(faces)
    expected = np.mean(per_view, axis=0)
    with Classifier(VIEWS10, "int8") as averaged:
        got = averaged.predict(faces)
    assert np.abs(got - expected).mean() < 0.005  # one view alone is about 0.015 away
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.95
    assert np.abs(got - plain).mean() > np.abs(got - expected).mean()  # closer to the views than to one
