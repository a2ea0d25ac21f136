"""Which faces fer-convert calibrates and verifies on: ``--data`` (or the narrower ``--calibration-data`` and
``--verify-data``), else ``FER2013_DIR``, else ``./data/fer2013/``, else, in a checkout, the bundled sample.

The data the model's run recorded is not a default. A record names FER2013 by name (``fer2013/train``)
or by a path relative to wherever the run was started; read as a folder of the working directory, it
picked up whatever happened to sit there, silently. Every conversion says which data it used and why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from convert.errors import ConvertError

log = logging.getLogger("fer-convert")
SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "fer2013_sample"  # only in a checkout
SAMPLE_SOURCE = "the bundled sample"


@dataclass(frozen=True)
class DataChoice:
    path: Path
    how: str  # the option, FER2013_DIR, ./data/fer2013/ or the bundled sample: what the output names

    @property
    def is_sample(self) -> bool:
        return self.how == SAMPLE_SOURCE


def choose_data(explicit: str | Path | None, option: str = "--data") -> DataChoice:
    """``explicit`` (given as ``option``), else FER2013 where a user keeps it, else the bundled sample with
    one line saying so; outside a checkout, with no data anywhere, a ConvertError saying where FER2013 is."""
    from train.data_location import LOCAL, WHERE_FROM, locate_fer2013

    found = locate_fer2013(explicit, option=option)
    if found is not None:
        return DataChoice(*found)
    if SAMPLE.is_dir():
        log.warning("FER2013 not found (no --data, FER2013_DIR or ./%s/): using the bundled sample of %d training "
                    "and %d test faces, enough to show the conversion works, too few for int8 calibration "
                    "or figures to mean anything", LOCAL, _count(SAMPLE / "train"), _count(SAMPLE / "test"))
        return DataChoice(SAMPLE, SAMPLE_SOURCE)
    raise ConvertError(WHERE_FROM)


def _count(folder: Path) -> int:
    return sum(1 for path in folder.rglob("*") if path.is_file())


def conversion_data(data: str | None, calibration: str | None, verification: str | None,
                    calibrates: bool) -> tuple[DataChoice | None, DataChoice]:
    """Calibration data (None when no int8 format needs it) and verification data. ``--data`` serves both;
    ``--calibration-data`` and ``--verify-data`` override it for one. Looked up once, so a fallback to the
    sample is one line, not one per use."""
    shared = None
    if (calibrates and not calibration) or not verification:
        shared = choose_data(data)
    calibrating = None
    if calibrates:
        calibrating = DataChoice(Path(calibration), "--calibration-data") if calibration else shared
    verifying = DataChoice(Path(verification), "--verify-data") if verification else shared
    assert verifying is not None
    return calibrating, verifying
