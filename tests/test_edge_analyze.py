"""``fer-edge analyze`` on the bundled demo clip: every output, what they say, and bad input.

The clip is 120 frames of real FER2013 faces (models/demo/demo_clip.mp4); its sidecar says which
face is where, so the tables can be checked against what is really in the video.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.__main__ import main
from edge.analysis.chart import Timeline, render_timeline
from edge.analysis.palette import colour
from edge.analysis.progress import Progress
from tests.edge_helpers import MANIFEST, ROOT

CLIP = ROOT / "models" / "demo" / "demo_clip.mp4"
pytestmark = pytest.mark.skipif(not (MANIFEST.is_file() and CLIP.is_file()),
                                reason="shipped model or demo clip missing")


def run(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["analyze", *args, "--quiet"])
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def run_cli(*args: str) -> tuple[int, str, str]:
    """As a user runs it, in its own process: FFmpeg reads its log level once per process, so only
    a fresh one shows whether a damaged file prints anything beside our one line."""
    done = subprocess.run([sys.executable, "-m", "edge", "analyze", *args, "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("analysis")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["analyze", str(CLIP), "--out", str(out), "--quiet"]) == 0
    return out, buffer.getvalue()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_frames_csv_has_a_row_per_face_with_time_box_label_and_every_probability(analysed: tuple[Path, str]) -> None:
    out, _ = analysed
    rows = read_csv(out / "frames.csv")
    labels = json.loads(MANIFEST.read_text())["labels"]
    assert list(rows[0]) == ["time_s", "frame", "track_id", "x", "y", "w", "h", "label", "score",
                             *(f"p_{label}" for label in labels)]
    sidecar = json.loads((CLIP.parent / "demo_clip.mp4.json").read_text())
    truth = sum(len(entry["faces"]) for entry in sidecar["ground_truth"])
    assert 0.8 * truth <= len(rows) <= truth  # Haar misses a few; it must not invent faces on a plain room
    for row in rows:
        probs = {label: float(row[f"p_{label}"]) for label in labels}
        assert abs(sum(probs.values()) - 1) < 0.02
        assert row["label"] == max(probs, key=probs.get)
        assert float(row["time_s"]) == pytest.approx(int(row["frame"]) / 15, abs=1e-3)
        assert row["track_id"].isdigit()


def test_tracks_csv_sums_each_track_and_matches_frames_csv(analysed: tuple[Path, str]) -> None:
    out, _ = analysed
    frames, tracks = read_csv(out / "frames.csv"), read_csv(out / "tracks.csv")
    assert {row["track_id"] for row in frames} == {row["track_id"] for row in tracks}
    for track in tracks:
        mine = [row for row in frames if row["track_id"] == track["track_id"]]
        assert int(track["frames"]) == len(mine)
        assert float(track["first_seen_s"]) == min(float(row["time_s"]) for row in mine)
        assert float(track["last_seen_s"]) == max(float(row["time_s"]) for row in mine)
        shares = {key[6:]: float(value) for key, value in track.items() if key.startswith("share_")}
        assert abs(sum(shares.values()) - 1) < 1e-3
        counted = {label: sum(row["label"] == label for row in mine) / len(mine) for label in shares}
        assert shares == pytest.approx(counted, abs=1e-3)
        assert track["dominant"] == max(counted, key=counted.get)
    # the clip changes faces every 2 s (30 frames): no track outlives the face it follows
    assert all(float(track["duration_s"]) <= 2.0 + 1e-6 for track in tracks)


def test_annotated_video_timeline_and_summary(analysed: tuple[Path, str]) -> None:
    out, table = analysed
    capture = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 120
    capture.release()
    chart = cv2.imread(str(out / "timeline.png"))
    tracks = read_csv(out / "tracks.csv")
    assert chart is not None and chart.shape[1] == 1000
    for track in tracks:  # each dominant emotion's colour is on the chart
        assert np.all(chart == colour(track["dominant"]), axis=2).any()
    summary = (out / "summary.md").read_text()
    for name in ("frames.csv", "tracks.csv", "annotated.mp4", "timeline.png"):
        assert f"]({name})" in summary
    assert f"in {len(tracks)} tracks" in summary
    assert f"tracks     {len(tracks)}\n" in table
    assert f"annotated  {out / 'annotated.mp4'}" in table and f"timeline   {out / 'timeline.png'}" in table


def test_summary_lists_tracks_by_id(tmp_path: Path) -> None:
    """Not by duration: a reader matches the table's rows to tracks.csv and the chart by id."""
    from edge.analysis.summary import AnalysisReport, write_summary
    from edge.analysis.tracks import TrackBook

    book = TrackBook(1 / 15)
    for track_id, frames in ((1, 3), (2, 30), (3, 10)):  # the longest is not the first
        for frame in range(frames):
            book.add(track_id, frame / 15, "happy")
    report = AnalysisReport("clip.mp4", tmp_path, 30, 30, 15.0, 43, 3, 1.0, {"happy": 1.0, "sad": 0.0})
    write_summary(tmp_path / "summary.md", report, book, ("happy", "sad"), "model")
    rows = [line for line in (tmp_path / "summary.md").read_text().splitlines() if line.startswith("| #")]
    assert [row.split("|")[1].strip() for row in rows] == ["#1", "#2", "#3"]


