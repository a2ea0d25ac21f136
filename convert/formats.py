"""One function per target format. Each writes atomically, returns its path and logs time and size.

TensorFlow, tf2onnx and onnxruntime are imported inside the function that needs them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from convert.errors import ConvertError

log = logging.getLogger("fer-convert")

TFLITE_FORMATS = ("int8", "float32", "float16", "dynamic")
ONNX_FORMATS = ("onnx", "onnx_int8")
FORMATS = TFLITE_FORMATS + ONNX_FORMATS
DEFAULT_FORMATS = ("int8", "float32", "onnx")
ONNX_OPSET = 17


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    from edge.atomic import write_atomic

    try:
        write_atomic(path, write)
    except OSError as exc:
        raise ConvertError(f"cannot write {path}: {exc.strerror or exc}") from None


# What the TFLite converter's C++ prints on stderr for our int8 settings (uint8 in, int8 out), whatever
# TF_CPP_MIN_LOG_LEVEL says. Another TensorFlow may word it otherwise: then it shows, nothing worse.
INT8_NOTICE = b"fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: INT8"


def _logged(name: str, path: Path, started: float) -> Path:
    """Size and time only: ``path`` is in the staging folder, gone after the run (the pipeline names where
    each artifact ends up)."""
    log.info("%s: built (%.1f KB) in %.1f s", name, path.stat().st_size / 1024, time.monotonic() - started)
    return path


def export_tflite(model: Any, kind: str, path: Path, calibration: np.ndarray | None = None) -> Path:
    """TFLite float32, float16 (weights), dynamic-range (int8 weights) or full-integer int8.

    The int8 model takes raw uint8 pixels (scale 1, zero point 0, since Rescaling sits inside
    the graph and calibration sees the full 0..255 range) and answers int8 probabilities.
    """
    import tensorflow as tf

    started = time.monotonic()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if kind == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif kind == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif kind == "int8":
        if calibration is None:
            raise ConvertError("int8 needs calibration images")
        samples = calibration[..., None].astype(np.float32) if calibration.ndim == 3 else calibration.astype(np.float32)

        def representative() -> Any:
            for sample in samples:
                yield [sample[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.int8
    elif kind != "float32":
        raise ConvertError(f"unknown TFLite format '{kind}' (choose from {', '.join(TFLITE_FORMATS)})")
    from edge.vision.backends import stderr_without

    # the converter prints its SavedModel signature on stdout, and INT8_NOTICE on stderr
    with contextlib.redirect_stdout(io.StringIO()), stderr_without(INT8_NOTICE):
        flatbuffer = converter.convert()
    _write_atomic(path, lambda tmp: tmp.write_bytes(flatbuffer))
    return _logged(f"tflite {kind}", path, started)


def export_onnx(model: Any, path: Path, metadata: dict[str, str], opset: int = ONNX_OPSET) -> Path:
    """ONNX through tf2onnx, with the manifest's essentials (labels, input, version) as metadata."""
    import tensorflow as tf
    import tf2onnx

    started = time.monotonic()
    shape = (None, *model.input_shape[1:])
    signature = (tf.TensorSpec(shape, tf.float32, name="pixels"),)
    with contextlib.redirect_stdout(io.StringIO()):
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    _write_atomic(path, lambda tmp: tmp.write_bytes(proto.SerializeToString()))
    return _logged(f"onnx (opset {opset})", path, started)


def export_onnx_int8(float_onnx: Path, path: Path, calibration: np.ndarray) -> Path:
    """Static int8 (QDQ) quantization of the ONNX model with onnxruntime, on the same calibration set.

    The float model goes through onnxruntime's quantization pre-processing first (shape inference and
    graph optimisation, such as batch norm folded into convolutions), as quantize_static asks in two
    warnings otherwise; symbolic shape inference is skipped: it needs sympy, and only the batch
    dimension is open here.
    """
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    started = time.monotonic()
    import onnx

    input_name = onnx.load(str(float_onnx)).graph.input[0].name
    samples = calibration[..., None].astype(np.float32) if calibration.ndim == 3 else calibration.astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(samples)

        def get_next(self) -> dict[str, np.ndarray] | None:
            sample = next(self.items, None)
            return None if sample is None else {input_name: sample[None]}

    with tempfile.TemporaryDirectory(prefix="fer-onnx-int8-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(float_onnx), str(prepared), skip_symbolic_shape=True)
        _write_atomic(path, lambda tmp: quantize_static(str(prepared), str(tmp), Reader(),
                                                       quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                                                       weight_type=QuantType.QInt8))
    return _logged("onnx int8", path, started)
