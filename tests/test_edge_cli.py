"""`fer-edge` as a new user meets it: the first examples of docs/daemon.md from a checkout, a Pi's
config read on a laptop, stdout closed by `| head`, usage errors, `--version`, a video given to detect.

Most run `python -m edge` in its own process, as a shell would, so what reaches the terminal
(tracebacks, OpenCV's own log, the interpreter's last flush) is seen too.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from edge.__main__ import main
from edge.packaged import INSTALLED_ROOT, installed_layout_hint
from tests.edge_helpers import MANIFEST, ROOT, SAMPLE, face_frame

pytestmark = pytest.mark.skipif(not MANIFEST.is_file(), reason="shipped model not converted yet")

DEMO = ROOT / "edge" / "configs" / "demo.toml"
CLIP = ROOT / "models" / "demo" / "demo_clip.mp4"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
ENV.pop("FER_EDGE_CONFIG", None)


def fer_edge(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def shell(pipeline: str, tmp_path: Path) -> tuple[int, str, str]:
    """``pipeline`` under bash with pipefail, ``fer-edge`` meaning this interpreter's ``-m edge``;
    returns the pipeline's status, its stdout and fer-edge's stderr (kept in a file)."""
    err = tmp_path / "stderr.txt"
    command = pipeline.replace("fer-edge", f"{shlex.quote(sys.executable)} -m edge 2>>{shlex.quote(str(err))}")
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=ENV)
    return done.returncode, done.stdout, err.read_text() if err.exists() else ""


def face_photo(path: Path) -> Path:
    """Two real FER2013 faces the shipped Haar settings find, as one photo."""
    faces = [sorted((SAMPLE / "test" / label).glob("*.jpg"))[index] for label, index in (("happy", 0), ("surprise", 2))]
    cv2.imwrite(str(path), face_frame(faces, size=160)[0], [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path


# --- docs/daemon.md's first examples -------------------------------------------------------------

def opening_examples() -> list[list[str]]:
    """The ``fer-edge`` lines of daemon.md's first code block, without their comments."""
    text = (ROOT / "docs" / "daemon.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "docs/daemon.md has no sh block"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line.startswith("fer-edge ")]


def test_daemon_md_opens_with_examples_that_run_from_a_checkout(tmp_path: Path) -> None:
    examples = opening_examples()
    assert {words[1] for words in examples} >= {"detect", "validate-config", "run"}
    photo = face_photo(tmp_path / "photo.jpg")
    for words in examples:
        assert "edge/configs/edge.toml" not in words, f"the Pi's config fails on a laptop: {' '.join(words)}"
        args = [str(photo) if word == "photo.jpg" else str(tmp_path / "out") if word == "out/" else word
                for word in words[1:]]
        if words[1] == "run":
            if "--source" in args:
                continue  # a camera this machine may not have
            args += ["--max-frames", "3", "--events", str(tmp_path / "events.jsonl")]
        done = fer_edge(*args)
        assert done.returncode == 0, (words, done.stderr)
    assert (tmp_path / "out" / "photo.jpg").is_file()
    assert (tmp_path / "events.jsonl").read_text().strip()


@pytest.mark.skipif(INSTALLED_ROOT.exists(), reason="this machine has a Pi install in /opt/fer-edge")
def test_the_pis_config_on_a_laptop_says_it_is_the_installed_layout() -> None:
    done = fer_edge("validate-config", "edge/configs/edge.toml")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "/opt/fer-edge/models/" in lines[0] and "does not exist" in lines[0], done.stderr
    assert "install.sh" in lines[0] and "edge/configs/demo.toml" in lines[0]


def test_the_installed_layout_hint_is_only_for_its_files_on_a_machine_without_it(tmp_path: Path) -> None:
    root = tmp_path / "opt" / "fer-edge"
    assert "install.sh" in installed_layout_hint(root / "models" / "manifest.json", root)
    assert installed_layout_hint(tmp_path / "models" / "manifest.json", root) == ""
    root.mkdir(parents=True)  # a Pi: the file is really missing, the path says enough
    assert installed_layout_hint(root / "models" / "manifest.json", root) == ""


def test_the_commands_daemon_md_says_take_set_are_those_that_do(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join((ROOT / "docs" / "daemon.md").read_text().split())
    sentence = re.search(r"([^.]*) take `--config FILE` and `--set SECTION.KEY=VALUE`", text)
    assert sentence, "docs/daemon.md no longer says which commands take --set"
    documented = set(re.findall(r"`([a-z-]+)`", sentence.group(1)))
    takes = set()
    for command in ("detect", "analyze", "run", "validate-config", "bundle", "deploy", "flash-prepare"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        if "--set" in capsys.readouterr().out:
            takes.add(command)
    assert documented == takes


# --- stdout closed by its reader ------------------------------------------------------------------

def test_run_print_events_into_head_stops_the_daemon_cleanly(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    status, out, err = shell(f"fer-edge run --config {DEMO} --print-events --set source.loop=true "
                             f"--events {events} | head -1", tmp_path)
    assert status == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
    assert "stdout was closed by its reader; stopping" in err
    assert json.loads(out)["type"] == "frame"
    written = events.read_text().splitlines()  # every event written stays whole
    assert written and all(json.loads(line)["type"] == "frame" for line in written)
    assert len(written) < 200  # it stopped: a looping clip would go on for ever


@pytest.mark.parametrize("command", [
    "validate-config --print",
    "detect {photo} {photo} {photo} {photo}",
    "analyze {folder} --out {out} --quiet --no-video",
])
def test_a_command_whose_reader_leaves_stops_without_a_word(command: str, tmp_path: Path) -> None:
    photo = face_photo(tmp_path / "photo.jpg")
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (folder / name).symlink_to(CLIP)
    # `true` leaves at once, so the first line the command writes (after loading the model) meets a
    # closed pipe every time, where `head -1` would leave the outcome to a race with the pipe's buffer
    args = command.format(photo=photo, folder=folder, out=tmp_path / "out")
    status, out, err = shell(f"fer-edge {args} | true", tmp_path)
    assert status == 0, err
    assert err == "", err


# --- `fer-edge run` on a laptop ----------------------------------------------------------------------

def daemon_stderr(tmp_path: Path, *args: str, until: str, count: int = 1, timeout: float = 60) -> str:
    """stderr of ``fer-edge run ARGS`` (run in ``tmp_path``) once ``until`` is in it ``count`` times;
    then SIGTERM. Fails if it never is."""
    import signal
    import time

    err = tmp_path / "run-stderr.txt"
    with err.open("wb") as handle:
        process = subprocess.Popen([sys.executable, "-m", "edge", "run", "--set", "http.enabled=false", *args],
                                   cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=handle, env=ENV)
    try:
        deadline = time.monotonic() + timeout
        while err.read_text().count(until) < count and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    text = err.read_text()
    assert text.count(until) >= count, text
    return text


def test_run_without_a_config_on_a_laptop_stops_at_once_and_says_how_to_give_a_source(tmp_path: Path) -> None:
    """The default source is the Pi camera; without picamera2 no retry helps, so the daemon does not keep
    one up (and under systemd, exit status 2 stops the restarts: RestartPreventExitStatus)."""
    import importlib.util

    if importlib.util.find_spec("picamera2") is not None:
        pytest.skip("picamera2 is installed here")
    result = subprocess.run([sys.executable, "-m", "edge", "run", "--set", "http.enabled=false", "--events",
                             "logs/events.jsonl"], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=ENV)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1] == ("fer-edge: error: picamera2 is not installed (apt install "
                                              "python3-picamera2 on Raspberry Pi OS), or pass --source FILE|N")
    assert "Traceback" not in result.stderr and not (tmp_path / "logs").exists(), result.stderr


def test_run_logs_the_model_path_without_dot_dots(tmp_path: Path) -> None:
    err = daemon_stderr(tmp_path, "--config", str(DEMO), "--max-frames", "1", "--events", "events.jsonl",
                        until="events to")
    assert f"fer-edge: model {ROOT / 'models' / 'manifest.json'} (" in err and "/../" not in err, err


@pytest.mark.skipif(Path("/dev/video0").exists(), reason="this machine has a camera 0")
def test_a_missing_camera_is_our_line_on_each_retry_without_opencvs_own(tmp_path: Path) -> None:
    err = daemon_stderr(tmp_path, "--source", "0", "--events", "events.jsonl",
                        until="cannot open video source camera 0; reopening in", count=2)
    assert not [line for line in err.splitlines() if line.startswith("[")], err  # "[ WARN:0@0.08] global cap_v4l.cpp..."


# --- usage and version ---------------------------------------------------------------------------------

def test_version_comes_from_the_package_metadata() -> None:
    from importlib import metadata

    done = fer_edge("--version")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"fer-edge {metadata.version('fer-edge')}\n", "")


def test_version_without_an_installed_distribution_says_so() -> None:
    from edge.cli import package_version

    assert package_version("fer-edge-no-such-distribution").startswith("unknown (not installed")


def test_an_unknown_option_of_a_subcommand_points_at_its_help() -> None:
    done = fer_edge("detect", "img.jpg", "--foo", "2")
    assert done.returncode == 2
    assert done.stderr == "fer-edge detect: error: unrecognized arguments: --foo 2 (see 'fer-edge detect --help')\n"
