"""Training on FER+ votes (train.ferplus): the majority rule, the targets, a run on the bundled sample
end to end with resume, distillation, weight averaging and mixup, and every bad votes file."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from train.__main__ import main
from train.config import load_config
from train.errors import DataError
from train.ferplus import COLUMNS, NOT_A_FACE, UNCLEAR, agreement, label_targets, majority, read_votes

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_VOTES = ROOT / "tests" / "data" / "ferplus_sample"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _row(**votes: int) -> list[int]:
    return [votes.get(column, 0) for column in COLUMNS]


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fer-train: error:") and "\n" not in err, err
    return err


def _base(sample_dir: Path, votes: Path, out: Path, *extra: str) -> list[str]:
    return ["--arch", "tiny", "--data", str(sample_dir), "--votes", str(votes), "--out", str(out),
            "--set", "data.val_fraction=0.2", "--set", "train.warmup_epochs=0", "--set", "train.batch_size=32",
            "--set", "train.precision=float32", *extra]


def _rewrite(source: Path, target: Path, change: dict[str, list[str]]) -> Path:
    """A copy of a votes file with the rows of the named images replaced (an empty list drops the row)."""
    rows = list(csv.reader(source.open(newline="")))
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(rows[0])
        for row in rows[1:]:
            if row[0] in change:
                if change[row[0]]:
                    writer.writerow(change[row[0]])
            else:
                writer.writerow(row)
    return target


# --- the rule and the targets ------------------------------------------------------------------


def test_majority_drops_single_votes_and_needs_more_than_half_of_the_rest() -> None:
    counts = np.array([
        _row(happiness=6, neutral=4),                          # plain majority
        _row(anger=4, sadness=3, neutral=1, fear=1, disgust=1),  # singles dropped: 4 of 7 is a majority
        _row(anger=4, sadness=4, neutral=2),                   # 4 of 10: no majority
        _row(NF=10),                                           # not a face
        _row(unknown=6, neutral=4),                            # most could not tell
    ])
    winners = majority(counts)
    assert list(winners) == [COLUMNS.index("happiness"), COLUMNS.index("anger"), UNCLEAR, NOT_A_FACE,
                             COLUMNS.index("unknown")]


def test_agreement_leaves_out_unclear_rows_and_the_share_counts_every_annotator() -> None:
    counts = np.array([_row(happiness=6, neutral=4), _row(anger=4, sadness=4, neutral=2), _row(contempt=7, neutral=3),
                       _row(neutral=9, sadness=1)])
    predicted = np.array([LABELS.index("neutral"), LABELS.index("sad"), LABELS.index("neutral"),
                          LABELS.index("neutral")])
    figures = agreement(predicted, counts, LABELS)
    assert figures["agreement_images"] == 2  # the tie and contempt are left out
    assert figures["agreement"] == pytest.approx(0.5)  # wrong on happy, right on neutral
    assert figures["annotator_share"] == pytest.approx((0.4 + 0.4 + 0.3 + 0.9) / 4)


def test_the_mix_moves_targets_from_the_label_to_the_votes() -> None:
    counts = np.array([_row(happiness=6, neutral=2, contempt=2)])
    target = np.array([LABELS.index("sad")])
    label = label_targets(target, counts, LABELS, 0.0)
    votes = label_targets(target, counts, LABELS, 1.0)
    even = label_targets(target, counts, LABELS, 0.5)
    np.testing.assert_allclose(label[0], np.eye(7)[LABELS.index("sad")])
    np.testing.assert_allclose(votes[0, [LABELS.index("happy"), LABELS.index("neutral")]], [0.75, 0.25])
    np.testing.assert_allclose(even, (label + votes) / 2, atol=1e-7)
    np.testing.assert_allclose(even.sum(axis=1), 1.0, atol=1e-6)


def test_the_bundled_votes_cover_the_bundled_sample(sample_dir: Path) -> None:
    from train.data import load_dataset

    for split in ("train", "test"):
        data = load_dataset(sample_dir, split).with_votes(SAMPLE_VOTES / f"{split}.csv")
        assert data.votes is not None and data.votes.shape == (len(data), len(COLUMNS))
        assert data.info["votes"]["sha256"] == read_votes(SAMPLE_VOTES / f"{split}.csv").sha256


# --- training end to end -----------------------------------------------------------------------


def test_votes_train_end_to_end_leave_non_faces_out_and_resume(sample_dir: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from train.training import prepare_data

    # three training images made not-a-face by their votes; those in the run's training part leave it
    source = SAMPLE_VOTES / "train.csv"
    names = [row[0] for row in list(csv.reader(source.open()))[1:]][::30][:3]
    votes = _rewrite(source, tmp_path / "votes.csv", {name: [name] + ["0"] * 9 + ["10"] for name in names})
    config = load_config(None, ["model.arch=tiny", f"data.dir={sample_dir}", f"data.votes={votes}",
                                "data.val_fraction=0.2"])
    train_part, val_part = prepare_data(config)
    expected = sum(name not in (val_part.names or ()) for name in names)
    assert expected > 0

    run = tmp_path / "run"
    assert main(_base(sample_dir, votes, run, "--votes-mix", "0.5", "--epochs", "2", "--stop-after", "1")) == 0
    out = capsys.readouterr().out
    assert f"{expected} training images FER+ calls not a face left out" in out
    info = json.loads((run / "dataset.json").read_text())
    assert info["votes"]["not_a_face_left_out"] == expected
    assert info["votes"]["sha256"] == read_votes(votes).sha256
    assert info["train_images"] == len(train_part)
    assert not set(names) & set(train_part.names or ())
    history = (run / "history.csv").read_text().splitlines()
    assert "val_ferplus_agreement" in history[0] and len(history) == 2

    # the votes file may move, but not change
    moved = shutil.copy(votes, tmp_path / "moved.csv")
    assert main(_base(sample_dir, Path(moved), run, "--resume")) == 0
    assert len((run / "history.csv").read_text().splitlines()) == 3
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 2
    changed = _rewrite(source, tmp_path / "changed.csv", {})
    err = _one_line_error(_base(sample_dir, changed, run, "--resume", "--epochs", "3"), capsys)
    assert "votes file" in err and "differs" in err
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 2  # nothing lost


def test_votes_work_with_fixed_teachers_weight_averaging_and_recalibration(sample_dir: Path, tmp_path: Path) -> None:
    import keras

    from train.config import ModelConfig
    from train.models import build_model

    keras.utils.set_random_seed(3)
    teacher = tmp_path / "teacher.keras"
    build_model(ModelConfig(arch="tiny"), 7).save(teacher)
    run = tmp_path / "run"
    argv = _base(sample_dir, SAMPLE_VOTES / "train.csv", run, "--votes-mix", "1", "--epochs", "2",
                 "--set", f"train.teacher={teacher}", "--set", "train.teacher_views=2", "--set", "train.swa=true",
                 "--set", "train.schedule=constant", "--set", "train.recalibrate_bn=true")
    assert main(argv) == 0
    assert (run / "teacher.npz").is_file() and (run / "swa.keras").is_file()
    assert json.loads((run / "state.json").read_text())["swa"]["epochs_averaged"] == 2


def test_votes_work_with_consistent_teachers_and_mixup(sample_dir: Path, tmp_path: Path) -> None:
    import keras

    from train.config import ModelConfig
    from train.models import build_model

    keras.utils.set_random_seed(4)
    teacher = tmp_path / "teacher.keras"
    build_model(ModelConfig(arch="tiny"), 7).save(teacher)
    argv = _base(sample_dir, SAMPLE_VOTES / "train.csv", tmp_path / "run", "--epochs", "1",
                 "--set", f"train.teacher={teacher}", "--set", "train.teacher_mode=consistent",
                 "--set", "train.teacher_views=1", "--set", "augment.mixup=0.4")
    assert main(argv) == 0


def test_the_mixed_targets_are_what_the_model_learns_from(sample_dir: Path) -> None:
    """votes_mix = 0 with votes gives the one-hot labels back: only the non-faces differ."""
    from train.training import prepare_data, soft_targets

    plain = load_config(None, ["model.arch=tiny", f"data.dir={sample_dir}",
                               f"data.votes={SAMPLE_VOTES / 'train.csv'}", "train.votes_mix=0"])
    assert not soft_targets(plain)
    mixed = load_config(None, ["model.arch=tiny", f"data.dir={sample_dir}",
                               f"data.votes={SAMPLE_VOTES / 'train.csv'}", "train.votes_mix=0.3"])
    assert soft_targets(mixed)
    train_part, _ = prepare_data(mixed)
    assert train_part.votes is not None
    targets = label_targets(train_part.targets, train_part.votes, train_part.labels, 0.3)
    assert (targets.argmax(axis=1) == train_part.targets).mean() > 0.5
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)


# --- bad votes files ---------------------------------------------------------------------------


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    source = SAMPLE_VOTES / "train.csv"
    rows = list(csv.reader(source.open(newline="")))
    first = rows[1][0]
    cases: dict[str, tuple[Path, str]] = {}
    cases["missing"] = (tmp_path / "absent.csv", "does not exist")
    wrong = tmp_path / "columns.csv"
    wrong.write_text("file,neutral,happy\n" + "\n".join(",".join(r[:3]) for r in rows[1:]) + "\n")
    cases["columns"] = (wrong, "row 1: expected columns")
    cases["unknown image"] = (_rewrite(source, tmp_path / "unknown.csv",
                                       {first: ["train/angry/nobody.jpg"] + rows[1][1:]}), "row 2: unknown image")
    cases["no votes"] = (_rewrite(source, tmp_path / "short.csv", {first: []}), f"no row for image {first}")
    cases["sum"] = (_rewrite(source, tmp_path / "sum.csv", {first: [first, "5"] + ["1"] * 9}), "row 2: votes add up to 14")
    cases["negative"] = (_rewrite(source, tmp_path / "negative.csv", {first: [first, "-1", "11"] + ["0"] * 8}),
                         "row 2: votes add up to 10")
    cases["text"] = (_rewrite(source, tmp_path / "text.csv", {first: [first, "many"] + ["1"] * 9}),
                     "row 2: votes must be whole numbers")
    cases["fields"] = (_rewrite(source, tmp_path / "fields.csv", {first: [first, "10"]}), "row 2: expected 11 fields")
    duplicate = tmp_path / "duplicate.csv"
    duplicate.write_text(source.read_text() + ",".join(rows[1]) + "\n")
    cases["duplicate"] = (duplicate, f"row {len(rows) + 1}: image {first} already has votes in row 2")
    return cases


@pytest.mark.parametrize("case", ["missing", "columns", "unknown image", "no votes", "sum", "negative", "text",
                                  "fields", "duplicate"])
def test_a_bad_votes_file_is_one_line_naming_file_and_row(case: str, sample_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path, message = _bad_files(tmp_path)[case]
    run = tmp_path / "run"
    err = _one_line_error(_base(sample_dir, path, run, "--epochs", "1"), capsys)
    assert str(path) in err and message in err, err
    assert not (run / "last.keras").exists()


def test_votes_need_fer2013_labels_and_files_to_match(sample_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error(_base(sample_dir, SAMPLE_VOTES / "train.csv", tmp_path / "a", "--labels", "auto"), capsys)
    assert "data.votes" in err
    err = _one_line_error(_base(sample_dir, SAMPLE_VOTES / "train.csv", tmp_path / "b", "--votes-mix", "1.5"), capsys)
    assert "train.votes_mix" in err
    with pytest.raises(DataError, match="no image file names"):
        from train.data import Dataset

        Dataset(np.zeros((1, 48, 48), np.uint8), np.zeros(1, np.int64), LABELS, "x.csv").with_votes(
            SAMPLE_VOTES / "train.csv")
