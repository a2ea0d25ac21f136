"""docs/experiments.md's table of model generations quotes what each model measured: a retrained or
reshipped model whose row was not updated fails here, so the figures never drift from the models.
A refit has no validation split: its row says "–" there, and so must its card (validation null).
Rows whose model left the tree (git history is its archive, restored with the command on that page)
are not measured; the shipped model's row always is.

Rerunning every generation's evaluation is most of this suite's time, and the earlier generations'
models almost never change, so their measurements are kept between runs (``FER_TEST_CACHE``, by
default ~/.cache/fer-edge/measured; ``off`` reruns all) under a key of everything the figure depends
on: the bytes of the model's folder (its run's config decides a validation split) and of the data
set, train/'s source, the command and the library versions. Any change to one of them measures
again. The shipped model's command always runs."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from tests.conftest import ROOT

ROW = re.compile(r"^\| \d+ `(?P<name>\w+)`[^|]*\|[^|]*\| `(?P<run>[^`]+)` \| (?P<val>[\d.]+|–) \| (?P<test>[\d.]+) \| "
                 r"(?P<f1>[\d.]+) \|$")


PAGE = ROOT / "docs" / "experiments.md"


def _rows() -> list[re.Match[str]]:
    rows = [m for line in PAGE.read_text().splitlines() if (m := ROW.match(line))]
    assert len(rows) >= 3, "docs/experiments.md's table of generations was not found"
    return rows


def _in_tree(row: re.Match[str]) -> bool:
    return _model_and_card(row)[0].is_file()


def _model_and_card(row: re.Match[str]) -> tuple[Path, Path]:
    name = row["name"]
    folder = ROOT / "models" if name == "fer_vgg" else ROOT / row["run"]  # the shipped one sits in models/
    return folder / f"{name}.keras", folder / f"{name}.card.json"


def _cache_dir() -> Path | None:
    setting = os.environ.get("FER_TEST_CACHE", "")
    if setting == "off":
        return None
    if setting:
        return Path(setting)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fer-edge" / "measured"


def _files_digest(files: Iterable[Path], root: Path) -> "hashlib._Hash":
    """Each file's path under ``root`` and its bytes, in name order: a rename or an edit changes it."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest


@functools.cache
def _tree_digest(root: Path) -> str:
    return _files_digest((p for p in root.rglob("*") if p.is_file()), root).hexdigest()


@functools.cache
def _code_and_libraries() -> str:
    import cv2
    import keras
    import numpy
    import tensorflow

    digest = _files_digest((ROOT / "train").rglob("*.py"), ROOT)
    versions = (tensorflow.__version__, keras.__version__, numpy.__version__, cv2.__version__)
    digest.update(repr(versions).encode())
    return digest.hexdigest()


def _measured(model: Path, data: Path, what: str, measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """``measure()``, or what it returned before on byte-identical inputs (see the module docstring)."""
    cache = _cache_dir()
    if cache is None:
        return measure()
    # the model's whole folder, not only its file: the run's config and records beside it decide, among
    # other things, which faces a validation split holds
    beside = _files_digest((p for p in model.parent.iterdir() if p.is_file()), model.parent).hexdigest()
    key = hashlib.sha256("\0".join([model.name, beside, _tree_digest(data), _code_and_libraries(),
                                     what]).encode()).hexdigest()
    entry = cache / f"{key}.json"
    try:
        return json.loads(entry.read_text())
    except (OSError, ValueError):
        pass
    result = measure()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, entry)
    except OSError:  # a read-only home only costs the next run its time
        pass
    return result


def _quoted(row: re.Match[str]) -> tuple[float | None, float, float]:
    val = None if row["val"] == "–" else float(row["val"])
    return val, float(row["test"]), float(row["f1"])


def test_every_generation_row_with_a_card_matches_it() -> None:
    carded = [row for row in _rows() if _model_and_card(row)[1].is_file()]
    assert any(row["name"] == "fer_vgg" for row in carded), "the shipped model's row must have a card"
    assert any(row["name"] == "fer_vgg_v1" and _in_tree(row) for row in _rows()), \
        "the shipped model's teacher, generation 1, must stay in the tree (its card's commands need it)"
    for row in carded:
        card = json.loads(_model_and_card(row)[1].read_text())
        val = None if card["validation"] is None else round(card["validation"]["accuracy"], 4)
        measured = (val, round(card["evaluation"]["accuracy"], 4), round(card["evaluation"]["macro_f1"], 4))
        assert _quoted(row) == measured, f"docs/experiments.md row {row['name']} vs its card"


@pytest.mark.slow
def test_generation_rows_without_a_card_are_what_evaluate_measures(full_data: Path) -> None:
    """Generation 1 predates model cards: its row is checked against `fer-train evaluate` itself."""
    from train.evaluate import evaluate_model

    uncarded = [row for row in _rows() if _in_tree(row) and not _model_and_card(row)[1].is_file()]
    assert uncarded, "generation 1 (no card) must be measured"
    for row in uncarded:
        model = _model_and_card(row)[0]

        def measure(split: str) -> dict[str, float]:
            report = evaluate_model(model, full_data, split)
            return {"accuracy": report.accuracy, "macro_f1": report.macro_f1}

        test = _measured(model, full_data, "evaluate test", lambda: measure("test"))
        val = None if row["val"] == "–" else \
            round(_measured(model, full_data, "evaluate val", lambda: measure("val"))["accuracy"], 4)
        measured = (val, round(test["accuracy"], 4), round(test["macro_f1"], 4))
        assert _quoted(row) == measured, f"docs/experiments.md row {row['name']} vs fer-train evaluate"


@pytest.mark.slow
def test_every_carded_row_is_reproduced_by_its_cards_own_evaluate_command(
        full_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A card promises a command anyone can rerun; rerun it, as written, for every model the table lists."""
    import shlex

    from train.__main__ import main

    monkeypatch.chdir(ROOT)
    carded = [row for row in _rows() if _model_and_card(row)[1].is_file()]
    for row in carded:
        card = json.loads(_model_and_card(row)[1].read_text())
        words = shlex.split(card["commands"]["evaluate"])
        assert words[:2] == ["fer-train", "evaluate"], card["commands"]["evaluate"]
        args = words[1:]
        args[args.index("--data") + 1] = str(full_data)  # the card names where FER2013 was; CI's may differ
        out = tmp_path / row["name"]

        def run() -> dict[str, float]:
            assert main([*args, "--out", str(out)]) == 0, card["commands"]["evaluate"]
            return json.loads((out / "metrics.json").read_text())

        if row["name"] == "fer_vgg":  # the shipped model's figures are measured on every run
            metrics = run()
        else:
            metrics = _measured(_model_and_card(row)[0], full_data, card["commands"]["evaluate"], run)
        measured = (round(metrics["accuracy"], 4), round(metrics["macro_f1"], 4))
        assert measured == (round(card["evaluation"]["accuracy"], 4), round(card["evaluation"]["macro_f1"], 4)), \
            f"{card['commands']['evaluate']} no longer gives {row['name']}'s card figures"
