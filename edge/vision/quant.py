"""The one place that quantizes inputs and dequantizes outputs (pycoral's get_scores, generalised).

Every runtime, the converter's verification and the benchmarks go through these two functions,
so an int8 model's numbers mean the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DTYPES = {"uint8": np.uint8, "int8": np.int8, "int16": np.int16, "float32": np.float32, "float16": np.float16}


@dataclass(frozen=True)
class TensorSpec:
    """dtype and affine quantization of one tensor; scale 0 means not quantized."""

    dtype: str
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale > 0 and self.dtype in ("uint8", "int8", "int16")

    def to_dict(self) -> dict[str, object]:
        return {"dtype": self.dtype, "scale": self.scale, "zero_point": self.zero_point}


def quantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Real values to the tensor's dtype: ``q = round(x / scale) + zero_point``, clipped to range."""
    dtype = DTYPES[spec.dtype]
    if not spec.quantized:
        return np.asarray(values, dtype=dtype)
    values = np.asarray(values)
    if values.dtype == np.uint8 and spec.dtype == "uint8" and spec.scale == 1.0 and spec.zero_point == 0:
        return values  # raw pixels already are the tensor: no arithmetic on the hot path
    info = np.iinfo(dtype)
    q = np.round(values.astype(np.float32) / spec.scale) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The tensor back to real values: ``scale * (q - zero_point)``, as float32."""
    if not spec.quantized:
        return np.asarray(values, dtype=np.float32)
    return (spec.scale * (np.asarray(values).astype(np.int64) - spec.zero_point)).astype(np.float32)
