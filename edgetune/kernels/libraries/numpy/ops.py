"""Non-convolution ops in NumPy: NHWC variants (so a run of NHWC layers needs no conversions between
them) and fast NCHW pooling / binary ops (tap loops and in-place activations instead of generic code).

Formats: `<op>.nhwc.numpy` takes and returns NHWC, except GlobalAveragePool, which takes NHWC and
returns NCHW (N, C, 1, 1): with a 1x1 spatial size both layouts are the same bytes, and its consumers
(Flatten, Gemm, SE-block Mul) are usually NCHW. Shape ops (Reshape/Flatten/Transpose/Softmax) stay with
the reference primitives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.base import (
    FP32,
    Format,
    FunctionKernel,
    Kernel,
    PrepareContext,
    Primitive,
    apply_activation,
)
from edgetune.kernels.libraries.numpy.conv import PaddedBuffer


class _LayoutOp(Primitive):
    """Every dynamic input and the output in one layout; NHWC needs 4-D float32 tensors."""

    library = "numpy"

    def __init__(self, family: str, ops: set[str], layout: str) -> None:
        self.name = f"{family}.{layout.lower()}.numpy"
        self.op_types = frozenset(ops)
        self.layout = layout

    def supports(self, node: Node, graph: Graph) -> str | None:
        dyn = graph.dynamic_inputs(node)
        if not dyn:
            return "no dynamic input"
        reason = self.check(node, graph)
        if reason:
            return reason
        if any(graph.dtype(v) != "float32" for v in dyn + node.outputs[:1]):
            return "float32 tensors only"
        if self.layout == "NHWC" and any(len(graph.shape(v)) != 4 for v in dyn + node.outputs[:1]):
            return "NHWC needs 4-D tensors"
        return None

    def check(self, node: Node, graph: Graph) -> str | None:
        return None


# ---- elementwise activations --------------------------------------------------------------------


def _clip_bounds(node: Node, graph: Graph) -> tuple[float, float] | str:
    """Clip's bounds from opset-11+ constant inputs or opset-6 attributes."""
    lo, hi = float(node.attr("min", -np.inf)), float(node.attr("max", np.inf))
    for pos in (1, 2):
        if len(node.inputs) > pos and node.inputs[pos]:
            v = graph.initializers.get(node.inputs[pos])
            if v is None:
                return "Clip bounds must be constant"
            if pos == 1:
                lo = float(v)
            else:
                hi = float(v)
    return lo, hi


def _unary(node: Node, graph: Graph) -> Callable[[np.ndarray], np.ndarray]:
    """An out-of-place float32 function for the node's op (one pass over memory where numpy allows)."""
    op, f32 = node.op, np.float32
    if op == "Relu":
        return lambda x: np.maximum(x, f32(0))
    if op == "Clip":
        bounds = _clip_bounds(node, graph)
        assert not isinstance(bounds, str), bounds
        lo, hi = bounds
        return lambda x: np.clip(x, f32(lo), f32(hi))
    if op == "LeakyRelu":
        alpha = f32(node.attr("alpha", 0.01))
        return lambda x: np.where(x >= 0, x, x * alpha)
    if op == "Sigmoid":
        return _sigmoid
    if op == "Tanh":
        return np.tanh
    if op == "HardSigmoid":
        a, b = f32(node.attr("alpha", 0.2)), f32(node.attr("beta", 0.5))
        return lambda x: np.clip(_axpb(x, a, b), f32(0), f32(1), out=None)
    if op == "HardSwish":
        return lambda x: x * np.clip(_axpb(x, f32(1 / 6), f32(0.5)), f32(0), f32(1))
    raise ValueError(op)


