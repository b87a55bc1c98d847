"""Each IR node as torch calls with ONNX semantics, for a segment module (`graph_module.py`) to trace.

Why written per op rather than read from ONNX: torch has no ONNX front end, and the ops edge CNNs keep
after edgetune's passes map onto one or two torch functions each. What `rules.unsupported` refuses never
reaches here. Window ops whose geometry torch's own padding cannot express (asymmetric pads, a ceil_mode
that torch rounds otherwise) are padded explicitly and pooled without padding, so the output is ONNX's
whatever the geometry. Every call is out of place: a segment's inputs belong to the executor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from edgetune.graph.ir import Activation, Graph, Node
from edgetune.kernels.libraries.torch.rules import reduce_axes, text

Tensor = torch.Tensor
Fn = Callable[[list[Tensor], list[Tensor]], list[Tensor]]
"""(the node's dynamic inputs in node order, its constants) -> its non-empty outputs, activation not applied."""
Getter = Callable[[list[Tensor], list[Tensor]], Tensor | None]


@dataclass(frozen=True)
class Lowered:
    """A node as a traceable function and the constants it reads (prepared once: transposed, scaled)."""

    fn: Fn
    constants: tuple[np.ndarray, ...] = ()


class Operands:
    """Where each input of a node comes from at run time: a dynamic input, or a constant the module holds."""

    def __init__(self, node: Node, graph: Graph) -> None:
        self.node, self.graph = node, graph
        self.dynamic = graph.dynamic_inputs(node)
        self.constants: list[np.ndarray] = []

    def get(self, i: int) -> Getter:
        """Input i of the node (None when omitted); a constant one is held as float32 (or int64 indices)."""
        v = self.node.inputs[i] if i < len(self.node.inputs) else ""
        if not v:
            return lambda xs, cs: None
        if v in self.graph.initializers:
            return self.constant(self.graph.initializers[v])
        k = self.dynamic.index(v)
        return lambda xs, cs: xs[k]

    def array(self, i: int) -> np.ndarray | None:
        """Input i as a constant array at build time (None when omitted)."""
        v = self.node.inputs[i] if i < len(self.node.inputs) else ""
        return np.asarray(self.graph.initializers[v]) if v else None

    def constant(self, value: np.ndarray) -> Getter:
        """A constant prepared at build time."""
        a = np.asarray(value)
        a = a.astype(np.int64 if a.dtype.kind in "iu" else np.float32, copy=False)
        j = len(self.constants)
        self.constants.append(np.ascontiguousarray(a))
        return lambda xs, cs: cs[j]


def lower(node: Node, graph: Graph) -> Lowered:
    """`node` as a traceable torch function (ValueError for an op without a lowering: `rules` refuses it)."""
    build = _LOWERINGS.get(node.op)
    if build is None:
        raise ValueError(f"{node.op} is not lowered to torch")
    ops = Operands(node, graph)
    fn = build(node, graph, ops)
    return Lowered(fn, tuple(ops.constants))


# ---- elementwise -----------------------------------------------------------------------------------

def activation(y: Tensor, act: Activation) -> Tensor:
    """A fused activation (or a standalone one, its attributes as params), out of place."""
    op, p = act.op, act.params
    if op == "Relu":
        return torch.relu(y)
    if op == "Clip":
        lo, hi = p.get("min"), p.get("max")
        if lo is None and hi is None:
            return y.clone()
        return torch.clamp(y, None if lo is None else float(lo), None if hi is None else float(hi))
    if op == "LeakyRelu":
        return F.leaky_relu(y, float(p.get("alpha", 0.01)))
    if op == "Sigmoid":
        return torch.sigmoid(y)
    if op == "HardSigmoid":
        return torch.clamp(y * float(p.get("alpha", 0.2)) + float(p.get("beta", 0.5)), 0.0, 1.0)
    if op == "HardSwish":
        return F.hardswish(y)
    if op == "Tanh":
        return torch.tanh(y)
    if op == "Swish":
        return F.silu(y)
    raise ValueError(f"activation {op} is not lowered to torch")


_PLAIN_UNARY: dict[str, Callable[[Tensor], Tensor]] = {
    "Exp": torch.exp, "Erf": torch.erf, "Sqrt": torch.sqrt, "Neg": torch.neg, "Abs": torch.abs,
}


def _unary(node: Node, graph: Graph, ops: Operands) -> Fn:
    plain = _PLAIN_UNARY.get(node.op)
    if plain is not None:
        return lambda xs, cs: [plain(xs[0])]
    if node.op == "Gelu":
        approximate = "tanh" if text(node.attr("approximate", "none")) == "tanh" else "none"
        return lambda xs, cs: [F.gelu(xs[0], approximate=approximate)]
    act = Activation(node.op, {k: float(v) for k, v in node.attrs.items() if k in ("min", "max", "alpha", "beta")})
    return lambda xs, cs: [activation(xs[0], act)]


_BINARY: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div, "Pow": torch.pow,
}


