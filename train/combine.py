"""Several trained models as one ``.keras`` model that averages their probabilities.

An ensemble only helps the edge if it travels as one artifact: one manifest, one int8 file, one
forward pass per face, nothing in the runtime that knows there are members. Averaging inside the
graph gives exactly what ``fer-train evaluate a.keras,b.keras`` scores, so the choice made on
validation is the model that ships.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train.errors import TrainError


@dataclass(frozen=True)
class Combined:
    path: Path
    members: int
    parameters: int
    same_validation: bool  # every member held out the same faces, so --split val scores the whole


def combine_models(spec: str, out: Path) -> Combined:
    """Write the members named in ``spec`` (comma-separated .keras files) as one averaging model at ``out``.

    Beside it go ``<stem>.dataset.json`` (labels and loading, from the first member) and, when every
    member held out the same validation faces, ``<stem>.config.toml``, so evaluate and convert treat
    it like any shipped model. Refuses to overwrite: a model already written is never lost.
    """
    from train.keras_io import load_keras_model, teacher_paths
    from train.run_info import read_dataset_info, run_file

    out = Path(out)
    paths = teacher_paths(spec)
    if len(paths) < 2:
        raise TrainError(f"combine needs at least two models separated by commas, got {spec!r}")
    if out.suffix != ".keras":
        raise TrainError(f"{out}: the combined model must be a .keras file")
    for path in (out, out.with_name(f"{out.stem}.dataset.json"), out.with_name(f"{out.stem}.config.toml")):
        if path.exists():  # its sidecars too: another model's record beside it would be replaced
            raise TrainError(f"{path} already exists; choose a new file")
    members = [load_keras_model(path) for path in paths]
    infos = [read_dataset_info(path) for path in paths]
    for path, member, info in zip(paths[1:], members[1:], infos[1:]):
        if member.input_shape[1:] != members[0].input_shape[1:]:
            raise TrainError(f"{path} takes {member.input_shape[1:]} but {paths[0]} takes {members[0].input_shape[1:]}")
        if member.output_shape[-1] != members[0].output_shape[-1]:
            raise TrainError(f"{path} has {member.output_shape[-1]} outputs but {paths[0]} has "
                             f"{members[0].output_shape[-1]}")
        if info.get("labels") and infos[0].get("labels") and info["labels"] != infos[0]["labels"]:
            raise TrainError(f"{path} was trained on labels {info['labels']}, {paths[0]} on {infos[0]['labels']}")
    model = _averaging_model(members)
    fingerprints = {info.get("val_fingerprint") for info in infos}
    same_validation = len(fingerprints) == 1 and None not in fingerprints
    config = run_file(paths[0], "config.toml")

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".combine-", dir=out.parent))
    try:
        model.save(stage / out.name)
        dataset = run_file(paths[0], "dataset.json")
        if dataset is not None:
            shutil.copyfile(dataset, stage / f"{out.stem}.dataset.json")
        if same_validation and config is not None:
            shutil.copyfile(config, stage / f"{out.stem}.config.toml")
        for item in sorted(stage.iterdir(), key=lambda p: p.suffix == ".keras"):  # the model last
            os.replace(item, out.parent / item.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return Combined(out, len(members), int(model.count_params()), same_validation)


def _averaging_model(members: list[Any]) -> Any:
    import keras

    inputs = keras.Input(members[0].input_shape[1:], name="pixels")
    outputs = []
    for index, member in enumerate(members, start=1):
        config = member.get_config()
        config["name"] = f"member{index}"  # nested models need distinct names
        renamed = member.__class__.from_config(config)
        renamed.set_weights(member.get_weights())
        outputs.append(renamed(inputs))
    probs = keras.layers.Average(name="probs")(outputs)
    return keras.Model(inputs, probs, name=f"ensemble_of_{len(members)}")
