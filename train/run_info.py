"""What a trained model needs to be scored again: its labels and how its data was loaded.

The run's ``dataset.json`` travels with the model (beside it in the run directory, or as
``<name>.dataset.json`` after ``fer-train ship``), the same files ``fer-convert`` reads its
labels from. Reading it here lets ``fer-train evaluate`` score a 3-class model on the same
held-out images it was tested on, with no options.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from train.config import DataConfig
from train.errors import DataError, TrainError


def run_file(model_path: Path, name: str) -> Path | None:
    """A run's ``name`` (dataset.json, config.toml) beside the model in its run directory, else the
    ``<stem>.<name>`` copy that ``fer-train ship`` writes beside a shipped model."""
    model_path = Path(model_path)
    for candidate in (model_path.parent / name, model_path.with_suffix(f".{name}")):
        if candidate.is_file():
            return candidate
    return None


def dataset_info_path(model_path: Path) -> Path | None:
    return run_file(model_path, "dataset.json")


def read_dataset_info(model_path: Path) -> dict[str, Any]:
    path = dataset_info_path(model_path)
    return {} if path is None else read_dataset_record(path)


def read_dataset_record(path: Path) -> dict[str, Any]:
    """A dataset.json, whose ``labels`` every reader (evaluate, ship, combine, convert) takes as the
    model's output order. Users can edit it, so labels that are not a list of distinct names are an
    error naming the file here, not a wrong class count or a one-letter class further on."""
    try:
        info = json.loads(Path(path).read_text())
    except OSError as exc:
        raise TrainError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise TrainError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(info, dict):
        return {}
    labels = info.get("labels")
    if labels is not None and not (isinstance(labels, list) and labels and len(set(labels)) == len(labels)
                                   and all(isinstance(label, str) and label.strip() for label in labels)):
        raise DataError(f"{path}: 'labels' must be a list of distinct class names in output order, "
                        f"got {json.dumps(labels)[:80]}")
    return info


def load_options(data: DataConfig) -> dict[str, Any]:
    """``load_dataset`` keyword arguments for a data config (everything but path, split and labels)."""
    from train.csv_data import CsvColumns

    return {"test_fraction": data.test_fraction, "crop_faces": data.crop_faces, "no_face": data.no_face,
            "csv_columns": CsvColumns(data.csv_label_column, data.csv_pixels_column, data.csv_path_column,
                                      data.csv_split_column)}


def manifest_options(manifest_info: dict[str, Any]) -> dict[str, Any]:
    """``load_options`` from a manifest's ``data_loading`` (what fer-convert copied from the run)."""
    return _options(manifest_info.get("data_loading"), "the manifest's 'data_loading'")


def recorded_options(info: dict[str, Any], where: str = "the run's dataset.json") -> dict[str, Any]:
    """``load_options`` as recorded in a dataset.json (older runs record none: the defaults apply)."""
    return _options(info.get("load_options"), f"{where}: 'load_options'")


def _options(recorded: Any, what: str) -> dict[str, Any]:
    """fer-train evaluate, fer-convert and fer-bench all read these records, which users can edit:
    an unknown column key is a DataError naming the record, not a TypeError from CsvColumns."""
    if not isinstance(recorded, dict):
        return {}
    from train.csv_data import CsvColumns

    options = {k: recorded[k] for k in ("test_fraction", "crop_faces", "no_face") if k in recorded}
    if isinstance(recorded.get("csv_columns"), dict):
        try:
            options["csv_columns"] = CsvColumns(**recorded["csv_columns"])
        except TypeError as exc:
            raise DataError(f"{what} is malformed ({exc})") from None
    return options


def recorded_data(model_path: Path) -> Path | None:
    """The data the model's run trained on (``data.dir`` of its config.toml), when it is still there: what
    fer-train recalibrate re-draws from when not told. (fer-convert does not ask: convert.data says why.)"""
    import tomllib

    config_path = run_file(model_path, "config.toml")
    if config_path is None:
        return None
    try:
        data = tomllib.loads(config_path.read_text()).get("data", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None  # the commands that need this record report it; here it only offers a default
    folder = data.get("dir") if isinstance(data, dict) else None
    if not isinstance(folder, str) or not folder.strip():
        return None
    path = Path(folder).expanduser()
    return path if path.exists() else None
