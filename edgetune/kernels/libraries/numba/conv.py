"""numba JIT convolutions: a parallel depthwise loop and a blocked direct convolution.

Why: depthwise layers are memory-bound and a fused loop (taps, bias and Relu/Clip in one pass, prange
over channels) beats both im2col's tiny GEMMs and numpy's k*k temporaries; the blocked direct conv is the
baseline a compiled kernel gives before any transform (and the route to a fused Winograd later).
Compiled lazily (first prepare), cached on disk; prepare runs the kernel once so no timing sees the JIT.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from edgetune.graph.ir import Node
from edgetune.kernels.base import FunctionKernel, Kernel, PrepareContext, apply_activation, conv_params
from edgetune.kernels.libraries.numpy.conv import NumpyConv, PaddedBuffer, conv_weights

_BLOCK = 8  # output channels per input-row load in the direct kernel


@numba.njit(parallel=True, fastmath=True, cache=True)
def _dw_kernel(xp, w, b, out, sh, sw, dh, dw, lo, hi):  # pragma: no cover - compiled
    n, c, oh, ow = out.shape
    kh, kw = w.shape[1], w.shape[2]
    for nc in numba.prange(n * c):
        bi, ci = nc // c, nc % c
        for y in range(oh):
            row = out[bi, ci, y]
            for x in range(ow):
                row[x] = b[ci]
            for i in range(kh):
                src = xp[bi, ci, y * sh + i * dh]
                for j in range(kw):
                    wv = w[ci, i, j]
                    off = j * dw
                    if sw == 1:  # contiguous loads: this branch is the one LLVM vectorises
                        for x in range(ow):
                            row[x] += wv * src[x + off]
                    else:
                        for x in range(ow):
                            row[x] += wv * src[x * sw + off]
            for x in range(ow):
                row[x] = min(max(row[x], lo), hi)


@numba.njit(parallel=True, fastmath=True, cache=True)
def _direct_kernel(xp, w, b, out, sh, sw, dh, dw, lo, hi):  # pragma: no cover - compiled
    n, co, oh, ow = out.shape
    c, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    nblk = (co + _BLOCK - 1) // _BLOCK
    for job in numba.prange(n * nblk * oh):
        bi = job // (nblk * oh)
        blk = (job // oh) % nblk
        y = job % oh
        o0 = blk * _BLOCK
        cb = min(_BLOCK, co - o0)
        acc = np.zeros((_BLOCK, ow), np.float32)
        for ci in range(c):
            for i in range(kh):
                src = xp[bi, ci, y * sh + i * dh]
                for j in range(kw):
                    off = j * dw
                    # a contiguous segment when stride is 1: the inner loop then vectorises
                    seg = src[off : off + ow] if sw == 1 else src[off : off + (ow - 1) * sw + 1 : sw]
                    for k in range(cb):
                        wv = w[o0 + k, ci, i, j]
                        a = acc[k]
                        for x in range(ow):
                            a[x] += wv * seg[x]
        for k in range(cb):
            for x in range(ow):
                out[bi, o0 + k, y, x] = min(max(acc[k, x] + b[o0 + k], lo), hi)


def _clamp(node: Node) -> tuple[float, float, bool]:
    """(lo, hi, fused): Relu/Clip become the kernel's clamp; any other activation runs afterwards."""
    act = node.activation
    if act is None:
        return -np.inf, np.inf, True
    if act.op == "Relu":
        return 0.0, np.inf, True
    if act.op == "Clip":
        return float(act.params.get("min", -np.inf)), float(act.params.get("max", np.inf)), True
    return -np.inf, np.inf, False


class _NumbaConv(NumpyConv):
    library = "numba"
    measure_last = True  # compiles on first call; rarely the best, so timed after the others
    tolerance = 1e-4
    _fn: Any = None

    def layout_weights(self, w: np.ndarray) -> np.ndarray:
        return w

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        cp = conv_params(node, ctx.graph)
        w, bias = conv_weights(node, ctx.graph)
        wk = np.ascontiguousarray(self.layout_weights(w))
        b = bias if bias is not None else np.zeros(cp["co"], np.float32)
        lo, hi, fused = _clamp(node)
        pad = PaddedBuffer((cp["n"], cp["c"], cp["h"], cp["w"]), cp["pads"])
        scratch = ctx.workspace.request(pad.spec)
        geom = (*cp["strides"], *cp["dilations"], lo, hi)
        shape = (cp["n"], cp["co"], cp["oh"], cp["ow"])
        fn = type(self)._fn
        act = None if fused else node.activation

        def run(x: np.ndarray) -> list[Any]:
            out = np.empty(shape, np.float32)
            fn(pad(np.ascontiguousarray(x, dtype=np.float32), scratch.arrays()[0]), wk, b, out, *geom)
            return [apply_activation(out, act)]

        run(np.zeros((cp["n"], cp["c"], cp["h"], cp["w"]), np.float32))  # compile/load outside timings
        return FunctionKernel(run, weight_bytes=wk.nbytes + b.nbytes, scratch=scratch)


class NumbaDepthwise(_NumbaConv):
    """Depthwise, any kernel size, stride, dilation and padding."""

    name = "conv.direct_dw.numba"
    _fn = _dw_kernel

    def restrict(self, cp: dict[str, Any]) -> str | None:
        if not cp["depthwise"]:
            return f"group {cp['group']}: needs depthwise (group == in == out channels)"
        return None

    def layout_weights(self, w: np.ndarray) -> np.ndarray:
        return w.reshape(w.shape[0], w.shape[2], w.shape[3])


class NumbaDirect(_NumbaConv):
    """Blocked direct convolution, group 1: 8 output channels share each loaded input row."""

    name = "conv.direct.numba"
    _fn = _direct_kernel

    def restrict(self, cp: dict[str, Any]) -> str | None:
        if cp["group"] != 1:
            return f"group {cp['group']}: direct numba kernel needs group 1"
        return None


PRIMITIVES = [NumbaDepthwise(), NumbaDirect()]
