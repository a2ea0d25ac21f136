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
# Where install.sh puts the app on a Pi; edge/configs/edge.toml (the config it installs) names files there.
INSTALLED_ROOT = Path("/opt/fer-edge")


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


def installed_layout_hint(path: str | Path, root: Path = INSTALLED_ROOT) -> str:
    """What to add to "FILE does not exist" when FILE is in the Pi's installed layout and this machine
    has none: the Pi's config (edge/configs/edge.toml) read from a checkout, which the path alone
    does not tell a new user. Empty otherwise (on a Pi the file really is missing)."""
    if not Path(path).is_relative_to(root) or root.exists():
        return ""
    return (f" ({root} is the layout install.sh makes on a Pi, as edge/configs/edge.toml expects; "
            "from a checkout use --config edge/configs/demo.toml, or no --config)")