def test_the_emotions_line_says_when_it_leaves_some_out() -> None:
    from edge.analysis.summary import AnalysisReport

    def line(shares: dict[str, float]) -> str:
        return AnalysisReport("clip.mp4", Path("out"), 10, 10, 15.0, 10, 1, 1.0, shares).emotions()

    assert line({"neutral": 0.42, "sad": 0.27, "disgust": 0.14, "surprise": 0.14, "happy": 0.03}) == \
        "neutral 42%, sad 27%, disgust 14%, surprise 14%, …"
    assert line({"neutral": 0.5, "sad": 0.5, "happy": 0.0}) == "neutral 50%, sad 50%"
    assert line({"neutral": 0.0}) == "none"


def test_a_folder_of_videos_gets_one_folder_each(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(CLIP, videos / name)
    code, out, err = run(capfd, str(videos), "--out", str(tmp_path / "out"), "--no-video")
    assert code == 0, err
    for name in ("a", "b"):
        assert (tmp_path / "out" / name / "tracks.csv").is_file()
        assert not (tmp_path / "out" / name / "annotated.mp4").exists()
    assert out.count("\ntracks ") == 2


def test_in_a_folder_a_truncated_video_does_not_stop_the_others(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(truncated_avi(tmp_path), videos / "a_cut.avi")
    shutil.copy(CLIP, videos / "b_whole.mp4")
    code, out, err = run_cli(str(videos), "--out", str(tmp_path / "out"), "--no-video")
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and "a_cut.avi is truncated" in lines[0], err
    assert f"per track  {tmp_path}/out/b_whole/tracks.csv" in out  # the whole one was analysed after it
    assert read_csv(tmp_path / "out" / "a_cut" / "frames.csv")


def truncated_avi(tmp_path: Path) -> Path:
    """The demo clip as MJPEG AVI cut in half: the header still announces 120 frames."""
    whole = tmp_path / "whole.avi"
    capture = cv2.VideoCapture(str(CLIP))
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (640, 480))
    while True:
        ok, image = capture.read()
        if not ok:
            break
        writer.write(image)
    writer.release()
    capture.release()
    cut = tmp_path / "cut.avi"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_a_truncated_video_is_one_line_exit_2_and_keeps_the_rows_read(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(str(truncated_avi(tmp_path)), "--out", str(tmp_path / "out"))
    assert code == 2
    # the one line of ours, and nothing else: not even LiteRT's "INFO: Created TensorFlow Lite XNNPACK
    # delegate" (its C++ logger's, left out by edge.vision.backends.stderr_without)
    lines = err.splitlines()
    assert len(lines) == 1 and "truncated" in lines[0] and "of the 120 frames" in lines[0], err
    rows = read_csv(tmp_path / "out" / "frames.csv")
    assert rows and max(int(row["frame"]) for row in rows) < 100
    assert (tmp_path / "out" / "tracks.csv").is_file() and (tmp_path / "out" / "summary.md").is_file()


@pytest.mark.parametrize("damage", ["cut mp4", "not a video", "missing"])
def test_a_video_that_cannot_be_opened_is_one_line_exit_2(
        damage: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "clip.mp4"
    if damage == "cut mp4":  # the index (moov) is at the end of this file: half of it cannot be opened
        video.write_bytes(CLIP.read_bytes()[:100_000])
    elif damage == "not a video":
        video.write_text("hello\n")
    code, _, err = run_cli(str(video), "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.startswith("fer-edge: error: ") and err.count("\n") == 1, err


def test_an_out_folder_that_is_a_file_or_cannot_be_created_is_one_line_exit_2(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    for out, expected in ((a_file, "is a file"), (a_file / "below", "not writable"),
                          (Path("/proc/fer-edge-analysis"), "not writable")):
        code, _, err = run(capfd, str(CLIP), "--out", str(out))
        assert code == 2 and expected in err and err.count("\n") == 1, err


def test_progress_is_a_bar_with_eta_on_a_terminal_and_plain_lines_otherwise() -> None:
    stream = io.StringIO()
    bar = Progress(50, "analyze", stream, tty=True)
    bar._last_draw = -1.0
    bar.update(25)
    bar.finish()
    assert "\r" in stream.getvalue() and "[###############" in stream.getvalue() and "ETA" in stream.getvalue()
    stream = io.StringIO()
    plain = Progress(50, "analyze", stream, tty=False)
    for done in range(1, 51):
        plain.update(done)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 10
    assert lines[-1].startswith("analyze: 50/50 frames (100%)") and "ETA 0:00" in lines[-1]


def test_the_chart_puts_each_track_in_its_own_row_where_and_as_long_as_it_was_seen() -> None:
    timeline = Timeline(("happy", "sad"))
    for frame in range(15):  # track 1 happy for the first second of two
        timeline.add(1, frame / 15, "happy", 1 / 15)
    for frame in range(15, 30):  # track 2 sad for the second one
        timeline.add(2, frame / 15, "sad", 1 / 15)
    chart = render_timeline(timeline, 0.0, 2.0, width=480)
    happy = np.all(chart == colour("happy"), axis=2)
    sad = np.all(chart == colour("sad"), axis=2)
    happy_rows, happy_cols = np.nonzero(happy[60:])  # below the legend
    sad_rows, sad_cols = np.nonzero(sad[60:])
    assert happy_cols.max() < 64 + 200 <= sad_cols.min()  # plot from x=64, 400 px for 2 s
    assert happy_rows.max() < sad_rows.min()  # track 1 above track 2
    assert (happy_cols.max() - happy_cols.min()) == pytest.approx(200, abs=3)


def test_make_demo_ends_with_the_summary_table_and_the_paths_of_the_clip_and_chart(tmp_path: Path) -> None:
    """The edge commands of ``make demo``'s recipe, as make would run them (with this interpreter,
    writing under tmp_path instead of runs/)."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    dry = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    commands = [line.split(" -m edge ", 1)[1] for line in dry.splitlines() if " -m edge " in line]
    assert commands[0].startswith("run ") and commands[-1].startswith("analyze ")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    output = ""
    for command in commands:
        args = [arg.replace("runs/demo", str(tmp_path)) for arg in command.split()]
        if args[0] == "run":  # demo.toml's event log is relative to the config, under runs/
            args += ["--events", str(tmp_path / "events.jsonl")]
        done = subprocess.run([sys.executable, "-m", "edge", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        output = done.stdout
    last = output.splitlines()
    assert [line.split()[0] for line in last[:5]] == ["video", "faces", "tracks", "emotions", "speed"]
    assert f"annotated  {tmp_path}/analysis/annotated.mp4" in last
    assert f"timeline   {tmp_path}/analysis/timeline.png" in last
    assert (tmp_path / "analysis" / "annotated.mp4").stat().st_size > 0
    assert cv2.imread(str(tmp_path / "analysis" / "timeline.png")) is not None


def test_a_full_disk_mid_run_is_one_line_exit_2_and_keeps_the_rows_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.analysis.tables import FrameTable

    write = FrameTable.write

    def fill_up(self: FrameTable, when: float, frame: int, result: object) -> None:
        if frame == 40:
            raise OSError(28, "No space left on device")
        write(self, when, frame, result)  # type: ignore[arg-type]

    monkeypatch.setattr(FrameTable, "write", fill_up)
    assert main(["analyze", str(CLIP), "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"fer-edge: error: cannot write {tmp_path}: No space left on device\n"
    rows = read_csv(tmp_path / "frames.csv")
    assert rows and max(int(row["frame"]) for row in rows) == 39


def test_a_folder_of_photos_finds_every_face_detect_finds_and_names_unreadable_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Photos are not frames of one scene: every one gets the full detector (a blank photo first
    must not make the next one wait for the daemon's every-Nth-frame pass) and no track carries
    over from one to the next; files that do not decode are counted and named, not dropped unseen."""
    from tests.edge_helpers import SAMPLE, face_frame

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a_blank.jpg"), np.full((480, 640, 3), 128, np.uint8))
    faces = [sorted((SAMPLE / "test" / label).glob("*.jpg"))[index] for label, index in (("happy", 0), ("surprise", 2))]
    for name in ("b_faces.jpg", "c_faces.jpg"):  # the same faces in the same places: a tracker would join them
        cv2.imwrite(str(photos / name), face_frame(faces, size=160)[0], [cv2.IMWRITE_JPEG_QUALITY, 95])
    (photos / "d_broken.jpg").write_bytes(b"\xff\xd8 not really")

    assert main(["detect", str(photos / "b_faces.jpg")]) == 0
    found = len(json.loads(capsys.readouterr().out)["faces"])
    assert found == 2
    code, out, err = run_cli(str(photos), "--out", str(tmp_path / "out"), "--no-video")
    assert code == 0, err
    rows = read_csv(tmp_path / "out" / "frames.csv")
    assert [sum(int(row["frame"]) == frame for row in rows) for frame in range(3)] == [0, found, found]
    assert len({row["track_id"] for row in rows}) == 2 * found  # one track per face per photo
    assert err.splitlines() == [f"fer-edge: warning: {photos}: skipped 1 file (d_broken.jpg): not readable as images"]
    assert out.splitlines()[0] == f"images     {photos} (3 images; 1 unreadable, skipped)"
    assert f"faces      {2 * found} in 3 images" in out and " fps" not in out
    assert "- 3 images; 1 unreadable, skipped: `d_broken.jpg`" in (tmp_path / "out" / "summary.md").read_text()
