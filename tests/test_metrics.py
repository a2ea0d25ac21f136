"""The metric arithmetic every component shares, checked on hand-computed cases."""

from __future__ import annotations

import numpy as np

from train.evaluate import score


def test_score_matches_hand_computation() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    result = score(y_true, y_pred, ["a", "b", "c"])
    assert result["accuracy"] == 4 / 6
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # class a: p=1/2 r=1/2 f1=.5; b: p=2/3 r=1 f1=.8; c: p=1 r=1/2 f1=2/3
    assert np.isclose(result["macro_f1"], (0.5 + 0.8 + 2 / 3) / 3)
    assert result["per_class"]["b"]["support"] == 2


def test_absent_class_is_left_out_of_macro_f1() -> None:
    result = score(np.array([0, 0]), np.array([0, 0]), ["a", "b"])
    assert result["macro_f1"] == 1.0 and result["per_class"]["b"]["support"] == 0
