"""The run records kept in models/checkpoints/ agree with each other, and a run committed while it is
still training can be resumed, as docs/experiments.md promises.

Experiment checkpoints have left the tree; what stays is the shipped model's teachers with their runs'
records. A run may still be committed between sessions while it trains (its latest ``last.keras``), so
the files must describe one and the same epoch: a ``last.keras`` copied a moment after ``state.json``
would resume from the wrong place and its history would no longer match. The optimizer's step counter
inside ``last.keras`` says which epoch the checkpoint really ends, without loading the model.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import pytest

from train.config import load_config
from train.training import read_history

CHECKPOINTS = Path(__file__).resolve().parent.parent / "models" / "checkpoints"
RUNS = sorted(p for p in CHECKPOINTS.iterdir() if (p / "state.json").exists())
RESUMABLE = [run for run in RUNS if (run / "last.keras").exists()]


def _optimizer_steps(checkpoint: Path) -> int:
    h5py = pytest.importorskip("h5py")
    with zipfile.ZipFile(checkpoint) as archive:
        weights = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(weights, "r") as h5:
        return int(h5["optimizer/vars/0"][()])  # Keras 3 keeps the optimizer's iterations first


def _model_name(checkpoint: Path) -> str:
    with zipfile.ZipFile(checkpoint) as archive:
        return json.loads(archive.read("config.json"))["config"]["name"]


def test_the_shipped_models_teacher_keeps_its_run_records() -> None:
    """Generation 1's validation figure needs its run's config (which faces the split holds), and a card
    that names it as a teacher needs its state.json (the commands that retrace it)."""
    assert CHECKPOINTS / "shipped" in RUNS


@pytest.mark.parametrize("run", RUNS, ids=lambda run: run.name)
def test_history_state_and_config_agree(run: Path) -> None:
    state = json.loads((run / "state.json").read_text())
    epochs = [int(row["epoch"]) for row in read_history(run / "history.csv")]
    assert epochs == list(range(1, state["epochs_done"] + 1))
    assert state["epochs_done"] <= state["total_epochs"]
    assert state["schedule"][0]["from_epoch"] == 1
    load_config(run / "config.toml")  # a key that no longer exists would stop the resume


@pytest.mark.parametrize("run", RESUMABLE, ids=lambda run: run.name)
def test_last_checkpoint_ends_the_epoch_state_json_records(run: Path) -> None:
    state = json.loads((run / "state.json").read_text())
    config = load_config(run / "config.toml")
    dataset = json.loads((run / "dataset.json").read_text())
    steps_per_epoch = math.ceil(dataset["train_images"] / config.train.batch_size)
    assert _optimizer_steps(run / "last.keras") == state["epochs_done"] * steps_per_epoch
    expected = {"resnet": "fer_resnet", "vgg": "fer_vgg"}.get(config.model.arch)
    if expected is not None:
        assert _model_name(run / "last.keras") == expected
