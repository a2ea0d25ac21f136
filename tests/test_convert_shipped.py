"""`fer-convert verify` on what ships: the figures models/manifest.json states are re-measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import MODELS

pytestmark = [pytest.mark.slow, pytest.mark.full_data]
MANIFEST = MODELS / "manifest.json"
FIGURES = ("accuracy", "macro_f1", "agreement_with_keras", "max_abs_prob_diff")


@pytest.mark.skipif(not MANIFEST.is_file(), reason="no shipped manifest")
def test_fer_convert_verify_reproduces_every_figure_of_the_shipped_manifest(
        full_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from convert.__main__ import main

    stated = json.loads(MANIFEST.read_text())["artifacts"]
    capsys.readouterr()
    assert main(["verify", str(MANIFEST), "--data", str(full_data), "--split", "test", "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)["artifacts"]
    assert set(measured) == set(stated)
    for name, metrics in measured.items():
        recorded = stated[name]["metrics"]
        assert metrics["images"] == recorded["images"], name
        for key in FIGURES:
            if key in recorded:
                assert metrics[key] == pytest.approx(recorded[key], abs=2e-6), (name, key)
