"""Shared fixtures: the bundled FER2013 sample, and the full data set when it is present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "fer2013_sample"
MODELS = ROOT / "models"


def full_data_dir() -> Path | None:
    """FER2013_DIR (the Makefile and .ci/run export the team's copy): no test defaults to a folder of one machine."""
    candidate = os.environ.get("FER2013_DIR", "").strip()
    return Path(candidate) if candidate and (Path(candidate) / "test").is_dir() else None


@pytest.fixture
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture
def full_data() -> Path:
    path = full_data_dir()
    if path is None:
        pytest.skip("full FER2013 not found: set FER2013_DIR (make test exports the team's copy)")
    return path
