"""Calibration arithmetic shared by the int8 primitives of every library (numpy only).

Why one place: torch and ONNX Runtime int8 kernels must quantise the same way (affine uint8
activations from representative samples, symmetric per-channel int8 weights) so that their
verification errors are comparable and a fix lands in both.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from edgetune.device.cpu import features, fingerprint
from edgetune.graph.ir import Activation, Graph
from edgetune.graph.reference import reference_samples
from edgetune.kernels.base import Format, PrepareContext

INT8_MAX_REDUCED = 63  # 7-bit weights: u8 x s8 pair sums stay below int16 (2*255*63 < 32767) on AVX2 without VNNI
_STAND_IN: weakref.WeakKeyDictionary[Graph, dict[str, tuple[float, int]]] = weakref.WeakKeyDictionary()


def relu_like(act: Activation | None) -> bool:
    """True when the activation zeroes negatives (Relu, Clip with min >= 0): the quantised output
    range then starts at 0 and int8 kernels can fuse a ReLU."""
    return act is not None and (
        act.op == "Relu" or (act.op == "Clip" and act.params.get("min", -np.inf) >= 0.0)
    )


def u8s8_saturates(fp: dict[str, Any] | None = None) -> bool:
    """True on x86 without VNNI: there ONNX Runtime's and OpenVINO's u8 x s8 kernels sum pairs of products
    in int16 (VPMADDUBSW) and saturate with full-range weights (MobileNet V2 all-int8, random-normal
    inputs, AMD EPYC AVX2: 21.8 dB against 30.9 dB for the same QDQ model run in float, 27.5 dB with
    7-bit weights), so weights must be 7-bit (`INT8_MAX_REDUCED`)."""
    fp = fp or fingerprint()
    arm = fp["arch"] in ("aarch64", "arm64") or fp["arch"].startswith("arm")
    return not arm and not features(fp)["VNNI"]


def input_sample(ctx: PrepareContext, value: str, shape: tuple[int, ...]) -> np.ndarray:
    """The calibration sample for `value`, or a ReLU-like stand-in (|N(0,1)|) when none was given."""
    x = ctx.samples.get(value)
    if x is not None:
        return np.asarray(x, dtype=np.float32)
    return np.abs(np.random.default_rng(0).standard_normal(shape)).astype(np.float32)


def act_qparams(x: np.ndarray, qmax: int = 255) -> tuple[float, int]:
    """(scale, zero_point) mapping [min(x, 0), max(x, 0)] onto uint8 0..qmax (qmax 127: reduce_range)."""
    lo, hi = min(float(np.min(x)), 0.0), max(float(np.max(x)), 0.0)
    if hi - lo < 1e-12:
        hi = lo + 1.0
    scale = (hi - lo) / qmax
    zp = int(np.clip(round(-lo / scale), 0, qmax))
    return scale, zp


def weight_scales(w: np.ndarray, qmax: int = 127) -> np.ndarray:
    """Symmetric per-output-channel scales (axis 0); all-zero channels get scale 1."""
    m = np.abs(w.reshape(w.shape[0], -1)).max(axis=1).astype(np.float64)
    m[m == 0] = qmax
    return m / qmax


def quantize_weights(w: np.ndarray, scales: np.ndarray, qmax: int = 127) -> np.ndarray:
    """Per-channel symmetric int8 weights (values in [-qmax, qmax])."""
    s = scales.reshape((-1,) + (1,) * (w.ndim - 1))
    return np.clip(np.rint(w / s), -qmax, qmax).astype(np.int8)


def edge_qparams(graph: Graph, value: str) -> tuple[float, int]:
    """The uint8 (scale, zero point) of `value` on an int8 edge. Producer and consumer both read it here, so
    consecutive int8 nodes agree without a requantisation between them. From the graph's calibration where
    it has one (a plan's quantisation spec: real data), else from one reference run on the stand-in inputs,
    computed once per graph (as the other int8 primitives calibrate on those samples)."""
    table = graph.activation_qparams or {}
    if value in table:
        return table[value]
    try:
        return stand_in_qparams(graph)[value]
    except KeyError:
        raise ValueError(f"no calibrated range for value {value!r}") from None


def stand_in_qparams(graph: Graph, samples: dict[str, np.ndarray] | None = None) -> dict[str, tuple[float, int]]:
    """Per float value, the uint8 parameters of its reference activation on the stand-in inputs, computed
    once per graph; `samples`: that reference run when the caller has already made it (the executor does)."""
    standin = _STAND_IN.get(graph)
    if standin is None:
        samples = reference_samples(graph) if samples is None else samples
        standin = _STAND_IN[graph] = {v: act_qparams(x) for v, x in samples.items()
                                      if np.issubdtype(np.asarray(x).dtype, np.floating)}
    return standin


def u8_format(graph: Graph, value: str) -> Format:
    """The format of `value` held as uint8 with its calibrated parameters (NCHW)."""
    scale, zero_point = edge_qparams(graph, value)
    return Format("NCHW", "uint8", scale, zero_point)
