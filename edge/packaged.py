"""The defaults that ship inside the package: the int8 model, its manifest, the Haar cascade and BlazeFace.

A wheel carries them as ``edge/models/`` (pyproject.toml maps the repository's ``models/`` there),
so an installed ``fer-edge`` finds them through ``importlib.resources`` wherever it was installed.
A source checkout (``pip install -e`` or ``PYTHONPATH``) has no ``edge/models/``: there the
repository's own ``models/`` beside the ``edge`` package is the same set of files.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

MANIFEST = "manifest.json"
CASCADE = "haarcascade_frontalface_default.xml"
BLAZEFACE = "blazeface/face_detection_back.tflite"  # [detector] kind = "blazeface"; its .sha256 beside it


def models_dir() -> Path:
    """The folder holding the shipped defaults for this copy of ``edge``."""
    package = Path(str(resources.files("edge")))
    installed = package / "models"
    return installed if installed.is_dir() else package.parent / "models"


def shipped_manifest() -> Path:
    return models_dir() / MANIFEST


def shipped_cascade() -> Path:
    return models_dir() / CASCADE


def shipped_blazeface() -> Path:
    return models_dir() / BLAZEFACE
