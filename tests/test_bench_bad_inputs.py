"""Bad or unusual inputs to fer-bench's subcommands: a one-line error and exit code 2 before anything is
measured, never a traceback, and nothing already written (results, README, a folder) is lost.

Nothing here measures: every test that reaches the timing code on a bad input would fail on purpose.
"""

from __future__ import annotations

import csv
import errno
import json
import shutil
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from tests.conftest import MODELS, ROOT, SAMPLE

FULL_RUN = sorted((ROOT / "benchmarks" / "results").glob("*/results.json"))[0]
REFERENCE = ROOT / "benchmarks" / "reference" / "x86_64.csv"


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("fer-bench") and ": error: " in err and "\n" not in err, err
    return err


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """A usage error, one line as for every fer-* tool (edge.cli.ArgumentParser); exit code 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fer-bench") and ": error: argument " in err and "\n" not in err, err
    return err


@pytest.fixture
def no_measuring(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything that would time a model, a pipeline or a soak fails the test instead."""
    import benchmarks.model_latency
    import benchmarks.soak

    def measured(*_: object, **__: object) -> None:
        raise AssertionError("measured on a bad input")

    monkeypatch.setattr(benchmarks.model_latency, "measure_models", measured)
    monkeypatch.setattr(benchmarks.soak, "run_soak", measured)


def _manifest(folder: Path, **changes: object) -> Path:
    """The shipped manifest with its int8 file beside it (so it checks out), some fields changed."""
    folder.mkdir(parents=True, exist_ok=True)
    data = json.loads((MODELS / "manifest.json").read_text())
    data.update(changes)
    (folder / "manifest.json").write_text(json.dumps(data))
    shutil.copy(MODELS / data["artifacts"]["int8"]["path"], folder)
    return folder / "manifest.json"


def _run(manifest: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--manifest", str(manifest), "--artifacts", "int8", "--data", str(SAMPLE), "--quick",
            "--frames", "3", "--threads", "1", "--batch", "1", "--no-peer", "--out", str(out), *extra]