def _binary(node: Node, graph: Graph, ops: Operands) -> Fn:
    f, a, b = _BINARY[node.op], ops.get(0), ops.get(1)
    return lambda xs, cs: [f(a(xs, cs), b(xs, cs))]


def _prelu(node: Node, graph: Graph, ops: Operands) -> Fn:
    slope = ops.get(1)
    return lambda xs, cs: [torch.where(xs[0] < 0, xs[0] * slope(xs, cs), xs[0])]


# ---- convolution and matrix products ------------------------------------------------------------------

def _ints(values: Sequence[int] | None, n: int, default: int) -> list[int]:
    return [int(v) for v in values] if values is not None else [default] * n


def _torch_pad(begin: Sequence[int], end: Sequence[int]) -> list[int]:
    """ONNX [begin per axis] / [end per axis] of the trailing axes as F.pad's list (last axis first)."""
    return [v for i in reversed(range(len(begin))) for v in (int(begin[i]), int(end[i]))]


def _conv_geometry(node: Node, graph: Graph) -> tuple[int, list[int], list[int], list[int], int]:
    """(spatial rank k, strides, dilations, pads [begins, ends], group) of a Conv or ConvTranspose."""
    k = len(graph.shape(node.inputs[0])) - 2
    strides, dil = _ints(node.attr("strides"), k, 1), _ints(node.attr("dilations"), k, 1)
    return k, strides, dil, _ints(node.attr("pads"), 2 * k, 0), int(node.attr("group", 1))


def _conv(node: Node, graph: Graph, ops: Operands) -> Fn:
    k, strides, dil, pads, group = _conv_geometry(node, graph)
    conv = (F.conv1d, F.conv2d, F.conv3d)[k - 1]
    w, b = ops.get(1), ops.get(2)
    if pads[:k] == pads[k:]:
        return lambda xs, cs: [conv(xs[0], w(xs, cs), b(xs, cs), strides, pads[:k], dil, group)]
    pre = _torch_pad(pads[:k], pads[k:])
    return lambda xs, cs: [conv(F.pad(xs[0], pre), w(xs, cs), b(xs, cs), strides, 0, dil, group)]


def _conv_transpose(node: Node, graph: Graph, ops: Operands) -> Fn:
    k, strides, dil, pads, group = _conv_geometry(node, graph)
    deconv = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[k - 1]
    w, b = ops.get(1), ops.get(2)
    extra = _ints(node.attr("output_padding"), k, 0)
    if pads[:k] == pads[k:]:
        return lambda xs, cs: [deconv(xs[0], w(xs, cs), b(xs, cs), strides, pads[:k], extra, group, dil)]
    out = graph.shape(node.outputs[0])[2:]
    crop = (slice(None), slice(None), *(slice(pads[i], pads[i] + out[i]) for i in range(k)))
    return lambda xs, cs: [deconv(xs[0], w(xs, cs), b(xs, cs), strides, 0, extra, group, dil)[crop]]