def _axpb(x: np.ndarray, a: np.float32, b: np.float32) -> np.ndarray:
    y = x * a
    y += b
    return y


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in one fresh array (exp overflow to inf gives the right 0)."""
    y = np.negative(x)
    with np.errstate(over="ignore"):
        np.exp(y, out=y)
    y += np.float32(1)
    return np.reciprocal(y, out=y)


class Unary(_LayoutOp):
    def check(self, node: Node, graph: Graph) -> str | None:
        if node.op == "Clip":
            b = _clip_bounds(node, graph)
            return b if isinstance(b, str) else None
        return None

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        fn, act = _unary(node, ctx.graph), node.activation

        def run(x: np.ndarray) -> list[Any]:
            return [apply_activation(fn(x), act)]

        return FunctionKernel(run)


# ---- binary arithmetic with broadcasting ------------------------------------------------------------

_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


class Binary(_LayoutOp):
    """Add/Sub/Mul/Div: two dynamic tensors (broadcasting as ONNX does) or one and a constant. For NHWC
    the constant is lifted to rank 4 and transposed once at prepare (a per-channel (C,1,1) becomes
    (1,1,C)), so numpy broadcasting does the rest."""

    def check(self, node: Node, graph: Graph) -> str | None:
        if self.layout == "NHWC":
            for i in node.inputs:
                if i in graph.initializers and graph.initializers[i].ndim > 4:
                    return "NHWC: constant operand of rank > 4"
        return None

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        g = ctx.graph
        ufunc, act = _BINARY[node.op], node.activation
        operands: list[np.ndarray | None] = []
        for i in node.inputs:
            c = g.initializers.get(i)
            if c is not None:
                c = np.asarray(c, np.float32)
                if self.layout == "NHWC":
                    c = np.ascontiguousarray(c.reshape((1,) * (4 - c.ndim) + c.shape).transpose(0, 2, 3, 1))
            operands.append(c)
        dyn = [k for k, c in enumerate(operands) if c is None]
        const_bytes = sum(c.nbytes for c in operands if c is not None)

        def run(*xs: np.ndarray) -> list[Any]:
            ops = list(operands)
            for k, x in zip(dyn, xs, strict=True):
                ops[k] = x
            return [apply_activation(ufunc(ops[0], ops[1]), act)]

        return FunctionKernel(run, weight_bytes=const_bytes)


# ---- concat ------------------------------------------------------------------------------------------


class Concat(_LayoutOp):
    """Concat of dynamic 4-D tensors along channels (logical axis 1 = physical axis 3 in NHWC)."""

    def check(self, node: Node, graph: Graph) -> str | None:
        if any(i in graph.initializers for i in node.inputs):
            return "constant inputs not supported"
        rank = len(graph.shape(node.outputs[0]))
        if int(node.attr("axis", 1)) % rank != 1:
            return f"axis {node.attr('axis')}: only channel concat (axis 1)"
        return None

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        axis, act = (3 if self.layout == "NHWC" else 1), node.activation

        def run(*xs: np.ndarray) -> list[Any]:
            return [apply_activation(np.concatenate(xs, axis=axis), act)]

        return FunctionKernel(run)


# ---- pooling ---------------------------------------------------------------------------------------------


def _pool_geometry(node: Node, graph: Graph) -> dict[str, Any] | str:
    """Kernel, strides, dilations and pads (bottom/right extended for ceil_mode) from the static shapes."""
    if node.attr("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        return "auto_pad must be resolved to explicit pads"
    if len(node.outputs) > 1 and node.outputs[1]:
        return "MaxPool Indices output not supported"
    x, y = graph.shape(node.inputs[0]), graph.shape(node.outputs[0])
    if len(x) != 4:
        return "only 2-D pooling (4-D input)"
    kh, kw = node.attr("kernel_shape")
    sh, sw = node.attr("strides", [1, 1])
    dh, dw = node.attr("dilations", [1, 1])
    t, l, b, r = node.attr("pads", [0, 0, 0, 0])
    oh, ow = y[2], y[3]
    floor_h = (x[2] + t + b - dh * (kh - 1) - 1) // sh + 1
    floor_w = (x[3] + l + r - dw * (kw - 1) - 1) // sw + 1
    eb = max(0, (oh - 1) * sh + dh * (kh - 1) + 1 - (x[2] + t + b))
    er = max(0, (ow - 1) * sw + dw * (kw - 1) + 1 - (x[3] + l + r))
    return {
        "k": (kh, kw),
        "s": (sh, sw),
        "d": (dh, dw),
        "pads": (t, l, b, r),
        "extra": (eb, er),
        "out": (oh, ow),
        "ceil_grows": (oh, ow) != (floor_h, floor_w),
        "x": x,
    }


class Pool(_LayoutOp):
    """MaxPool / AveragePool as k*k maximum/add passes over strided views of a padded buffer (-inf border
    for max). AveragePool with count_include_pad=0 divides by a per-position count computed once."""

    def check(self, node: Node, graph: Graph) -> str | None:
        geo = _pool_geometry(node, graph)
        if isinstance(geo, str):
            return geo
        if node.op == "AveragePool" and geo["ceil_grows"]:
            return "ceil_mode=1 that adds output rows/cols is not supported for AveragePool"
        return None

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        geo = _pool_geometry(node, ctx.graph)
        assert not isinstance(geo, str), geo
        nhwc, is_max, act = self.layout == "NHWC", node.op == "MaxPool", node.activation
        n, c, h, w = geo["x"]
        (kh, kw), (sh, sw), (dh, dw), (oh, ow) = geo["k"], geo["s"], geo["d"], geo["out"]
        t, l, b, r = geo["pads"]
        hp, wp = h + t + b + geo["extra"][0], w + l + r + geo["extra"][1]
        fill = -np.inf if is_max else 0.0
        pad = PaddedBuffer((n, h, w, c) if nhwc else (n, c, h, w), (t, l, b + geo["extra"][0], r + geo["extra"][1]),
                           nhwc=nhwc, fill=fill)
        scratch = ctx.workspace.request(pad.spec)

        def view(xp: np.ndarray, i: int, j: int) -> np.ndarray:
            hs = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            ws = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            return xp[:, hs, ws, :] if nhwc else xp[:, :, hs, ws]

        scale: Any = np.float32(1.0 / (kh * kw))
        if not is_max and not int(node.attr("count_include_pad", 0)) and any(geo["pads"]):
            ones = np.zeros((1, hp, wp, 1) if nhwc else (1, 1, hp, wp), np.float32)
            (ones[:, t : t + h, l : l + w, :] if nhwc else ones[:, :, t : t + h, l : l + w])[...] = 1
            count = sum(view(ones, i, j) for i in range(kh) for j in range(kw))
            scale = (1.0 / count).astype(np.float32)
        combine = np.maximum if is_max else np.add

        def run(x: np.ndarray) -> list[Any]:
            xp = pad(x, scratch.arrays()[0])
            y = view(xp, 0, 0).copy()
            for i in range(kh):
                for j in range(kw):
                    if i or j:
                        combine(y, view(xp, i, j), out=y)
            if not is_max:
                y *= scale
            return [apply_activation(y, act)]

        return FunctionKernel(run, scratch=scratch)


class GlobalAvgPool(_LayoutOp):
    """Mean over H, W. The NHWC variant returns NCHW (N, C, 1, 1): same bytes as NHWC (N, 1, 1, C)."""

    def output_format(self, node: Node, graph: Graph) -> Format:
        return FP32

    def check(self, node: Node, graph: Graph) -> str | None:
        return None if len(graph.shape(node.inputs[0])) == 4 else "only 4-D input"

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        axes, act = ((1, 2) if self.layout == "NHWC" else (2, 3)), node.activation
        n, c = ctx.graph.shape(node.outputs[0])[:2]

        def run(x: np.ndarray) -> list[Any]:
            y = x.mean(axis=axes, dtype=np.float32).reshape(n, c, 1, 1)
            return [apply_activation(y, act)]

        return FunctionKernel(run)


_UNARY_OPS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish", "Tanh", "HardSigmoid")

PRIMITIVES = [
    *(Unary(op.lower(), {op}, "NHWC") for op in _UNARY_OPS),
    *(Binary(op.lower(), {op}, lay) for op in _BINARY for lay in ("NHWC", "NCHW")),
    Concat("concat", {"Concat"}, "NHWC"),
    *(
        Pool(fam, {op}, lay)
        for fam, op in (("maxpool", "MaxPool"), ("avgpool", "AveragePool"))
        for lay in ("NHWC", "NCHW")
    ),
    GlobalAvgPool("globalavgpool", {"GlobalAveragePool"}, "NHWC"),
    GlobalAvgPool("globalavgpool", {"GlobalAveragePool"}, "NCHW"),
]