@pytest.mark.parametrize("extra, option", [
    (["--threads", "100000"], "--threads"),  # one OS thread each: 16 GB and a load average of 1,500
    (["--batch", "100000000"], "--batch"),
    (["--min-time", "nan"], "--min-time"),  # was accepted and written into results.json as NaN
    (["--min-time", "inf"], "--min-time"),  # never stops
])
def test_absurd_counts_and_durations_are_usage_errors(extra: list[str], option: str, tmp_path: Path,
                                                      no_measuring: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert option in _usage_error(_run(MODELS / "manifest.json", tmp_path / "out", *extra), capsys)


def test_a_soak_with_absurd_threads_is_a_usage_error(tmp_path: Path, no_measuring: None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["soak", "--frames", "2", "--threads", "100000", "--out", str(tmp_path / "out")]
    assert "--threads" in _usage_error(argv, capsys)


def test_no_artifact_to_measure_fails_before_timing(tmp_path: Path, no_measuring: None,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """'--artifacts ,' named none; the run timed nothing and then raised an IndexError writing results."""
    argv = _run(MODELS / "manifest.json", tmp_path / "out")
    argv[argv.index("--artifacts") + 1] = ","
    assert "no artifact to measure" in _one_line_error(argv, capsys)


@pytest.mark.parametrize("source", ["a string", {"path": 5}, {"path": "m.keras", "parameters": "many"}])
def test_a_malformed_source_model_fails_before_timing(source: object, tmp_path: Path, no_measuring: None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """It was read after every timing (Keras reference, report): an AttributeError lost the whole run."""
    bad = _manifest(tmp_path / "bad", source_model=source)
    assert "'source_model'" in _one_line_error(_run(bad, tmp_path / "out"), capsys)
    err = _one_line_error(_run(MODELS / "manifest.json", tmp_path / "out", "--also", str(bad)), capsys)
    assert "--also" in err and "'source_model'" in err


def test_a_malformed_data_loading_is_one_line(tmp_path: Path, no_measuring: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = _manifest(tmp_path / "bad", data_loading={"csv_columns": {"no_such_column": "x"}})
    assert "'data_loading' is malformed" in _one_line_error(_run(bad, tmp_path / "out"), capsys)


@pytest.mark.parametrize("data, split", [("empty", "test"), ("unknown", "test"), ("sample", "no-such-split")])
def test_data_that_loads_no_faces_fails_before_timing(data: str, split: str, tmp_path: Path, no_measuring: None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """It was a note at the end of the report and exit code 0: the user never saw it."""
    folders = {"empty": tmp_path / "empty", "unknown": tmp_path / "unknown", "sample": SAMPLE}
    (tmp_path / "empty").mkdir()
    (tmp_path / "unknown" / "test" / "cats").mkdir(parents=True)
    shutil.copy(next((SAMPLE / "test" / "happy").iterdir()), tmp_path / "unknown" / "test" / "cats" / "a.jpg")
    argv = _run(MODELS / "manifest.json", tmp_path / "out")
    argv[argv.index("--data") + 1] = str(folders[data])
    assert "accuracy data: " in _one_line_error([*argv, "--split", split], capsys)
    assert not (tmp_path / "out").exists()


def test_an_unreadable_results_json_in_out_needs_force(tmp_path: Path, no_measuring: None,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A torn results.json may be a full run's, whose report.md is still whole: a quick run replaced it."""
    out = tmp_path / "full"
    out.mkdir()
    (out / "results.json").write_text(FULL_RUN.read_text()[:2000])
    (out / "report.md").write_text("a full run's report\n")
    assert "--force" in _one_line_error(_run(MODELS / "manifest.json", out), capsys)
    assert (out / "report.md").read_text() == "a full run's report\n"


def _incomplete(folder: Path, **changes: object) -> Path:
    """A full run's results.json with fields changed ("DELETE" removes one)."""
    data = json.loads(FULL_RUN.read_text())
    data.update(changes)
    for key in [k for k, v in changes.items() if v == "DELETE"]:
        del data[key]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize("command", ["report", "compare", "readme", "reference"])
@pytest.mark.parametrize("changes", [{"system": "DELETE"}, {"config": []}, {"pipeline": None},
                                     {"model_latency": {"rows": [{"artifact": "int8"}]}}], ids=str)
def test_a_results_json_with_missing_or_retyped_fields_is_one_line(
        command: str, changes: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _incomplete(tmp_path / "run", **changes)
    before = (folder / "results.json").read_bytes()
    extra = {"compare": ["--reference", str(REFERENCE)], "reference": ["--out", str(tmp_path / "ref.csv")]}
    assert "is not a complete fer-bench results.json" in _one_line_error([command, str(folder),
                                                                          *extra.get(command, [])], capsys)
    assert (folder / "results.json").read_bytes() == before and not (folder / "report.md").exists()


def test_a_soak_into_a_results_json_that_cannot_render_fails_before_soaking(
        tmp_path: Path, no_measuring: None, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = json.loads((MODELS / "manifest.json").read_text())
    folder = _incomplete(tmp_path / "run", system="DELETE",
                         manifest={"artifacts": {"int8": {"sha256": manifest["artifacts"]["int8"]["sha256"]}}})
    argv = ["soak", "--frames", "2", "--out", str(folder)]
    assert "is not a complete fer-bench results.json" in _one_line_error(argv, capsys)


def _reference_copy(path: Path, p50: str) -> Path:
    rows = list(csv.DictReader(REFERENCE.open()))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "p50_ms": p50} for row in rows)
    return path


def test_a_reference_csv_with_bad_cells_or_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for cell in ("abc", "nan"):
        assert main(["compare", str(FULL_RUN), "--reference", str(_reference_copy(tmp_path / "r.csv", cell))]) == 0
        table = capsys.readouterr().out
        assert "| model | int8 |" in table and "nan" not in table
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00 not text")
    assert "not UTF-8" in _one_line_error(["compare", str(FULL_RUN), "--reference", str(binary)], capsys)


def test_a_reference_out_that_cannot_be_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out in (tmp_path, a_file / "x86_64.csv"):
        _one_line_error(["reference", str(FULL_RUN), "--out", str(out)], capsys)
    assert a_file.read_text() == "x"


def test_a_readme_update_that_fails_midway_leaves_the_readme_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    original = "# mine\n\n<!-- fer-bench:start -->\nold\n<!-- fer-bench:end -->\n\nthe rest of my README\n"
    readme.write_text(original)
    write_text = Path.write_text

    def disk_full(self: Path, text: str, *args: object, **kwargs: object) -> int:
        write_text(self, text[: len(text) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    assert "No space left" in _one_line_error(["readme", str(FULL_RUN), "--update", str(readme)], capsys)
    monkeypatch.undo()
    assert readme.read_text() == original
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]


def test_setup_peer_never_empties_a_folder_it_did_not_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m venv --clear` empties the folder first: --venv .venv or ~/work lost everything in it."""
    import benchmarks.peer

    calls: list[list[str]] = []
    monkeypatch.setattr(benchmarks.peer.subprocess, "run", lambda step, **_: calls.append(step))
    mine = tmp_path / "work"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    assert "would be emptied" in _one_line_error(["setup-peer", "--venv", str(mine)], capsys)
    assert calls == [] and (mine / "thesis.txt").read_text() == "years of work"


def test_only_a_missing_train_package_leaves_accuracy_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """An edge-only install has no labelled-face loader: that alone becomes a note in the report."""
    import sys

    from benchmarks.accuracy import load_faces
    from benchmarks.errors import BenchError, FacesUnavailable
    from train.labels import FER2013_LABELS

    with pytest.raises(BenchError) as caught:
        load_faces(SAMPLE, "bogus", FER2013_LABELS)
    assert not isinstance(caught.value, FacesUnavailable)  # train is importable: the data is the user's to fix
    monkeypatch.setitem(sys.modules, "train.data", None)  # as if train were not installed
    with pytest.raises(FacesUnavailable, match="not importable"):
        load_faces(SAMPLE, "test", FER2013_LABELS)


def test_labels_train_cannot_score_are_a_bench_error() -> None:
    """A one-class manifest loads on the edge, but train needs two classes to score it: one line."""
    from benchmarks.accuracy import load_faces
    from benchmarks.errors import BenchError

    with pytest.raises(BenchError, match="accuracy data: .*at least 2 classes"):
        load_faces(SAMPLE, "test", ("happy",))
