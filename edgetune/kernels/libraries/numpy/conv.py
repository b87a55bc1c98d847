"""Convolution and GEMM primitives on NumPy/OpenBLAS: the paper's "BLAS fp32 baseline" and its siblings.

Why several numpy algorithms: im2col+sgemm is the baseline every speed-up is measured against; 1x1 as a
plain GEMM skips the copy; a shift-and-add depthwise avoids 9-wide GEMMs; fp16 weight storage halves
weight memory. Winograd and FFT live in `winograd.py` / `fft.py`
beside this module.

Scratch (padded input, im2col patches, fp32 weights cast from fp16) comes from the plan's shared
`Workspace` (`ctx.workspace`, kernels/base.py): one arena sized by the largest layer's request, as in
Caffe or Darknet, instead of buffers owned by every kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.base import (
    ArraySpec,
    FunctionKernel,
    Kernel,
    PrepareContext,
    Primitive,
    apply_activation,
    conv_params,
)

CONV = frozenset({"Conv"})


# ---- helpers shared by every numpy/numba convolution -------------------------------------------


def conv_check(node: Node, graph: Graph) -> str | None:
    """Why a Conv cannot run on a weights-are-constant kernel (None when it can)."""
    if len(graph.shape(node.inputs[0])) != 4:
        return "only 2-D convolution (4-D input)"
    if node.inputs[1] not in graph.initializers:
        return "weights must be constant"
    if len(node.inputs) > 2 and node.inputs[2] and node.inputs[2] not in graph.initializers:
        return "bias must be constant"
    if graph.dynamic_inputs(node) != [node.inputs[0]]:
        return "needs exactly one dynamic input (X)"
    return None


def conv_weights(node: Node, graph: Graph) -> tuple[np.ndarray, np.ndarray | None]:
    """Weight (Co, C/g, kh, kw) and bias (Co,) as fresh float32 arrays."""
    w = np.array(graph.initializers[node.inputs[1]], dtype=np.float32)
    b = None
    if len(node.inputs) > 2 and node.inputs[2]:
        b = np.array(graph.initializers[node.inputs[2]], dtype=np.float32).reshape(-1)
    return w, b


class PaddedBuffer:
    """The geometry of padding an (N, C, H, W) (or NHWC) float32 input by `pads` (t, l, b, r) with `fill`
    into an (N, C, H+t+b, W+l+r) buffer; the buffer itself is scratch from the shared workspace
    (`spec`, None when there is nothing to pad).

    `pad(x, buf)` writes the whole buffer on every call: the four border strips with `fill`, then the
    interior with `x`. (A buffer owned by one kernel could keep its border from one call to the next;
    shared scratch cannot, since other kernels write there in between. The border is a small fraction
    of the interior copy.)"""

    def __init__(self, shape: tuple[int, ...], pads: tuple[int, ...], nhwc: bool = False,
                 fill: float = 0.0) -> None:
        t, l, b, r = (int(p) for p in pads)
        self.trivial = not any(pads)
        self.fill = np.float32(fill)
        ax = (1, 2) if nhwc else (2, 3)
        h, w = shape[ax[0]], shape[ax[1]]
        hp, wp = h + t + b, w + l + r
        padded = list(shape)
        padded[ax[0]], padded[ax[1]] = hp, wp
        self.shape = tuple(padded)

        def index(rows: slice, cols: slice) -> tuple[slice, ...]:
            idx = [slice(None)] * 4
            idx[ax[0]], idx[ax[1]] = rows, cols
            return tuple(idx)

        every, mid = slice(None), slice(t, t + h)
        strips = [(t, index(slice(0, t), every)), (b, index(slice(t + h, hp), every)),
                  (l, index(mid, slice(0, l))), (r, index(mid, slice(l + w, wp)))]
        self.border = [idx for size, idx in strips if size > 0]
        self.inner = index(mid, slice(l, l + w))
        self.spec: ArraySpec | None = None if self.trivial else (self.shape, np.float32)

    def __call__(self, x: np.ndarray, buf: np.ndarray | None) -> np.ndarray:
        """`x` padded, in `buf` (a view of this kernel's scratch of shape `self.shape`), or `x` itself
        when there is nothing to pad."""
        if self.trivial:
            return x
        for idx in self.border:
            buf[idx] = self.fill
        np.copyto(buf[self.inner], x)
        return buf


def tap(xp: np.ndarray, i: int, j: int, cp: dict[str, Any], nhwc: bool = False) -> np.ndarray:
    """The strided view of padded input that kernel tap (i, j) multiplies, shape (..., OH, OW)."""
    (sh, sw), (dh, dw) = cp["strides"], cp["dilations"]
    hs = slice(i * dh, i * dh + sh * (cp["oh"] - 1) + 1, sh)
    ws = slice(j * dw, j * dw + sw * (cp["ow"] - 1) + 1, sw)
    return xp[:, hs, ws, :] if nhwc else xp[:, :, hs, ws]


def finish(y: np.ndarray, bias: np.ndarray | None, node: Node, nhwc: bool = False) -> np.ndarray:
    """Add bias (per channel) and the fused activation, in place on the kernel's fresh output."""
    if bias is not None:
        y += bias if nhwc else bias.reshape(-1, 1, 1)
    return apply_activation(y, node.activation)


class NumpyConv(Primitive):
    """Shared `supports` for numpy convolutions; subclasses add their own restrictions in `restrict`."""

    library = "numpy"
    op_types = CONV

    def supports(self, node: Node, graph: Graph) -> str | None:
        reason = conv_check(node, graph)
        return reason or self.restrict(conv_params(node, graph))

    def restrict(self, cp: dict[str, Any]) -> str | None:
        return None


# ---- im2col + sgemm (the BLAS fp32 baseline) --------------------------------------------------


class Im2colConv(NumpyConv):
    """im2col (k*k strided copies into one buffer) then ONE batched sgemm over (batch, group).

    Grouped and depthwise convolutions are a (G, Og, Cg*k*k) @ (N, G, Cg*k*k, OH*OW) matmul, not a
    Python loop over groups. With `fp16w` the weights are held as float16 and cast into an fp32
    buffer on every call (half the resident weight memory, one cheap cast per call).
    """

    def __init__(self, fp16w: bool = False) -> None:
        self.fp16w = fp16w
        self.name = "conv.im2col.numpy" + (".fp16w" if fp16w else "")
        self.precision = "fp16w" if fp16w else "fp32"
        self.tolerance = 2e-3 if fp16w else 1e-4

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        cp = conv_params(node, ctx.graph)
        w, bias = conv_weights(node, ctx.graph)
        n, c, g, co = cp["n"], cp["c"], cp["group"], cp["co"]
        kh, kw, oh, ow = cp["kh"], cp["kw"], cp["oh"], cp["ow"]
        k = c // g * kh * kw
        wg = np.ascontiguousarray(w.reshape(g, co // g, k))
        held, w32_spec = _hold_weights(wg, self.fp16w)
        direct = kh == kw == 1 and cp["strides"] == (1, 1) and not any(cp["pads"])
        pad = PaddedBuffer((n, c, cp["h"], cp["w"]), cp["pads"])
        cols_spec = None if direct else ((n, c, kh, kw, oh, ow), np.float32)
        scratch = ctx.workspace.request(pad.spec, cols_spec, w32_spec)

        def run(x: np.ndarray) -> list[Any]:
            pbuf, cols, wbuf = scratch.arrays()
            if cols is None:
                mat = x.reshape(n, g, k, oh * ow)
            else:
                xp = pad(x, pbuf)
                for i in range(kh):
                    for j in range(kw):
                        np.copyto(cols[:, :, i, j], tap(xp, i, j, cp))
                mat = cols.reshape(n, g, k, oh * ow)
            y = np.matmul(_fp32_weights(held, wbuf), mat).reshape(n, co, oh, ow)
            return [finish(y, bias, node)]

        return FunctionKernel(run, weight_bytes=_nbytes(held, bias), scratch=scratch)


class Im2colNhwcConv(NumpyConv):
    """im2col in NHWC: patches as rows (N*OH*OW, k*k*C) times weights (k*k*C, Co); the output is NHWC
    with no transpose for group 1. Grouped: one batched matmul over groups on a strided view."""

    name = "conv.im2col_nhwc.numpy"
    layout = "NHWC"

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        cp = conv_params(node, ctx.graph)
        w, bias = conv_weights(node, ctx.graph)
        n, c, g, co = cp["n"], cp["c"], cp["group"], cp["co"]
        kh, kw, oh, ow = cp["kh"], cp["kw"], cp["oh"], cp["ow"]
        cg, og, p = c // g, co // g, n * cp["oh"] * cp["ow"]
        # (G, Og, Cg, kh, kw) -> (G, kh, kw, Cg, Og): rows ordered like the patch columns below.
        wk = np.ascontiguousarray(w.reshape(g, og, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(g, -1, og))
        pad = PaddedBuffer((n, cp["h"], cp["w"], c), cp["pads"], nhwc=True)
        # patch buffer (N, OH, OW, G, kh, kw, Cg): each tap copies a (N, OH, OW, G, Cg) view.
        scratch = ctx.workspace.request(pad.spec, ((n, oh, ow, g, kh, kw, cg), np.float32))

        def run(x: np.ndarray) -> list[Any]:
            pbuf, cols = scratch.arrays()
            xp = pad(x, pbuf)
            for i in range(kh):
                for j in range(kw):
                    np.copyto(
                        cols[:, :, :, :, i, j, :], tap(xp, i, j, cp, nhwc=True).reshape(n, oh, ow, g, cg)
                    )
            if g == 1:
                y = (cols.reshape(p, -1) @ wk[0]).reshape(n, oh, ow, co)
            else:
                yg = np.matmul(cols.reshape(p, g, -1).transpose(1, 0, 2), wk)  # (G, P, Og)
                y = np.ascontiguousarray(yg.transpose(1, 0, 2)).reshape(n, oh, ow, co)
            return [finish(y, bias, node, nhwc=True)]

        return FunctionKernel(run, weight_bytes=_nbytes(wk, bias), scratch=scratch)


class Gemm1x1Conv(NumpyConv):
    """1x1, stride 1, no padding, group 1: the input already is the GEMM operand, y = W @ X."""

    name = "conv.gemm1x1.numpy"

    def restrict(self, cp: dict[str, Any]) -> str | None:
        if (cp["kh"], cp["kw"]) != (1, 1):
            return f"kernel_shape {cp['kh']}x{cp['kw']}: needs 1x1"
        if cp["strides"] != (1, 1):
            return f"strides {list(cp['strides'])}: needs stride 1"
        if any(cp["pads"]):
            return f"pads {list(cp['pads'])}: needs no padding"
        if cp["group"] != 1:
            return f"group {cp['group']}: needs group 1"
        return None

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        cp = conv_params(node, ctx.graph)
        w, bias = conv_weights(node, ctx.graph)
        w2 = np.ascontiguousarray(w.reshape(cp["co"], cp["c"]))
        n, hw = cp["n"], cp["h"] * cp["w"]

        def run(x: np.ndarray) -> list[Any]:
            y = np.matmul(w2, x.reshape(n, cp["c"], hw)).reshape(n, cp["co"], cp["h"], cp["w"])
            return [finish(y, bias, node)]

        return FunctionKernel(run, weight_bytes=_nbytes(w2, bias))


class DirectDepthwiseConv(NumpyConv):
    """Depthwise as k*k vectorised multiply-adds over shifted views (no im2col copy, no tiny GEMMs)."""

    name = "conv.direct_dw.numpy"

    def restrict(self, cp: dict[str, Any]) -> str | None:
        if not cp["depthwise"]:
            return f"group {cp['group']}: needs depthwise (group == in == out channels)"
        return None

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        cp = conv_params(node, ctx.graph)
        w, bias = conv_weights(node, ctx.graph)
        n, c, kh, kw, oh, ow = cp["n"], cp["c"], cp["kh"], cp["kw"], cp["oh"], cp["ow"]
        taps = np.ascontiguousarray(w.reshape(c, kh, kw).transpose(1, 2, 0)).reshape(kh, kw, c, 1, 1)
        pad = PaddedBuffer((n, c, cp["h"], cp["w"]), cp["pads"])
        scratch = ctx.workspace.request(pad.spec, ((n, c, oh, ow), np.float32))

        def run(x: np.ndarray) -> list[Any]:
            pbuf, tmp = scratch.arrays()
            xp = pad(x, pbuf)
            y = np.multiply(tap(xp, 0, 0, cp), taps[0, 0])
            for i in range(kh):
                for j in range(kw):
                    if i or j:
                        np.multiply(tap(xp, i, j, cp), taps[i, j], out=tmp)
                        y += tmp
            return [finish(y, bias, node)]

        return FunctionKernel(run, weight_bytes=_nbytes(taps, bias), scratch=scratch)


# ---- Gemm / MatMul ---------------------------------------------------------------------------------


class NumpyGemm(Primitive):
    """Gemm (transA/transB/alpha/beta, C broadcast) and MatMul (N-D, constant or dynamic B) via
    np.matmul; constant operands are transposed and alpha-scaled once at prepare. The fp16w variant
    needs a constant B, holds it as float16 and casts it into an fp32 buffer per call."""

    library = "numpy"
    op_types = frozenset({"Gemm", "MatMul"})

    def __init__(self, fp16w: bool = False) -> None:
        self.fp16w = fp16w
        self.name = "gemm.numpy" + (".fp16w" if fp16w else "")
        self.precision = "fp16w" if fp16w else "fp32"
        self.tolerance = 2e-3 if fp16w else 1e-4

    def supports(self, node: Node, graph: Graph) -> str | None:
        if node.op == "Gemm":
            if len(graph.shape(node.inputs[0])) != 2 or len(graph.shape(node.inputs[1])) != 2:
                return "Gemm needs 2-D A and B"
        elif min(len(graph.shape(node.inputs[0])), len(graph.shape(node.inputs[1]))) < 1:
            return "MatMul needs operands of rank >= 1"
        if any(graph.dtype(i) != "float32" for i in node.inputs if i):
            return "float32 operands only"
        if self.fp16w and node.inputs[1] not in graph.initializers:
            return "fp16w needs a constant B (weights)"
        return None

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        g = ctx.graph
        gemm = node.op == "Gemm"
        ta, tb = (int(node.attr("transA", 0)), int(node.attr("transB", 0))) if gemm else (0, 0)
        alpha, beta = (float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))) if gemm else (1.0, 1.0)
        consts = g.weights(node)
        names = list(node.inputs)

        def fix(pos: int, a: np.ndarray) -> np.ndarray:
            """Operand `pos` as used in the product: transposed, alpha/beta folded (const or dynamic)."""
            a = np.asarray(a, np.float32)
            if pos == 0 and ta:
                a = a.T
            if pos == 1:
                a = a.T if tb else a
                a = a * np.float32(alpha) if alpha != 1.0 else a
            if pos == 2 and beta != 1.0:
                a = a * np.float32(beta)
            return a

        fixed: list[np.ndarray | None] = [
            None if c is None else np.ascontiguousarray(fix(pos, c)) for pos, c in enumerate(consts)
        ]
        held, w32_spec = (None, None)
        if fixed[1] is not None:
            held, w32_spec = _hold_weights(fixed[1], self.fp16w)
        scratch = ctx.workspace.request(w32_spec)
        dyn_pos = [pos for pos, nm in enumerate(names) if nm and nm not in g.initializers]
        has_c = len(names) > 2 and bool(names[2])
        act = node.activation

        def run(*xs: np.ndarray) -> list[Any]:
            ops = list(fixed)
            for pos, x in zip(dyn_pos, xs, strict=True):
                ops[pos] = fix(pos, x)
            b = _fp32_weights(held, scratch.arrays()[0]) if held is not None else ops[1]
            y = np.matmul(ops[0], b)
            if has_c:
                y += ops[2]
            return [apply_activation(y, act)]

        wb = _nbytes(held, *(f for pos, f in enumerate(fixed) if pos != 1))
        return FunctionKernel(run, weight_bytes=wb, scratch=scratch)


# ---- small utilities ---------------------------------------------------------------------------


def _hold_weights(w: np.ndarray, fp16w: bool) -> tuple[np.ndarray, ArraySpec | None]:
    """(array held by the kernel, the fp32 scratch its fp16 copy is cast into per call, None for fp32)."""
    if not fp16w:
        return w, None
    return w.astype(np.float16), (w.shape, np.float32)


def _fp32_weights(held: np.ndarray, buf: np.ndarray | None) -> np.ndarray:
    """The fp32 weights for this call: `held` itself, or its fp16 copy cast into the scratch `buf`."""
    if buf is None:
        return held
    np.copyto(buf, held)
    return buf


def _nbytes(*arrays: np.ndarray | None) -> int:
    return sum(a.nbytes for a in arrays if a is not None)


PRIMITIVES = [
    Im2colConv(),
    Im2colConv(fp16w=True),
    Im2colNhwcConv(),
    Gemm1x1Conv(),
    DirectDepthwiseConv(),
    NumpyGemm(),
    NumpyGemm(fp16w=True),
]
