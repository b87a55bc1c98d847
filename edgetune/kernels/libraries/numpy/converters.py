"""Edge converters: NCHW <-> NHWC (numpy), NCHW/NHWC <-> oneDNN BLOCKED (torch), fp32 <-> fp16 casts, and
fp32 <-> uint8 (quantise, dequantise) with the parameters the edge's `Format` carries.

Why registered objects rather than ad-hoc code in the executor: a conversion costs as much as a small
layer (probe: 110-300 us for 64x56x56 NCHW<->NHWC), so the profiler must time each one like a primitive,
and the executor must insert exactly what was timed. `prepare(shape)` gets the logical NCHW shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgetune.kernels.base import FP32, FP32_NHWC, Converter, Format

FP16 = Format("NCHW", "float16")
FP16_NHWC = Format("NHWC", "float16")


class FunctionConverter(Converter):
    """A converter whose function does not depend on the shape."""

    def __init__(self, name: str, library: str, src: Format, dst: Format, fn: Callable[[Any], Any]) -> None:
        self.name, self.library, self.src, self.dst = name, library, src, dst
        self._fn = fn

    def prepare(self, shape: tuple[int, ...]) -> Callable[[Any], Any]:
        return self._fn


def _nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _cast(dtype: type) -> Callable[[np.ndarray], np.ndarray]:
    def cast(x: np.ndarray) -> np.ndarray:
        return x.astype(dtype)

    return cast


U8_PLACEHOLDER = Format("NCHW", "uint8", 1.0, 0)  # a quantised edge's family; real parameters bind later


class AffineU8Converter(Converter):
    """fp32 <-> uint8 as ONNX's QuantizeLinear / DequantizeLinear compute it (x / scale rounded half to even,
    plus the zero point, saturated), for whatever (scale, zero point) the quantised side carries: one
    converter per direction, timed once per shape (its cost does not depend on the parameters)."""

    any_parameters = True

    def __init__(self, name: str, quantise: bool, quantised: Format = U8_PLACEHOLDER) -> None:
        self.name, self.library, self.quantise = name, "numpy", quantise
        self.src, self.dst = (FP32, quantised) if quantise else (quantised, FP32)

    def bound(self, src: Format, dst: Format) -> Converter:
        return AffineU8Converter(self.name, self.quantise, dst if self.quantise else src)

    def prepare(self, shape: tuple[int, ...]) -> Callable[[Any], Any]:
        q = self.dst if self.quantise else self.src
        scale, zero_point = np.float32(q.scale), np.float32(q.zero_point)
        if self.quantise:
            def quantise(x: np.ndarray) -> np.ndarray:
                y = np.rint(x / scale)
                y += zero_point
                return np.clip(y, 0, 255, out=y).astype(np.uint8)

            return quantise

        def dequantise(x: np.ndarray) -> np.ndarray:
            y = x.astype(np.float32)
            y -= zero_point
            y *= scale
            return y

        return dequantise


CONVERTERS: list[Converter] = [
    FunctionConverter("nchw_to_nhwc.numpy", "numpy", FP32, FP32_NHWC, _nchw_to_nhwc),
    FunctionConverter("nhwc_to_nchw.numpy", "numpy", FP32_NHWC, FP32, _nhwc_to_nchw),
    FunctionConverter("cast_fp16.numpy", "numpy", FP32, FP16, _cast(np.float16)),
    FunctionConverter("cast_fp32.numpy", "numpy", FP16, FP32, _cast(np.float32)),
    FunctionConverter("cast_fp16_nhwc.numpy", "numpy", FP32_NHWC, FP16_NHWC, _cast(np.float16)),
    FunctionConverter("cast_fp32_nhwc.numpy", "numpy", FP16_NHWC, FP32_NHWC, _cast(np.float32)),
    AffineU8Converter("quantize_u8.numpy", quantise=True),
    AffineU8Converter("dequantize_u8.numpy", quantise=False),
]