def _gemm(node: Node, graph: Graph, ops: Operands) -> Fn:
    """alpha * A' B' + beta * C; a constant B becomes F.linear's (N, K) weight with alpha folded in, a
    constant row C its bias with beta folded in."""
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    trans_a, trans_b = int(node.attr("transA", 0)), int(node.attr("transB", 0))
    get_a = ops.get(0)
    a = (lambda xs, cs: get_a(xs, cs).t()) if trans_a else get_a
    if node.inputs[1] not in graph.initializers:
        return _gemm_dynamic(ops, a, trans_b, alpha, beta)
    wb = ops.array(1)
    weight = ops.constant((wb if trans_b else wb.T) * np.float32(alpha))
    n = int(wb.shape[0] if trans_b else wb.shape[1])
    c = ops.array(2) if len(node.inputs) > 2 and node.inputs[2] in graph.initializers else None
    if c is not None and c.size in (1, n) and (c.ndim < 2 or c.shape[0] == 1):
        bias = ops.constant(np.broadcast_to(c.reshape(-1) * np.float32(beta), (n,)))
        return lambda xs, cs: [F.linear(a(xs, cs), weight(xs, cs), bias(xs, cs))]
    get_c = ops.get(2)

    def fn(xs: list[Tensor], cs: list[Tensor]) -> list[Tensor]:
        y = F.linear(a(xs, cs), weight(xs, cs))
        cv = get_c(xs, cs)
        return [y if cv is None else y + beta * cv]

    return fn


def _gemm_dynamic(ops: Operands, a: Getter, trans_b: int, alpha: float, beta: float) -> Fn:
    get_b, get_c = ops.get(1), ops.get(2)

    def fn(xs: list[Tensor], cs: list[Tensor]) -> list[Tensor]:
        b = get_b(xs, cs)
        y = torch.matmul(a(xs, cs), b.t() if trans_b else b)
        y = y if alpha == 1.0 else y * alpha
        cv = get_c(xs, cs)
        return [y if cv is None else y + (cv if beta == 1.0 else beta * cv)]

    return fn


def _matmul(node: Node, graph: Graph, ops: Operands) -> Fn:
    b_const = ops.array(1) if node.inputs[1] in graph.initializers else None
    a = ops.get(0)
    if b_const is not None and b_const.ndim == 2:
        weight = ops.constant(b_const.T)
        return lambda xs, cs: [F.linear(a(xs, cs), weight(xs, cs))]
    b = ops.get(1)
    return lambda xs, cs: [torch.matmul(a(xs, cs), b(xs, cs))]


