"""Frame sources: image files, folders and globs; video files; devices; the factory; the demo clip."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.demo_clip import load_faces, make_demo_clip, sidecar_path
from edge.errors import SourceError
from edge.vision.sources import Frame, FrameSource, open_source
from edge.vision.sources.images import ImageSource
from edge.vision.sources.opencv import OpenCVSource, redact
from edge.vision.sources.picamera import PiCameraSource

ROOT = Path(__file__).resolve().parents[1]


def write_image(path: Path, value: int, size: tuple[int, int] = (40, 30), gray: bool = False) -> Path:
    width, height = size
    image = np.full((height, width) if gray else (height, width, 3), value, dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


def write_video(path: Path, frames: int = 5, size: tuple[int, int] = (64, 48), fps: float = 10) -> Path:
    """Frame i is a flat grey of 40 * i, so a read-back frame says which one it is."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for index in range(frames):
        writer.write(np.full((size[1], size[0], 3), 40 * index, dtype=np.uint8))
    writer.release()
    return path


def read_all(source: FrameSource, limit: int = 100) -> list[Frame]:
    frames = []
    while len(frames) < limit and (frame := source.read()) is not None:
        frames.append(frame)
    return frames


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "faces"
    folder.mkdir()
    write_image(folder / "b.png", 20)
    write_image(folder / "a.jpg", 10)
    write_image(folder / "c.pgm", 30, gray=True)
    (folder / "notes.txt").write_text("not an image")
    return folder


# --- images -------------------------------------------------------------------------------------


def test_single_image_file(tmp_path: Path) -> None:
    path = write_image(tmp_path / "one.png", 90)
    with ImageSource(path) as source:
        frame = source.read()
        assert source.read() is None
    assert frame is not None
    assert frame.image.shape == (30, 40, 3) and frame.image.dtype == np.uint8
    assert frame.name == str(path) and frame.index == 0 and frame.gray is None
    assert source.live is False


def test_folder_is_sorted_and_only_images(folder: Path) -> None:
    with ImageSource(folder) as source:
        frames = read_all(source)
    assert [Path(frame.name).name for frame in frames] == ["a.jpg", "b.png", "c.pgm"]
    assert [frame.index for frame in frames] == [0, 1, 2]
    assert frames[2].image.shape == (30, 40, 3)  # greyscale file comes out BGR


def test_glob_pattern(folder: Path) -> None:
    with ImageSource(str(folder / "*.p*")) as source:
        names = [Path(frame.name).name for frame in read_all(source)]
    assert names == ["b.png", "c.pgm"]


def test_explicit_list(folder: Path) -> None:
    with ImageSource([folder / "c.pgm", folder / "a.jpg"]) as source:
        names = [Path(frame.name).name for frame in read_all(source)]
    assert names == ["c.pgm", "a.jpg"]


def test_resize_when_both_sides_given(folder: Path) -> None:
    with ImageSource(folder, width=20, height=16) as source:
        assert all(frame.image.shape == (16, 20, 3) for frame in read_all(source))


