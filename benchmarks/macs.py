"""Multiply-accumulates per face, counted from the artifact's own graph.

Only the layers that dominate a CNN's arithmetic are counted, the usual convention:
convolution ``out_h*out_w*out_c*k_h*k_w*in_c/groups``, depthwise convolution
``out_h*out_w*out_c*k_h*k_w``, and dense/matmul ``in*out``. With the latency this gives the
achieved MAC/s, which says how far a runtime is from what the CPU could do.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from benchmarks.errors import BenchError


def tflite_macs(path: Path, interpreter_class: type | None = None) -> int:
    """MACs of one invocation at batch 1 (one face), from the interpreter's op list (no flatbuffer parser needed).

    Each op's own batch counts: an artifact with test-time views runs the classifier on a batch of
    views of the one face, and costs that many times the MACs.
    """
    if interpreter_class is None:
        from edge.vision.backends import tflite_interpreter_class

        interpreter_class, _ = tflite_interpreter_class()
    # without XNNPACK: tensors inside a delegated partition keep the file's batch-1 shapes, so the
    # views of a test-time-views artifact would be counted as one face
    resolver = getattr(sys.modules.get(interpreter_class.__module__), "OpResolverType", None)
    options = {} if resolver is None else {
        "experimental_op_resolver_type": resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    interpreter = interpreter_class(model_path=str(path), num_threads=1, **options)
    interpreter.allocate_tensors()
    shapes = {t["index"]: [int(d) for d in t["shape"]] for t in interpreter.get_tensor_details()}
    total = 0
    for op in interpreter._get_ops_details():  # noqa: SLF001 - the only op listing LiteRT exposes
        name = op["op_name"]
        inputs = [shapes.get(int(i), []) for i in op["inputs"]]
        outputs = [shapes.get(int(i), []) for i in op["outputs"]]
        if not outputs or not outputs[0]:
            continue
        out = outputs[0]
        if name == "CONV_2D" and len(inputs) > 1 and len(inputs[1]) == 4:
            _, k_h, k_w, in_per_group = inputs[1]  # filter OHWI, I = in_c / groups
            total += int(np.prod(out)) * k_h * k_w * in_per_group
        elif name == "DEPTHWISE_CONV_2D" and len(inputs) > 1 and len(inputs[1]) == 4:
            _, k_h, k_w, _ = inputs[1]  # filter 1HWO
            total += int(np.prod(out)) * k_h * k_w
        elif name == "FULLY_CONNECTED" and len(inputs) > 1 and len(inputs[1]) == 2:
            units, depth = inputs[1]
            total += int(np.prod(out[:-1])) * units * depth
        elif name in ("BATCH_MATMUL",) and len(inputs) > 1 and len(inputs[0]) >= 2:
            depth = inputs[0][-1]
            total += int(np.prod(out)) * depth
    return int(total)


def onnx_macs(path: Path) -> int:
    """MACs at batch 1 from the ONNX graph after shape inference (Conv, Gemm, MatMul), each op's own batch counted."""
    try:
        import onnx
        from onnx import shape_inference
    except ImportError:
        raise BenchError("the onnx package is not installed (pip install onnx) so ONNX MACs cannot be counted") from None
    model = onnx.load(str(path))
    for value in list(model.graph.input):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes: dict[str, list[int]] = {}
    for value in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [int(d.dim_value) if d.dim_value else 1 for d in dims]
    for init in model.graph.initializer:
        shapes[init.name] = [int(d) for d in init.dims]
    total = 0
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        out = shapes.get(node.output[0]) if node.output else None
        if not out:
            continue
        if node.op_type == "Conv":
            weight = shapes.get(node.input[1], [])
            if len(weight) < 3:
                continue
            kernel = int(np.prod(weight[2:]))
            in_per_group = weight[1]  # (out_c, in_c/groups, k_h, k_w)
            total += int(np.prod(out)) * kernel * in_per_group
        elif node.op_type == "Gemm":
            a = shapes.get(node.input[0], [])
            if len(a) != 2:
                continue
            depth = a[0] if attrs.get("transA", 0) else a[1]
            total += int(np.prod(out)) * depth
        elif node.op_type == "MatMul":
            a = shapes.get(node.input[0], [])
            if not a:
                continue
            total += int(np.prod(out)) * a[-1]
    return int(total)


def artifact_macs(path: Path, fmt: str) -> int:
    if fmt == "tflite":
        return tflite_macs(path)
    if fmt == "onnx":
        return onnx_macs(path)
    raise BenchError(f"cannot count MACs of format '{fmt}'")
