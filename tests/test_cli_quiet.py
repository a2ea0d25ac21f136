"""fer-train, fer-convert and fer-bench say what they do, not what TensorFlow does: TF's C++ logging turned down
(a user's TF_CPP_MIN_LOG_LEVEL wins), third-party Python log lines not printed under our name, and the paths
a conversion names are where its files are after the run."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE
from tests.model_helpers import untrained_classifier
from train.console import TF_LOG_LEVEL, log_to_stderr, quiet_tensorflow

# what a run printed before: TF's C++ ERROR on a CPU-only machine, TF's and tf2onnx's Python INFO under our
# name, the converter's own prints, and the staging folder the artifacts no longer are in
NOISE = ("cuInit", "E0000", "Assets written to", "constant folding", "After optimization",
         "Statistics for quantized inputs", "fully_quantize", ".convert-", "INFO:", "pre-processing")


def test_tf_logging_is_turned_down_unless_the_user_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == TF_LOG_LEVEL == "3"  # 2 still prints the cuInit ERROR
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_only_our_loggers_print_under_our_name(capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):  # main() twice in one process: still one line each
        log_to_stderr("fer-convert")
    logging.getLogger("tensorflow").info("Assets written to: /tmp/x/assets")
    logging.getLogger("tf2onnx.optimizer").info("After optimization: Const -3")
    logging.getLogger("fer-convert").info("manifest: out/manifest.json")
    assert capsys.readouterr().err == "fer-convert: manifest: out/manifest.json\n"


def test_our_log_lines_go_to_stderr_as_it_is_when_they_are_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    """fer-convert and fer-bench log edge's lines too; run in-process (as tests do) their handler must not
    keep the stderr of that moment: once it is closed, a thread still logging (MQTT retrying) would print
    "Logging error" tracebacks instead of its lines."""
    import io

    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    log_to_stderr("fer-bench", "edge.test")
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("edge.test.mqtt").warning("broker gone")
    assert second.getvalue() == "fer-bench: broker gone\n"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.slow
def test_fer_convert_prints_its_own_lines_and_the_final_paths(tmp_path: Path) -> None:
    model = untrained_classifier(tmp_path / "m.keras")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "convert", str(model), "--out", str(out), "--formats", "int8,onnx,onnx_int8",
                             "--data", str(SAMPLE), "--max-drop", "100"], capture_output=True, text=True,
                            timeout=300, env=_clean_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    noisy = [line for line in result.stderr.splitlines() if any(n in line for n in NOISE)]
    assert not noisy, result.stderr
    assert f"fer-convert: wrote {out / 'm_int8.tflite'} (int8)" in result.stderr, result.stderr
    assert f"fer-convert: wrote {out / 'm.onnx'} (onnx)" in result.stderr, result.stderr
    assert f"fer-convert: wrote {out / 'm_int8.onnx'} (onnx_int8)" in result.stderr, result.stderr


@pytest.mark.slow
def test_fer_train_prints_no_cuda_error_on_a_machine_without_one(tmp_path: Path) -> None:
    model = untrained_classifier(tmp_path / "m.keras")
    result = subprocess.run([sys.executable, "-m", "train", "evaluate", str(model), "--data", str(SAMPLE)],
                            capture_output=True, text=True, timeout=300, env=_clean_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cuInit" not in result.stderr and "E0000" not in result.stderr, result.stderr


@pytest.mark.slow
def test_the_lines_tensorflow_prints_while_loading_are_left_out_unless_the_user_set_a_level() -> None:
    """They ignore TF_CPP_MIN_LOG_LEVEL (printed before TF reads it), so the first import is filtered; a user
    who asks for every line (level 0) gets them, which also shows this TensorFlow prints them at all."""
    # fer-bench asks whether tensorflow is installed (find_spec) before anything imports it
    code = ("import importlib.util, sys; from train.console import quiet_tensorflow; quiet_tensorflow(); "
            "assert importlib.util.find_spec('tensorflow'); "
            "print('before', file=sys.stderr, flush=True); import tensorflow; print('after', file=sys.stderr)")

    def stderr(**env: str) -> list[str]:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                                env={**_clean_env(), **env})
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stderr.splitlines()

    everything = stderr(TF_CPP_MIN_LOG_LEVEL="0")
    assert any("absl::InitializeLog" in line for line in everything), everything
    assert stderr() == ["before", "after"]