def test_corrupt_image_is_skipped_counted_and_logged(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    (folder / "b2.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    (folder / "empty.png").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="edge.vision.sources.images"), ImageSource(folder) as source:
        names = [Path(frame.name).name for frame in read_all(source)]
    assert names == ["a.jpg", "b.png", "c.pgm"]
    assert source.skipped == 2
    assert "b2.jpg" in caplog.text and "empty.png" in caplog.text


def test_strict_mode_raises_naming_the_file(folder: Path) -> None:
    (folder / "b2.jpg").write_bytes(b"garbage")
    with ImageSource(folder, strict=True) as source:
        source.read()
        source.read()
        with pytest.raises(SourceError, match="b2.jpg"):
            source.read()


def test_loop_restarts_and_does_not_recount_skipped(folder: Path) -> None:
    (folder / "bad.jpg").write_bytes(b"garbage")
    with ImageSource(folder, loop=True) as source:
        names = [Path(source.read().name).name for _ in range(7)]  # type: ignore[union-attr]
    assert names == ["a.jpg", "b.png", "c.pgm", "a.jpg", "b.png", "c.pgm", "a.jpg"]
    assert source.skipped == 1


def test_loop_over_only_broken_files_still_ends(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    with ImageSource(tmp_path, loop=True) as source:
        assert source.read() is None


def test_empty_folder_fails_at_open(tmp_path: Path) -> None:
    source = ImageSource(tmp_path)  # constructing is fine; opening is where it is checked
    with pytest.raises(SourceError, match="no images"):
        source.open()


def test_folder_of_class_folders_hints_at_a_glob(tmp_path: Path) -> None:
    (tmp_path / "happy").mkdir()
    write_image(tmp_path / "happy" / "x.png", 50)
    with pytest.raises(SourceError, match=r"/\*/\*\.jpg"):
        ImageSource(tmp_path).open()


def test_glob_without_matches_fails_at_open(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no images match"):
        ImageSource(str(tmp_path / "*.jpg")).open()


def test_missing_path_fails_at_open(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or folder"):
        ImageSource(tmp_path / "nope").open()


def test_image_source_close_is_idempotent_and_read_after_close_raises(folder: Path) -> None:
    source = ImageSource(folder)
    source.close()
    source.open()
    source.close()
    source.close()
    with pytest.raises(SourceError, match="not open"):
        source.read()


# --- video files and devices --------------------------------------------------------------------


def test_video_file_reads_every_frame_then_none(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", frames=5)
    with OpenCVSource(str(path)) as source:
        frames = read_all(source)
        assert source.read() is None  # stays ended
    assert len(frames) == 5
    assert [frame.index for frame in frames] == [0, 1, 2, 3, 4]
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8
    assert abs(int(frames[3].image.mean()) - 120) <= 4
    assert source.live is False and frames[0].gray is None and frames[0].name == ""


def test_video_loop_wraps_around(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", frames=3)
    with OpenCVSource(str(path), loop=True) as source:
        frames = [source.read() for _ in range(7)]
    assert all(frame is not None for frame in frames)
    means = [round(frame.image.mean() / 40) for frame in frames]  # type: ignore[union-attr]
    assert means == [0, 1, 2, 0, 1, 2, 0]
    assert [frame.index for frame in frames] == list(range(7))  # type: ignore[union-attr]


def test_realtime_delivers_a_file_at_its_own_frame_rate(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", frames=3, fps=20)
    with OpenCVSource(str(path), loop=True, realtime=True) as source:
        started = time.monotonic()
        frames = [source.read() for _ in range(9)]
        elapsed = time.monotonic() - started
    assert all(frame is not None for frame in frames)
    assert elapsed >= 8 / 20 * 0.95  # 9 frames at 20 fps span 8 intervals, across the loop's reopen too
    with open_source(str(path), realtime=True) as source:
        assert isinstance(source, OpenCVSource) and source.realtime


def test_video_file_resized_when_both_sides_given(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", frames=2)
    with OpenCVSource(str(path), width=32, height=24) as source:
        assert [frame.image.shape for frame in read_all(source)] == [(24, 32, 3)] * 2
    with OpenCVSource(str(path), width=32) as source:  # one side alone is not a size
        assert source.read().image.shape == (48, 64, 3)  # type: ignore[union-attr]


def test_greyscale_video_comes_out_bgr(tmp_path: Path) -> None:
    path = tmp_path / "gray.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48), isColor=False)
    for _ in range(2):
        writer.write(np.full((48, 64), 100, dtype=np.uint8))
    writer.release()
    with OpenCVSource(str(path)) as source:
        frame = source.read()
    assert frame is not None and frame.image.shape == (48, 64, 3)


def test_missing_video_file_fails_at_open(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot open video source"):
        OpenCVSource(str(tmp_path / "missing.mp4")).open()


def test_unreadable_video_file_fails_at_open(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(SourceError, match="cannot open video source"):
        OpenCVSource(str(path)).open()


def test_missing_device_fails_at_open() -> None:
    source = OpenCVSource("/dev/video99")
    assert source.live is True
    with pytest.raises(SourceError, match="cannot open video source /dev/video99"):
        source.open()
    source.close()


def test_device_index_strings_become_indices() -> None:
    source = OpenCVSource("3")
    assert source.target == 3 and source.live and source.description == "camera 3"


def test_stream_password_is_not_in_the_description() -> None:
    source = OpenCVSource("rtsp://admin:hunter2@10.0.0.5:554/stream1")
    assert source.live and "hunter2" not in source.description
    assert redact("rtsp://admin:hunter2@cam/s") == "rtsp://admin:***@cam/s"
    assert redact("http://cam.local/video") == "http://cam.local/video"


def test_video_close_is_idempotent_and_read_after_close_raises(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", frames=2)
    source = OpenCVSource(str(path))
    source.close()
    with source:
        assert source.read() is not None
    source.close()
    with pytest.raises(SourceError, match="not open"):
        source.read()


# --- factory ------------------------------------------------------------------------------------


def test_factory_picamera2() -> None:
    source = open_source("picamera2", width=800, height=600, fps=10)
    assert isinstance(source, PiCameraSource)
    assert (source.width, source.height, source.fps, source.camera_num) == (800, 600, 10, 0)
    numbered = open_source("picamera2:1")
    assert isinstance(numbered, PiCameraSource) and numbered.camera_num == 1
    assert (numbered.width, numbered.height) == (640, 480)


@pytest.mark.parametrize("size, detect_width, lores", [
    ((640, 480), 320, (320, 240)),
    ((160, 120), 320, (160, 120)),  # a main stream smaller than the detector's width
    ((1280, 720), 320, (320, 180)),  # 16:9 stays 16:9, so faces are not squashed for Haar
    ((1920, 1080), 400, (400, 224)),  # even for YUV420
])
def test_picamera_lores_follows_the_detector_width_and_the_aspect_ratio(
        size: tuple[int, int], detect_width: int, lores: tuple[int, int]) -> None:
    source = open_source("picamera2", width=size[0], height=size[1], detect_width=detect_width)
    assert isinstance(source, PiCameraSource) and source.lores == lores


@pytest.mark.parametrize("spec, target", [("0", 0), ("2", 2), ("/dev/video0", "/dev/video0")])
def test_factory_devices(spec: str, target: int | str) -> None:
    source = open_source(spec, width=320, height=240, fps=15)
    assert isinstance(source, OpenCVSource) and source.live
    assert (source.target, source.width, source.height, source.fps) == (target, 320, 240, 15)


@pytest.mark.parametrize("spec", ["rtsp://cam.local:554/stream", "http://cam/video.mjpg", "https://cam/live"])
def test_factory_streams(spec: str) -> None:
    source = open_source(spec)
    assert isinstance(source, OpenCVSource) and source.live and source.target == spec


def test_factory_video_file(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", frames=1)
    source = open_source(str(path), loop=True)
    assert isinstance(source, OpenCVSource) and not source.live and source.loop


def test_factory_images(folder: Path) -> None:
    assert isinstance(open_source(str(folder / "a.jpg")), ImageSource)
    assert isinstance(open_source(str(folder)), ImageSource)
    assert isinstance(open_source(str(folder / "*.png")), ImageSource)
    glob_without_matches = open_source(str(folder / "*.gif"))  # a glob is checked when opened
    with pytest.raises(SourceError, match="no images match"):
        glob_without_matches.open()


def test_factory_missing_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or folder: .*nothing.mp4"):
        open_source(str(tmp_path / "nothing.mp4"))


def test_factory_unknown_file_type(folder: Path) -> None:
    with pytest.raises(SourceError, match="unsupported file type .txt"):
        open_source(str(folder / "notes.txt"))


def test_factory_does_not_open(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", frames=1)
    with pytest.raises(SourceError, match="not open"):
        open_source(str(path)).read()


# --- demo clip ----------------------------------------------------------------------------------


def test_make_demo_clip_writes_a_readable_clip_and_ground_truth(tmp_path: Path) -> None:
    samples = load_faces(ROOT / "tests" / "data" / "fer2013_sample" / "test")
    faces = [(image, label) for image, label, _ in samples[::10]]
    clip = make_demo_clip(faces, tmp_path / "demo.mp4", frames=10, size=(320, 240), fps=10, seed=1)
    truth = json.loads(sidecar_path(clip).read_text())
    assert truth["frames"] == 10 and truth["size"] == [320, 240]
    assert len(truth["ground_truth"]) == 10
    labels = {label for _, label in faces}
    with OpenCVSource(str(clip)) as source:
        frames = read_all(source)
    assert len(frames) == 10 and frames[0].image.shape == (240, 320, 3)
    for frame, entry in zip(frames, truth["ground_truth"]):
        assert entry["index"] == frame.index and 1 <= len(entry["faces"]) <= 2
        for face in entry["faces"]:
            x, y, w, h = face["box"]
            assert w == h and 0 <= x and x + w <= 320 and 0 <= y and y + h <= 240
            assert face["label"] in labels
            # The pasted face is really there: the box centre matches the upscaled sample.
            sample = cv2.resize(faces[face["face"]][0], (w, h), interpolation=cv2.INTER_CUBIC)
            crop = cv2.cvtColor(frame.image[y:y + h, x:x + w], cv2.COLOR_BGR2GRAY)
            centre = slice(h // 4, 3 * h // 4)
            assert np.abs(crop[centre, centre].astype(int) - sample[centre, centre]).mean() < 12


@pytest.mark.parametrize(("script", "extra", "message"), [
    ("demo_clip", [], "error: no such folder: {missing}"),
    ("tilted_clip", [], "error: no such folder: {missing}"),
    ("tilted_clip", ["--per-label", "0"], "error: --per-label must be >= 1, not 0"),
])
def test_the_clip_scripts_report_an_edge_error_in_one_line_with_exit_1(
        script: str, extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    missing = tmp_path / "no-faces"
    main = importlib.import_module(f"edge.{script}").main
    assert main(["--data", str(missing), "--out", str(tmp_path / "clip.mp4"), *extra]) == 1
    captured = capsys.readouterr()
    assert captured.err == message.format(missing=missing) + "\n" and captured.out == ""
    assert not (tmp_path / "clip.mp4").exists()


def test_the_tilted_clip_script_writes_its_clip_and_exits_0(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from edge.tilted_clip import main

    clip = tmp_path / "tilted.mp4"
    assert main(["--data", str(ROOT / "tests" / "data" / "fer2013_sample" / "test"), "--out", str(clip),
                 "--per-label", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {clip} (") and clip.is_file() and sidecar_path(clip).is_file()


def test_edge_sources_import_nothing_heavy() -> None:
    code = ("import sys, edge.vision.sources, edge.demo_clip; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'train', 'convert', 'picamera2'}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
