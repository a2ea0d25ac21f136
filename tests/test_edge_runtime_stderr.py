"""The TFLite runtimes' start-up notice on stderr, and the filter that keeps it out of ours.

LiteRT and tflite-runtime print "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from C++
on a process's first model load, whatever TF_CPP_MIN_LOG_LEVEL says. ``stderr_without`` drops that
line around the interpreter's construction and lets every other line through.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import pytest

from edge.vision.backends import XNNPACK_NOTICE, stderr_without
from tests.edge_helpers import MANIFEST, ROOT, SAMPLE, face_frame

MODEL = ROOT / "models" / "fer_vgg_int8.tflite"
NOTICE = XNNPACK_NOTICE.decode()


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.skipif(not MODEL.is_file(), reason="shipped model not converted yet")
def test_the_runtime_prints_the_notice_when_nothing_filters_it() -> None:
    """Why the filter exists; if this fails, the runtime has gone quiet and the filter can go."""
    result = python(f"""
        from edge.vision.backends import tflite_interpreter_class
        interpreter_class, _ = tflite_interpreter_class()
        interpreter_class(model_path={str(MODEL)!r}, num_threads=1).allocate_tensors()
    """)
    assert result.returncode == 0, result.stderr
    assert NOTICE in result.stderr.splitlines(), result.stderr


@pytest.mark.skipif(not MANIFEST.is_file(), reason="shipped model not converted yet")
def test_detect_prints_no_xnnpack_notice(tmp_path: Path) -> None:
    paths = [sorted((SAMPLE / "test" / label).glob("*.jpg"))[index] for label, index in (("happy", 0), ("surprise", 2))]
    image = tmp_path / "two_faces.jpg"
    cv2.imwrite(str(image), face_frame(paths, size=160)[0])
    result = subprocess.run([sys.executable, "-m", "edge", "detect", str(image)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["faces"]) == 2
    assert "XNNPACK delegate" not in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_the_filter_drops_the_notice_and_lets_errors_through(capfd: pytest.CaptureFixture[str]) -> None:
    with stderr_without(XNNPACK_NOTICE):
        os.write(2, b"before\n" + XNNPACK_NOTICE + b"\n")
        os.write(2, b"ERROR: Didn't find op for builtin opcode 'CONV_2D'\r\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU. and more\n")
        os.write(2, b"a last line without its newline")
    os.write(2, b"\nafter\n")
    err = capfd.readouterr().err
    assert err == ("before\nERROR: Didn't find op for builtin opcode 'CONV_2D'\r\n"
                   "INFO: Created TensorFlow Lite XNNPACK delegate for CPU. and more\n"
                   "a last line without its newline\nafter\n")


def test_a_pattern_drops_whole_lines_it_matches_and_nothing_else(capfd: pytest.CaptureFixture[str]) -> None:
    import re

    stamped = re.compile(rb"I\d{4} \S+ +\d+ port\.cc:\d+\] hello")
    with stderr_without(stamped, XNNPACK_NOTICE):
        os.write(2, b"I0000 00:00:1795.1    4340 port.cc:153] hello\n" + XNNPACK_NOTICE + b"\n")
        os.write(2, b"I0000 00:00:1795.1    4340 port.cc:153] hello and more\nkept\n")
    assert capfd.readouterr().err == "I0000 00:00:1795.1    4340 port.cc:153] hello and more\nkept\n"


def test_an_exception_in_the_body_restores_stderr_and_keeps_what_was_written(
        capfd: pytest.CaptureFixture[str]) -> None:
    real = os.fstat(2)
    with pytest.raises(ValueError, match="bad model"), stderr_without(XNNPACK_NOTICE):
        os.write(2, XNNPACK_NOTICE + b"\nERROR: failed to load\n")
        raise ValueError("bad model")
    assert (os.fstat(2).st_dev, os.fstat(2).st_ino) == (real.st_dev, real.st_ino)
    assert capfd.readouterr().err == "ERROR: failed to load\n"


def test_more_than_a_pipe_holds_neither_blocks_nor_is_lost() -> None:
    """In a process of its own, with a timeout: a writer that blocked would hang the test run."""
    result = python("""
        import os, sys, threading
        from edge.vision.backends import XNNPACK_NOTICE, stderr_without
        def other_thread():
            print("from another thread", file=sys.stderr, flush=True)
        with stderr_without(XNNPACK_NOTICE):
            for i in range(20000):
                os.write(2, XNNPACK_NOTICE + b"\\n" + b"line %d " % i + b"x" * 50 + b"\\n")
            worker = threading.Thread(target=other_thread)
            worker.start()
            worker.join()
        print("done", file=sys.stderr)
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 20002 and NOTICE not in lines
    assert lines[0].startswith("line 0 ") and lines[19999].startswith("line 19999 ")
    assert lines[-2:] == ["from another thread", "done"]
