"""Quantisation arithmetic (numpy only): the one definition of scale, zero point and rounding.

Activations are per-tensor asymmetric uint8 (0..qmax), weights per-channel symmetric int8 (-qmax..qmax,
zero point 0), as ONNX Runtime's and OpenVINO's int8 kernels expect. The weight scales are those of
`kernels.int8_calib` (the int8 primitives' own calibration), so every int8 path in edgetune rounds alike.
"""

from __future__ import annotations

import numpy as np

from edgetune.kernels import int8_calib

# defined beside the int8 kernels, which need them too; the quantisation tools read them from here
from edgetune.kernels.int8_calib import INT8_MAX_REDUCED as INT8_MAX_REDUCED
from edgetune.kernels.int8_calib import u8s8_saturates as u8s8_saturates

UINT8_MAX = 255
INT8_MAX = 127
INT32 = np.iinfo(np.int32)


def affine_qparams(lo: float, hi: float, qmax: int = UINT8_MAX) -> tuple[float, int]:
    """(scale, zero_point) mapping [min(lo, 0), max(hi, 0)] onto 0..qmax; zero is exact (a zero point).

    The range is widened to contain 0 so that zero padding and ReLU zeros quantise without error; a
    degenerate range (a constant-zero tensor) gets [0, 1]."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise ValueError(f"range [{lo}, {hi}] is not finite")
    if hi - lo < 1e-12:
        hi = lo + 1.0
    scale = float(np.float32((hi - lo) / qmax))
    zero_point = int(np.clip(round(-lo / scale), 0, qmax))
    return scale, zero_point


def representable(scale: float, zero_point: int, qmax: int = UINT8_MAX) -> tuple[float, float]:
    """The float interval an affine quantiser covers (its clipping bounds)."""
    return (0 - zero_point) * scale, (qmax - zero_point) * scale


def quantize_affine(x: np.ndarray, scale: float, zero_point: int, qmax: int = UINT8_MAX) -> np.ndarray:
    """uint8 codes of x (round half to even, as QuantizeLinear)."""
    return np.clip(np.rint(np.asarray(x, np.float64) / scale) + zero_point, 0, qmax).astype(np.uint8)


def dequantize_affine(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((q.astype(np.float64) - zero_point) * scale).astype(np.float32)


def fake_quant(x: np.ndarray, scale: float, zero_point: int, qmax: int = UINT8_MAX) -> np.ndarray:
    """x quantised and dequantised: what the int8 model sees in place of x."""
    return dequantize_affine(quantize_affine(x, scale, zero_point, qmax), scale, zero_point)


def weight_scales(w: np.ndarray, axis: int, qmax: int = INT8_MAX, per_channel: bool = True) -> np.ndarray:
    """Symmetric per-channel scales (max |w| / qmax along every axis but `axis`), float32; an all-zero
    channel gets scale 1. `per_channel=False`: one scale for the whole tensor, repeated per channel."""
    scales = int8_calib.weight_scales(np.moveaxis(np.asarray(w), axis, 0), qmax).astype(np.float32)
    if per_channel:
        return scales
    m = float(np.max(np.abs(w))) if np.asarray(w).size else 0.0
    return np.full_like(scales, m / qmax if m > 0 else 1.0)


def quantize_weights(w: np.ndarray, scales: np.ndarray, axis: int, qmax: int = INT8_MAX) -> np.ndarray:
    """int8 codes of w with per-channel `scales` along `axis`."""
    q = int8_calib.quantize_weights(np.moveaxis(np.asarray(w, np.float32), axis, 0), scales, qmax)
    return np.ascontiguousarray(np.moveaxis(q, 0, axis))


def quantize_bias(b: np.ndarray, input_scale: float, w_scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int32 codes, float32 scales) of a bias in units of input_scale * weight scale, the scale an int8
    conv/GEMM accumulates in (ONNX Runtime's QLinearConv takes the codes and ignores the DQ's scale, so it
    must be exactly this product, computed in float32 as ORT does)."""
    scales = (np.float32(input_scale) * np.asarray(w_scales, np.float32)).astype(np.float32)
    codes = np.clip(np.rint(np.asarray(b, np.float64) / scales), INT32.min, INT32.max).astype(np.int32)
    return codes, scales


def widen_for_bias(b: np.ndarray, input_scale: float, w_scales: np.ndarray) -> np.ndarray:
    """Weight scales raised where the bias would not fit int32 (with a factor 2 to spare for rounding) in
    units of input_scale * scale: channels whose weights are near zero but whose bias is not."""
    need = np.abs(np.asarray(b, np.float64)) / (float(input_scale) * (INT32.max // 2))
    return np.maximum(np.asarray(w_scales, np.float32), need.astype(np.float32))