# ---- pooling and normalisation -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Window:
    """A 2-D pooling window's geometry (ONNX attributes and the output size the graph's shapes give)."""

    kernel: list[int]
    strides: list[int]
    dilations: list[int]
    pads: list[int]  # [begin h, begin w, end h, end w]
    ceil: bool
    size: tuple[int, ...]  # input H, W
    out: tuple[int, ...]  # output H, W

    def reach(self, i: int) -> int:
        return (self.kernel[i] - 1) * self.dilations[i] + 1

    def native_padding(self) -> list[int] | None:
        """torch's own symmetric padding when it gives ONNX's output size, else None."""
        if self.pads[:2] != self.pads[2:] or any(p > k // 2 for p, k in zip(self.pads[:2], self.kernel, strict=True)):
            return None
        for i in range(2):
            p, s = self.pads[i], self.strides[i]
            span = self.size[i] + 2 * p - self.reach(i)
            n = (span + (s - 1 if self.ceil else 0)) // s + 1
            if self.ceil and (n - 1) * s >= self.size[i] + p:
                n -= 1
            if n != self.out[i]:
                return None
        return self.pads[:2]

    def end_pads(self) -> list[int]:
        """The end padding after which torch's floor-mode windows give exactly ONNX's output size."""
        return [max((self.out[i] - 1) * self.strides[i] + self.reach(i) - self.size[i] - self.pads[i], 0)
                for i in range(2)]


def _window(node: Node, graph: Graph) -> _Window:
    kernel = [int(k) for k in node.attr("kernel_shape")]
    return _Window(kernel, _ints(node.attr("strides"), 2, 1), _ints(node.attr("dilations"), 2, 1),
                   _ints(node.attr("pads"), 4, 0), bool(node.attr("ceil_mode", 0)),
                   graph.shape(node.inputs[0])[2:], graph.shape(node.outputs[0])[2:])


def _max_pool(node: Node, graph: Graph, ops: Operands) -> Fn:
    win = _window(node, graph)
    k, s, d = win.kernel, win.strides, win.dilations
    native = win.native_padding()
    if native is not None:
        return lambda xs, cs: [F.max_pool2d(xs[0], k, s, native, d, ceil_mode=win.ceil)]
    pre = _torch_pad(win.pads[:2], win.end_pads())
    return lambda xs, cs: [F.max_pool2d(F.pad(xs[0], pre, value=-math.inf), k, s, 0, d)]


def _average_pool(node: Node, graph: Graph, ops: Operands) -> Fn:
    """torch's own pooling where its geometry is ONNX's; else the input padded explicitly with zeros, averaged
    over whole windows, and rescaled per output position to ONNX's divisor (pads counted with
    count_include_pad, the ceil_mode overhang never), a constant worked out here."""
    win = _window(node, graph)
    include = bool(node.attr("count_include_pad", 0))
    k, s = win.kernel, win.strides
    native = win.native_padding()
    if native is not None:
        return lambda xs, cs: [F.avg_pool2d(xs[0], k, s, native, win.ceil, include)]
    end = win.end_pads()
    counts = [_window_counts(win, i, end[i], include) for i in range(2)]
    scale = ops.constant((k[0] * k[1]) / np.outer(counts[0], counts[1]))
    pre = _torch_pad(win.pads[:2], end)
    return lambda xs, cs: [F.avg_pool2d(F.pad(xs[0], pre), k, s) * scale(xs, cs)]


def _window_counts(win: _Window, i: int, end: int, include: bool) -> np.ndarray:
    """Per output position along axis i, how many taps of its window ONNX's divisor counts."""
    pb, pe, size = win.pads[i], win.pads[2 + i], win.size[i]
    counted = np.zeros(pb + size + end)
    counted[0 if include else pb: (pb + size + pe) if include else pb + size] = 1.0
    starts = np.arange(win.out[i]) * win.strides[i]
    return np.array([counted[a:a + win.kernel[i]].sum() for a in starts])


def _global_pool(node: Node, graph: Graph, ops: Operands) -> Fn:
    axes = list(range(2, len(graph.shape(node.inputs[0]))))
    if node.op == "GlobalMaxPool":
        return lambda xs, cs: [torch.amax(xs[0], axes, keepdim=True)]
    return lambda xs, cs: [torch.mean(xs[0], axes, keepdim=True)]


def _batchnorm(node: Node, graph: Graph, ops: Operands) -> Fn:
    scale, bias, mean, var = (ops.get(i) for i in range(1, 5))
    eps = float(node.attr("epsilon", 1e-5))
    return lambda xs, cs: [F.batch_norm(xs[0], mean(xs, cs), var(xs, cs), scale(xs, cs), bias(xs, cs), False, 0.0,
                                        eps)]


def _layernorm(node: Node, graph: Graph, ops: Operands) -> Fn:
    x = graph.shape(node.inputs[0])
    shape = tuple(x[int(node.attr("axis", -1)) % len(x):])
    weight = ops.constant(np.broadcast_to(ops.array(1), shape))
    b = ops.array(2)
    bias = ops.constant(np.broadcast_to(b, shape)) if b is not None else (lambda xs, cs: None)
    eps = float(node.attr("epsilon", 1e-5))
    return lambda xs, cs: [F.layer_norm(xs[0], shape, weight(xs, cs), bias(xs, cs), eps)]


def _lrn(node: Node, graph: Graph, ops: Operands) -> Fn:
    size = int(node.attr("size"))
    alpha, beta, bias = float(node.attr("alpha", 1e-4)), float(node.attr("beta", 0.75)), float(node.attr("bias", 1.0))
    return lambda xs, cs: [F.local_response_norm(xs[0], size, alpha, beta, bias)]


def _softmax(node: Node, graph: Graph, ops: Operands) -> Fn:
    axis = int(node.attr("axis", -1))
    return lambda xs, cs: [torch.softmax(xs[0], axis)]


def _reduce(node: Node, graph: Graph, ops: Operands) -> Fn:
    rank = len(graph.shape(node.inputs[0]))
    axes = reduce_axes(node, graph)
    dims = sorted({a % rank for a in axes}) if axes else list(range(rank))
    keep = bool(node.attr("keepdims", 1))
    f = {"ReduceMean": torch.mean, "ReduceSum": torch.sum, "ReduceMax": torch.amax}[node.op]
    return lambda xs, cs: [f(xs[0], dims, keepdim=keep)]


# ---- data movement ---------------------------------------------------------------------------------------

def _reshape(node: Node, graph: Graph, ops: Operands) -> Fn:
    """Flatten, Reshape, Squeeze, Unsqueeze: every shape is static, so each is a reshape to its output's."""
    shape = list(graph.shape(node.outputs[0]))
    return lambda xs, cs: [xs[0].reshape(shape)]


def _transpose(node: Node, graph: Graph, ops: Operands) -> Fn:
    rank = len(graph.shape(node.inputs[0]))
    perm = [int(p) for p in node.attr("perm")] if node.attr("perm") is not None else list(reversed(range(rank)))
    return lambda xs, cs: [xs[0].permute(perm)]


def _concat(node: Node, graph: Graph, ops: Operands) -> Fn:
    parts, axis = [ops.get(i) for i, v in enumerate(node.inputs) if v], int(node.attr("axis"))
    return lambda xs, cs: [torch.cat([p(xs, cs) for p in parts], axis)]


def _pad(node: Node, graph: Graph, ops: Operands) -> Fn:
    rank = len(graph.shape(node.inputs[0]))
    pads = [int(p) for p in node.attr("pads")]
    value = float(node.attr("value", 0.0) or 0.0)
    pre = _torch_pad(pads[:rank], pads[rank:])
    return lambda xs, cs: [F.pad(xs[0], pre, value=value)]


def _slice(node: Node, graph: Graph, ops: Operands) -> Fn:
    shape = graph.shape(node.inputs[0])
    starts, ends = [int(v) for v in node.attr("starts")], [int(v) for v in node.attr("ends")]
    axes = [int(a) % len(shape) for a in _or(node.attr("axes"), range(len(starts)))]
    steps = [int(s) for s in _or(node.attr("steps"), [1] * len(starts))]
    index = [slice(None)] * len(shape)
    for a, st, en, sp in zip(axes, starts, ends, steps, strict=True):
        index[a] = slice(*slice(st, en, sp).indices(shape[a]))  # ONNX's clamping, for positive steps
    key = tuple(index)
    return lambda xs, cs: [xs[0][key]]


def _or(value: Sequence[int] | None, default: Sequence[int]) -> Sequence[int]:
    return default if value is None else value


def _split(node: Node, graph: Graph, ops: Operands) -> Fn:
    axis = int(node.attr("axis", 0)) % len(graph.shape(node.inputs[0]))
    sizes = [graph.shape(o)[axis] for o in node.outputs]
    return lambda xs, cs: list(torch.split(xs[0], sizes, axis))


def _resize(node: Node, graph: Graph, ops: Operands) -> Fn:
    size = list(graph.shape(node.outputs[0])[2:])
    if text(node.attr("mode", "nearest")) == "nearest":
        return lambda xs, cs: [F.interpolate(xs[0], size=size, mode="nearest")]
    corners = text(node.attr("coordinate_transformation_mode", "half_pixel")) == "align_corners"
    return lambda xs, cs: [F.interpolate(xs[0], size=size, mode="bilinear", align_corners=corners)]


def _gather(node: Node, graph: Graph, ops: Operands) -> Fn:
    rank = len(graph.shape(node.inputs[0]))
    axis = int(node.attr("axis", 0)) % rank
    dim = graph.shape(node.inputs[0])[axis]
    idx = np.asarray(ops.array(1)).astype(np.int64) % dim
    if idx.ndim == 0:
        i = int(idx)
        return lambda xs, cs: [xs[0].select(axis, i)]
    flat, shape = ops.constant(idx.reshape(-1)), list(graph.shape(node.outputs[0]))
    return lambda xs, cs: [torch.index_select(xs[0], axis, flat(xs, cs)).reshape(shape)]


_LOWERINGS: dict[str, Callable[[Node, Graph, Operands], Fn]] = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul,
    "MaxPool": _max_pool, "AveragePool": _average_pool, "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool, "BatchNormalization": _batchnorm, "LayerNormalization": _layernorm,
    "LRN": _lrn, "Softmax": _softmax, "Transpose": _transpose, "Concat": _concat, "Pad": _pad,
    "Slice": _slice, "Split": _split, "Resize": _resize, "Gather": _gather, "PRelu": _prelu,
    **{op: _unary for op in ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
                             *_PLAIN_UNARY, "Gelu")},
    **{op: _binary for op in _BINARY},
    **{op: _reshape for op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze")},
    **{op: _reduce for op in ("ReduceMean", "ReduceSum", "ReduceMax")},
}
