"""Runtimes that execute a model file: TFLite (LiteRT, tflite-runtime, or tensorflow.lite) and ONNX Runtime.

Each backend takes and returns the model's own tensors (possibly quantized); ``classifier``
handles quantization. Imports are lazy so a Pi with only one runtime installed works.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge.errors import ModelLoadError
from edge.vision.quant import TensorSpec

# LiteRT first: tflite-runtime 2.14 (its last release) does not import with numpy 2.
TFLITE_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite")

# What the TFLite runtimes' C++ logger prints on a process's first model load, whatever
# TF_CPP_MIN_LOG_LEVEL says: noise in `fer-edge detect`'s output and in the journal.
XNNPACK_NOTICE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."

_STDERR_LOCK = threading.RLock()  # file descriptor 2 is the process's: one redirection at a time


class Backend(Protocol):
    name: str
    input_spec: TensorSpec
    output_spec: TensorSpec
    input_shape: tuple[int | None, ...]  # None where the model leaves a dimension open
    output_shape: tuple[int | None, ...]

    def run(self, batch: np.ndarray) -> np.ndarray: ...


def tflite_interpreter_class(prefer: str | None = None) -> tuple[Any, str]:
    """The first importable TFLite Interpreter class, and its module's name."""
    modules = (prefer,) if prefer else TFLITE_MODULES
    errors = []
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, or numpy ABI errors raised as others
            errors.append(f"{module_name}: {type(exc).__name__}")
            continue
        interpreter = getattr(module, "Interpreter", None)
        if interpreter is not None:
            return interpreter, module_name.split(".")[0]
    raise ModelLoadError("no TFLite runtime importable (install ai-edge-litert or tflite-runtime): "
                         + "; ".join(errors))


@contextlib.contextmanager
def stderr_without(*dropped: bytes | re.Pattern[bytes]) -> Iterator[None]:
    """Send file descriptor 2 through a filter for the body: lines equal to one of ``dropped`` (or, for a
    pattern, matching it whole) are left out, every other line goes on to the real stderr as it arrives.

    For C/C++ code that writes to stderr itself (Python's logging is not involved). What other
    threads write to stderr meanwhile still arrives. Without a usable fd 2 (closed, or no pipe to
    be had), the body runs unfiltered.
    """
    with _STDERR_LOCK:
        _flush_stderr()
        try:
            real = os.dup(2)
        except OSError:
            yield
            return
        try:
            read_end, write_end = os.pipe()
            out = os.dup(real)  # the forwarder's own, closed when it is done
        except OSError:
            os.close(real)
            yield
            return
        forwarder = threading.Thread(target=_forward_lines, args=(read_end, out, _line_filter(dropped)),
                                     name="stderr-filter", daemon=True)
        forwarder.start()
        try:
            os.dup2(write_end, 2)
        finally:
            os.close(write_end)  # from here on fd 2 is the pipe's only writer
        try:
            yield
        finally:
            _flush_stderr()
            os.dup2(real, 2)  # the pipe's last writer goes: the forwarder reads what is left, then stops
            os.close(real)
            forwarder.join(timeout=5.0)


def _flush_stderr() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # None, or closed
        pass


def _line_filter(dropped: tuple[bytes | re.Pattern[bytes], ...]) -> Callable[[bytes], bool]:
    """Whether a line (without its line ending) is one of ``dropped``."""
    exact = frozenset(item for item in dropped if isinstance(item, bytes))
    patterns = [item for item in dropped if not isinstance(item, bytes)]
    return lambda line: line in exact or any(pattern.fullmatch(line) for pattern in patterns)


def _forward_lines(read_end: int, out: int, is_dropped: Callable[[bytes], bool]) -> None:
    """Copy the pipe to ``out`` line by line, leaving out those ``is_dropped`` says; read to the end
    whatever happens, so a writer never blocks on a full pipe."""
    pending = b""
    writable = True
    try:
        while chunk := os.read(read_end, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not is_dropped(line.rstrip(b"\r")))
            writable = writable and _write_all(out, kept)
        if pending and not is_dropped(pending.rstrip(b"\r")):
            _write_all(out, pending)
    finally:
        os.close(read_end)
        os.close(out)


def _write_all(fd: int, data: bytes) -> bool:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:  # stderr itself gone (EPIPE): nothing to tell anyone
        return False
    return True


def _spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorSpec(np.dtype(detail["dtype"]).name, float(scale), int(zero_point))


class TFLiteBackend:
    def __init__(self, path: Path, threads: int = 1, module: str | None = None) -> None:
        interpreter_class, self.name = tflite_interpreter_class(module)
        try:
            with stderr_without(XNNPACK_NOTICE):  # printed by the first allocate_tensors in a process
                self.interpreter = interpreter_class(model_path=str(path), num_threads=threads)
                self.interpreter.allocate_tensors()
        except Exception as exc:  # runtimes raise ValueError/RuntimeError for bad files
            raise ModelLoadError(f"cannot load {path} with {self.name}: {str(exc).splitlines()[0][:160]}") from None
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self.input_spec = _spec(self._input)
        self.output_spec = _spec(self._output)
        self.input_shape = tuple(int(d) for d in self._input["shape"])
        self.output_shape = tuple(int(d) for d in self._output["shape"])
        self._batch = int(self._input["shape"][0])

    def run(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] != self._batch:
            self.interpreter.resize_tensor_input(self._input["index"], list(batch.shape))
            self.interpreter.allocate_tensors()
            self._batch = batch.shape[0]
            self._input = self.interpreter.get_input_details()[0]
            self._output = self.interpreter.get_output_details()[0]
        self.interpreter.set_tensor(self._input["index"], batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"]).copy()


_ONNX_TYPES = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int8)": "int8",
               "tensor(float16)": "float16"}


class OnnxBackend:
    def __init__(self, path: Path, threads: int = 1, input_spec: TensorSpec | None = None,
                 output_spec: TensorSpec | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelLoadError("onnxruntime is not installed: pip install onnxruntime") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelLoadError(f"cannot load {path} with onnxruntime: {str(exc).splitlines()[0][:160]}") from None
        self.name = "onnxruntime"
        model_input = self.session.get_inputs()[0]
        self._input_name = model_input.name
        self.input_spec = input_spec or TensorSpec(_ONNX_TYPES.get(model_input.type, "float32"))
        self.output_spec = output_spec or TensorSpec("float32")
        self.input_shape = _onnx_shape(model_input.shape)
        self.output_shape = _onnx_shape(self.session.get_outputs()[0].shape)

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input_name: batch})[0]


def _onnx_shape(shape: Any) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


def open_backend(path: Path, fmt: str, threads: int = 1, tflite_module: str | None = None) -> Backend:
    if fmt == "tflite":
        return TFLiteBackend(path, threads, tflite_module)
    if fmt == "onnx":
        return OnnxBackend(path, threads)
    raise ModelLoadError(f"unknown model format '{fmt}'")
