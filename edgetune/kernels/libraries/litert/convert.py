"""ONNX nodes (edgetune's IR) -> one TFLite model, for the op subset edge CNNs need (see `rules.py`).

Layouts: TFLite's convolutions and pools are NHWC, the IR is ONNX's NCHW. Every IR value is held in the
model in one or both of two forms: "NHWC" (4-D values only) and "ONNX" (the IR's own order). Each
operator asks for its inputs in the form it needs and the writer inserts a TRANSPOSE (or a RESHAPE, when
the two forms are the same bytes: C == 1 or H == W == 1) the first time a form is missing; constants are
written directly in the form asked for. Weights are transposed once: OHWI for CONV_2D, 1HWO for
DEPTHWISE_CONV_2D, (out, in) for FULLY_CONNECTED. The model's 4-D inputs and outputs are NHWC when the
caller holds them so (`io_nhwc`: the one-node primitives, which declare NHWC), else NCHW (segments, whose
boundary the executor keeps NCHW): then the TRANSPOSEs at the boundary are in the model, run by XNNPACK.

Padding: a window whose ONNX pads equal TFLite's SAME split is written SAME, no pads VALID, any other
padding as an explicit PAD (zeros) before a VALID window; MaxPool's padding must never win, so its pad
is PAD then ADD of a constant mask holding float32's lowest value on the border (XNNPACK takes PAD and
ADD, not PADV2 with -inf).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tflite

from edgetune.graph.ir import Activation, Graph, Node
from edgetune.kernels.libraries.litert.flatbuffer import ModelWriter
from edgetune.kernels.libraries.litert.rules import activation_of, same_padding, text, unsupported, window_geometry

NHWC, ONNX = "NHWC", "ONNX"
TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}  # an NCHW axis -> the same axis of the NHWC form
Op = tflite.BuiltinOperator
Act = tflite.ActivationFunctionType
_LOWEST = float(np.finfo(np.float32).min)


class ConversionError(ValueError):
    """A node the converter cannot write (its `rules.unsupported` reason, or a case found while writing)."""


class TfliteModel(NamedTuple):
    """A written model: its flatbuffer bytes and the bytes of its constants (weights, in their TFLite form)."""

    content: bytes
    weight_bytes: int


def convert(graph: Graph, nodes: list[Node], inputs: list[str], outputs: list[str], io_nhwc: bool) -> TfliteModel:
    """The TFLite model computing `outputs` from `inputs` through `nodes` (in topological order).
    `io_nhwc`: 4-D inputs and outputs are NHWC arrays (else NCHW, as the IR)."""
    for node in nodes:
        reason = unsupported(node, graph)
        if reason is not None:
            raise ConversionError(f"{node.name}: {reason}")
    w = _Writer(graph)
    model_inputs = [w.input(v, NHWC if io_nhwc and _rank(graph, v) == 4 else ONNX) for v in inputs]
    for node in nodes:
        _EMITTERS[node.op](w, node)
    model_outputs = [w.value(v, NHWC if io_nhwc and _rank(graph, v) == 4 else ONNX) for v in outputs]
    if len(set(model_outputs)) != len(model_outputs) or set(model_outputs) & set(model_inputs):
        raise ConversionError("an output of the model is also an input or another output")
    content = w.model.serialize(model_inputs, model_outputs, description=f"edgetune: {len(nodes)} nodes")
    return TfliteModel(content, sum(b.nbytes for b in w.model.buffers))


def _rank(graph: Graph, v: str) -> int:
    return len(graph.shape(v))


def _tshape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    return tuple(shape[i] for i in TO_NHWC) if layout == NHWC else tuple(shape)


def _same_bytes(shape: tuple[int, ...]) -> bool:
    """Whether a 4-D value's NCHW and NHWC forms are the same bytes (C == 1, or H == W == 1)."""
    return shape[1] == 1 or shape[2] * shape[3] == 1


class _Writer:
    """The model being written and the form(s) each IR value is held in."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.model = ModelWriter()
        self.held: dict[str, dict[str, int]] = {}
        self._consts: dict[tuple[str, str], int] = {}

    # ---- values -----------------------------------------------------------------------------------

    def input(self, v: str, layout: str) -> int:
        t = self.model.tensor(_tshape(self.graph.shape(v), layout), v)
        self.held[v] = {layout: t}
        return t

    def layout_of(self, v: str) -> str:
        """The form a value is best read in: NHWC when held so (or a 4-D constant), else the IR's."""
        if v in self.graph.initializers:
            return NHWC if self.graph.initializers[v].ndim == 4 else ONNX
        return NHWC if NHWC in self.held[v] else ONNX

    def value(self, v: str, layout: str) -> int:
        """The tensor holding `v` in `layout`, written on first use."""
        g = self.graph
        if v in g.initializers:
            return self._constant(v, layout)
        held = self.held[v]
        if layout not in held:
            shape = g.shape(v)
            src, perm = (held[ONNX], TO_NHWC) if layout == NHWC else (held[NHWC], TO_NCHW)
            held[layout] = self._permuted(src, perm, _tshape(shape, layout), f"{v}/{layout.lower()}",
                                          _same_bytes(shape))
        return held[layout]

    def bytes_of(self, v: str) -> int:
        """A tensor holding `v`'s bytes in the IR's order, whatever its shape (for RESHAPE's input)."""
        held = self.held.get(v, {})
        if ONNX not in held and NHWC in held and _same_bytes(self.graph.shape(v)):
            return held[NHWC]
        return self.value(v, ONNX)

    def _constant(self, v: str, layout: str) -> int:
        key = (v, layout)
        if key not in self._consts:
            a = np.asarray(self.graph.initializers[v], np.float32)
            if layout == NHWC:
                a = a.reshape((1,) * (4 - a.ndim) + a.shape).transpose(TO_NHWC)
            self._consts[key] = self.model.constant(a, f"{v}/{layout.lower()}")
        return self._consts[key]

    def _permuted(self, src: int, perm: tuple[int, ...], shape: tuple[int, ...], name: str, reshape: bool) -> int:
        out = self.model.tensor(shape, name)
        if reshape:
            self.reshape(src, out)
        else:
            self.model.operator(Op.TRANSPOSE, [src, self.ints(perm, f"{name}/perm")], [out])
        return out

    def ints(self, values: tuple[int, ...] | list[int], name: str) -> int:
        return self.model.constant(np.asarray(values, np.int32).reshape(-1), name)

    def paddings(self, pads: list[tuple[int, int]], name: str) -> int:
        """PAD's (rank, 2) table of (before, after) per axis."""
        return self.model.constant(np.asarray(pads, np.int32).reshape(len(pads), 2), name)

    def scalar(self, value: float, name: str) -> int:
        return self.model.constant(np.asarray([value], np.float32), name)

    def reshape(self, src: int, out: int) -> None:
        shape = list(self.model.shape(out))
        self.model.operator(Op.RESHAPE, [src, self.ints(shape, f"t{out}/shape")], [out],
                            ("ReshapeOptions", {"NewShape": shape}))

    # ---- outputs and activations ------------------------------------------------------------------

    def result(self, node: Node, layout: str, emit: Callable[[int, int], None], fusable: bool = True) -> None:
        """Write the node's operator through `emit(output tensor, fused activation code)`, then its fused
        activation: in the operator when TFLite fuses it, else as operators of its own."""
        v = node.outputs[0]
        shape = _tshape(self.graph.shape(v), layout)
        code = fused_code(node.activation) if fusable else None
        if node.activation is None or code is not None:
            t = self.model.tensor(shape, v)
            emit(t, Act.NONE if code is None else code)
        else:
            pre = self.model.tensor(shape, f"{v}/pre")
            emit(pre, Act.NONE)
            t = self.activation(pre, node.activation, v)
        self.held[v] = {layout: t}

    def activation(self, x: int, act: Activation, name: str) -> int:
        """Standalone operators computing `act` on tensor `x`; returns the result tensor."""
        m, shape, p = self.model, self.model.shape(x), act.params
        out = m.tensor(shape, name)
        simple = {"Relu": Op.RELU, "Sigmoid": Op.LOGISTIC, "HardSwish": Op.HARD_SWISH, "Tanh": Op.TANH, "Exp": Op.EXP}
        if act.op in simple:
            m.operator(simple[act.op], [x], [out])
        elif act.op == "Clip":
            code = fused_code(act)
            if code is not None:
                standalone = {Act.RELU: Op.RELU, Act.RELU6: Op.RELU6, Act.RELU_N1_TO_1: Op.RELU_N1_TO_1}
                m.operator(standalone[code], [x], [out])
            else:
                lo, hi = float(p.get("min", -np.inf)), float(p.get("max", np.inf))
                mid = m.tensor(shape, f"{name}/max") if hi < np.inf else out
                m.operator(Op.MAXIMUM, [x, self.scalar(max(lo, _LOWEST), f"{name}/lo")], [mid])
                if hi < np.inf:
                    m.operator(Op.MINIMUM, [mid, self.scalar(hi, f"{name}/hi")], [out])
        elif act.op == "LeakyRelu":
            m.operator(Op.LEAKY_RELU, [x], [out], ("LeakyReluOptions", {"Alpha": float(p.get("alpha", 0.01))}))
        elif act.op == "HardSigmoid":  # relu6(6 alpha x + 6 beta) / 6
            alpha, beta = float(p.get("alpha", 0.2)), float(p.get("beta", 0.5))
            scaled, shifted = m.tensor(shape, f"{name}/scaled"), m.tensor(shape, f"{name}/shifted")
            m.operator(Op.MUL, [x, self.scalar(6 * alpha, f"{name}/a")], [scaled], _fused("MulOptions", Act.NONE))
            m.operator(Op.ADD, [scaled, self.scalar(6 * beta, f"{name}/b")], [shifted], _fused("AddOptions", Act.RELU6))
            m.operator(Op.MUL, [shifted, self.scalar(1 / 6, f"{name}/sixth")], [out], _fused("MulOptions", Act.NONE))
        elif act.op == "Swish":
            sig = m.tensor(shape, f"{name}/sigmoid")
            m.operator(Op.LOGISTIC, [x], [sig])
            m.operator(Op.MUL, [x, sig], [out], _fused("MulOptions", Act.NONE))
        else:
            raise ConversionError(f"activation {act.op} is not converted")
        return out

    def slice(self, x: int, begin: list[int], size: list[int], name: str) -> int:
        """SLICE of `x` (stride 1; XNNPACK takes no strided STRIDED_SLICE)."""
        out = self.model.tensor(tuple(size), name)
        self.model.operator(Op.SLICE, [x, self.ints(begin, f"{name}/begin"), self.ints(size, f"{name}/size")], [out])
        return out

    def reshaped(self, x: int, shape: tuple[int, ...], name: str) -> int:
        out = self.model.tensor(shape, name)
        self.reshape(x, out)
        return out

    def pad(self, x: int, pads: list[tuple[int, int]], name: str, lowest: bool = False) -> int:
        """`x` padded by `pads` (per axis of its form) with zeros, or with float32's lowest value."""
        m = self.model
        shape = tuple(d + a + b for d, (a, b) in zip(m.shape(x), pads, strict=True))
        out = m.tensor(shape, f"{name}/padded")
        m.operator(Op.PAD, [x, self.paddings(pads, f"{name}/pads")], [out])
        if not lowest:
            return out
        mask = np.full((1, shape[1], shape[2], 1), _LOWEST, np.float32)
        (t, b), (left, r) = pads[1], pads[2]
        mask[:, t:shape[1] - b, left:shape[2] - r, :] = 0.0
        masked = m.tensor(shape, f"{name}/masked")
        m.operator(Op.ADD, [out, m.constant(mask, f"{name}/mask")], [masked], _fused("AddOptions", Act.NONE))
        return masked


def fused_code(act: Activation | None) -> int | None:
    """The TFLite fused-activation code computing `act`, None when TFLite fuses no such activation."""
    if act is None:
        return Act.NONE
    if act.op == "Relu":
        return Act.RELU
    if act.op == "Clip":
        lo, hi = float(act.params.get("min", -np.inf)), float(act.params.get("max", np.inf))
        return {(0.0, 6.0): Act.RELU6, (-1.0, 1.0): Act.RELU_N1_TO_1, (0.0, np.inf): Act.RELU}.get((lo, hi))
    return None


def _fused(table: str, code: int) -> tuple[str, dict[str, int]]:
    return table, {"FusedActivationFunction": code}


# ---- one emitter per op ---------------------------------------------------------------------------

def _conv(w: _Writer, node: Node) -> None:
    g = w.graph
    x = w.value(node.inputs[0], NHWC)
    weights = np.asarray(g.initializers[node.inputs[1]], np.float32)
    co, cg = weights.shape[:2]
    c = g.shape(node.inputs[0])[1]
    bias_name = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
    bias = np.asarray(g.initializers[bias_name], np.float32) if bias_name else np.zeros(co, np.float32)
    x, padding = _windowed(w, node, x, lowest=False)
    strides, dil = node.attr("strides") or [1, 1], node.attr("dilations") or [1, 1]
    geometry = {"Padding": padding, "StrideW": int(strides[1]), "StrideH": int(strides[0]),
                "DilationWFactor": int(dil[1]), "DilationHFactor": int(dil[0])}
    group = int(node.attr("group", 1))
    depthwise = group > 1 and group == c and cg == 1
    filt = weights.transpose(1, 2, 3, 0) if depthwise else weights.transpose(0, 2, 3, 1)  # 1HWO / OHWI
    f, b = w.model.constant(filt, f"{node.name}/filter"), w.model.constant(bias, f"{node.name}/bias")
    if depthwise:
        def emit(out: int, code: int) -> None:
            w.model.operator(Op.DEPTHWISE_CONV_2D, [x, f, b], [out], ("DepthwiseConv2DOptions", {
                **geometry, "DepthMultiplier": co // c, "FusedActivationFunction": code}))
    else:
        def emit(out: int, code: int) -> None:
            w.model.operator(Op.CONV_2D, [x, f, b], [out],
                             ("Conv2DOptions", {**geometry, "FusedActivationFunction": code}))
    w.result(node, NHWC, emit)


def _windowed(w: _Writer, node: Node, x: int, lowest: bool) -> tuple[int, int]:
    """The window's input (padded explicitly when its padding is neither none nor SAME) and its padding."""
    geometry = window_geometry(node, w.graph)
    if not any(pb or pe or over for pb, pe, over in geometry):
        return x, tflite.Padding.VALID
    if same_padding(node, w.graph):
        return x, tflite.Padding.SAME
    (th, bh, oh), (tw, bw, ow) = geometry
    return w.pad(x, [(0, 0), (th, bh + oh), (tw, bw + ow), (0, 0)], node.name, lowest=lowest), tflite.Padding.VALID


def _pool(w: _Writer, node: Node) -> None:
    x = w.value(node.inputs[0], NHWC)
    if node.op == "MaxPool":
        x, padding = _windowed(w, node, x, lowest=True)
    elif int(node.attr("count_include_pad", 0)) and any(pb or pe for pb, pe, _ in window_geometry(node, w.graph)):
        (th, bh, _), (tw, bw, _) = window_geometry(node, w.graph)
        x, padding = w.pad(x, [(0, 0), (th, bh), (tw, bw), (0, 0)], node.name), tflite.Padding.VALID
    else:
        x, padding = _windowed(w, node, x, lowest=False)  # rules: no pads, or SAME pads excluded from the mean
    kernel, strides = node.attr("kernel_shape"), node.attr("strides") or [1, 1]
    code = Op.MAX_POOL_2D if node.op == "MaxPool" else Op.AVERAGE_POOL_2D

    def emit(out: int, act: int) -> None:
        w.model.operator(code, [x], [out], ("Pool2DOptions", {
            "Padding": padding, "StrideW": int(strides[1]), "StrideH": int(strides[0]),
            "FilterWidth": int(kernel[1]), "FilterHeight": int(kernel[0]), "FusedActivationFunction": act}))
    w.result(node, NHWC, emit)


def _global_average_pool(w: _Writer, node: Node) -> None:
    x = w.value(node.inputs[0], NHWC)
    axes = w.ints([1, 2], f"{node.name}/axes")
    w.result(node, NHWC, lambda out, _: w.model.operator(Op.MEAN, [x, axes], [out],
                                                          ("ReducerOptions", {"KeepDims": True})), fusable=False)


def _gemm(w: _Writer, node: Node) -> None:
    g = w.graph
    a_name, b_name = node.inputs[0], node.inputs[1]
    if node.op == "MatMul" and not (b_name in g.initializers and _rank(g, b_name) == 2):
        _batch_matmul(w, node)
        return
    b = np.asarray(g.initializers[b_name], np.float32)
    if node.op == "Gemm":
        weights = b if int(node.attr("transB", 0)) else b.T
        alpha = float(node.attr("alpha", 1.0))
        weights = weights if alpha == 1.0 else weights * np.float32(alpha)
        c = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        bias = np.zeros(weights.shape[0], np.float32)
        if c is not None:
            bias = bias + np.float32(node.attr("beta", 1.0)) * np.asarray(g.initializers[c], np.float32).reshape(-1)
    else:
        weights, bias = b.T, np.zeros(b.shape[1], np.float32)
    a = w.value(a_name, ONNX)
    f = w.model.constant(weights, f"{node.name}/weights")
    bt = w.model.constant(bias, f"{node.name}/bias")
    keep = _rank(g, a_name) > 2
    w.result(node, ONNX, lambda out, code: w.model.operator(Op.FULLY_CONNECTED, [a, f, bt], [out], (
        "FullyConnectedOptions", {"FusedActivationFunction": code, "KeepNumDims": keep})))


def _batch_matmul(w: _Writer, node: Node) -> None:
    a, b = (w.value(v, ONNX) for v in node.inputs[:2])
    w.result(node, ONNX, lambda out, _: w.model.operator(Op.BATCH_MATMUL, [a, b], [out], (
        "BatchMatMulOptions", {"AdjX": False, "AdjY": False})), fusable=False)


_BINARY = {"Add": (Op.ADD, "AddOptions"), "Sub": (Op.SUB, "SubOptions"), "Mul": (Op.MUL, "MulOptions"),
           "Div": (Op.DIV, "DivOptions")}


def _binary(w: _Writer, node: Node) -> None:
    g = w.graph
    dyn = g.dynamic_inputs(node)
    four_d = _rank(g, node.outputs[0]) == 4 and all(_rank(g, v) == 4 for v in dyn)
    layout = NHWC if four_d and all(g.initializers[v].ndim <= 4 for v in node.inputs if v in g.initializers) \
        else ONNX
    a, b = (w.value(v, layout) for v in node.inputs)
    code, table = _BINARY[node.op]
    w.result(node, layout, lambda out, act: w.model.operator(code, [a, b], [out], _fused(table, act)))


def _unary(w: _Writer, node: Node) -> None:
    v = node.inputs[0]
    layout = w.layout_of(v)
    t = w.activation(w.value(v, layout), activation_of(node), node.outputs[0] if node.activation is None
                     else f"{node.outputs[0]}/pre")
    if node.activation is not None:
        t = w.activation(t, node.activation, node.outputs[0])
    w.held[node.outputs[0]] = {layout: t}


def _concat(w: _Writer, node: Node) -> None:
    g = w.graph
    values = [v for v in node.inputs if v]
    rank = _rank(g, values[0])
    axis = int(node.attr("axis", 1)) % rank
    layout = NHWC if rank == 4 else ONNX
    xs = [w.value(v, layout) for v in values]
    tf_axis = NHWC_AXIS[axis] if layout == NHWC else axis
    w.result(node, layout, lambda out, act: w.model.operator(Op.CONCATENATION, xs, [out], (
        "ConcatenationOptions", {"Axis": tf_axis, "FusedActivationFunction": act})))


def _reshape(w: _Writer, node: Node) -> None:
    x = w.bytes_of(node.inputs[0])
    w.result(node, ONNX, lambda out, _: w.reshape(x, out), fusable=False)


def _transpose(w: _Writer, node: Node) -> None:
    g = w.graph
    v = node.inputs[0]
    rank = _rank(g, v)
    perm = [int(p) for p in (node.attr("perm") or range(rank - 1, -1, -1))]
    if ONNX not in w.held[v] and rank == 4:  # read the NHWC form directly: out axis i = NHWC axis q[i]
        x, perm = w.held[v][NHWC], [NHWC_AXIS[p] for p in perm]
    else:
        x = w.value(v, ONNX)
    if perm == sorted(perm):
        w.result(node, ONNX, lambda out, _: w.reshape(x, out), fusable=False)
        return
    p = w.ints(perm, f"{node.name}/perm")
    w.result(node, ONNX, lambda out, _: w.model.operator(Op.TRANSPOSE, [x, p], [out]), fusable=False)


def _softmax(w: _Writer, node: Node) -> None:
    v = node.inputs[0]
    rank = _rank(w.graph, v)
    axis = int(node.attr("axis", -1)) % rank
    layout = NHWC if rank == 4 and axis == 1 else ONNX
    x = w.value(v, layout)
    w.result(node, layout, lambda out, _: w.model.operator(Op.SOFTMAX, [x], [out], ("SoftmaxOptions", {"Beta": 1.0})),
             fusable=False)


def _pad(w: _Writer, node: Node) -> None:
    v = node.inputs[0]
    rank = _rank(w.graph, v)
    pads = [int(p) for p in node.attr("pads")]
    per_axis = list(zip(pads[:rank], pads[rank:], strict=True))
    layout = NHWC if rank == 4 else ONNX
    if layout == NHWC:
        per_axis = [per_axis[i] for i in TO_NHWC]
    x = w.value(v, layout)
    paddings = w.paddings(per_axis, f"{node.name}/pads")
    value = float(node.attr("value", 0.0) or 0.0)
    if value == 0.0:
        w.result(node, layout, lambda out, _: w.model.operator(Op.PAD, [x, paddings], [out]), fusable=False)
    else:
        fill = w.scalar(value, f"{node.name}/value")
        w.result(node, layout, lambda out, _: w.model.operator(Op.PADV2, [x, paddings, fill], [out]), fusable=False)


def _slice(w: _Writer, node: Node) -> None:
    """Slice as SLICE; a step s > 1 on an axis keeps the first of every s elements: the axis is cut to
    length L * s (zero-padded at the end if the input is short of it), split into (L, s) and sliced to
    (L, 1), all operators XNNPACK takes."""
    g = w.graph
    v, out_name = node.inputs[0], node.outputs[0]
    layout = w.layout_of(v)
    x = w.value(v, layout)
    onnx_shape, y_shape = g.shape(v), g.shape(out_name)
    axis_of = (lambda a: NHWC_AXIS[a]) if layout == NHWC else (lambda a: a)
    shape = list(_tshape(onnx_shape, layout))
    begin, size, steps = [0] * len(shape), list(shape), [1] * len(shape)
    for start, a, st in zip(node.attr("starts"), node.attr("axes"), node.attr("steps"), strict=True):
        t, length = axis_of(int(a)), y_shape[int(a)]
        begin[t], steps[t] = int(start), int(st)
        size[t] = min(length * int(st), shape[t] - int(start))
    if begin != [0] * len(shape) or size != shape:
        x = w.slice(x, begin, size, f"{out_name}/cut")
    for t, st in enumerate(steps):
        if st == 1:
            continue
        length = _tshape(y_shape, layout)[t]
        if size[t] < length * st:
            x = w.pad(x, [(0, length * st - size[t]) if i == t else (0, 0) for i in range(len(size))],
                      f"{out_name}/{t}")
        grouped = (*size[:t], length, st, *size[t + 1:])
        x = w.reshaped(x, grouped, f"{out_name}/{t}/groups")
        x = w.slice(x, [0] * len(grouped), [*grouped[:t + 1], 1, *grouped[t + 2:]], f"{out_name}/{t}/first")
        size[t] = length
        x = w.reshaped(x, tuple(size), f"{out_name}/{t}/strided" if t < len(steps) - 1 else out_name)
    if x == w.held.get(v, {}).get(layout):  # nothing cut: a copy, never the input tensor itself
        x = w.reshaped(x, tuple(size), out_name)
    w.held[out_name] = {layout: x}


def _split(w: _Writer, node: Node) -> None:
    """Split as one SLICE per output (XNNPACK takes SPLIT of equal parts only, and no SPLIT_V)."""
    g = w.graph
    v = node.inputs[0]
    layout = w.layout_of(v)
    x = w.value(v, layout)
    rank = _rank(g, v)
    axis = int(node.attr("axis", 0)) % rank
    t = NHWC_AXIS[axis] if layout == NHWC else axis
    offset = 0
    for o in node.outputs:
        size = list(_tshape(g.shape(o), layout))
        begin = [0] * rank
        begin[t] = offset
        offset += size[t]
        w.held[o] = {layout: w.slice(x, begin, size, o)}


def _resize(w: _Writer, node: Node) -> None:
    """linear -> RESIZE_BILINEAR; nearest by integer factors (which `rules` admits only where it repeats each
    element) -> a MUL by ones broadcast over new axes, then a RESHAPE: XNNPACK takes no nearest resize."""
    g = w.graph
    x = w.value(node.inputs[0], NHWC)
    n, c, h, wd = g.shape(node.inputs[0])
    oh, ow = g.shape(node.outputs[0])[2:]
    if text(node.attr("mode", "nearest")) == "linear":
        ctm = text(node.attr("coordinate_transformation_mode", "half_pixel"))
        options = {"AlignCorners": ctm == "align_corners",
                   "HalfPixelCenters": ctm in ("half_pixel", "pytorch_half_pixel")}
        size = w.ints([oh, ow], f"{node.name}/size")
        w.result(node, NHWC, lambda out, _: w.model.operator(Op.RESIZE_BILINEAR, [x, size], [out], (
            "ResizeBilinearOptions", options)), fusable=False)
        return
    fh, fw = oh // h, ow // wd
    spread = w.reshaped(x, (n, h, 1, wd, 1, c), f"{node.name}/spread")
    ones = w.model.constant(np.ones((1, 1, fh, 1, fw, 1), np.float32), f"{node.name}/ones")
    repeated = w.model.tensor((n, h, fh, wd, fw, c), f"{node.name}/repeated")
    w.model.operator(Op.MUL, [spread, ones], [repeated], _fused("MulOptions", Act.NONE))
    w.result(node, NHWC, lambda out, _: w.reshape(repeated, out), fusable=False)


def _conv_transpose(w: _Writer, node: Node) -> None:
    """ConvTranspose -> TRANSPOSE_CONV, VALID (the full output), then a SLICE dropping ONNX's pads."""
    g = w.graph
    x = w.value(node.inputs[0], NHWC)
    weights = np.asarray(g.initializers[node.inputs[1]], np.float32)  # (Cin, Cout, kh, kw)
    n, _, h, wd = g.shape(node.inputs[0])
    co, kh, kw = weights.shape[1:]
    bias_name = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
    bias = np.asarray(g.initializers[bias_name], np.float32) if bias_name else np.zeros(co, np.float32)
    sh, sw = (int(s) for s in node.attr("strides") or [1, 1])
    full = (n, (h - 1) * sh + kh, (wd - 1) * sw + kw, co)
    pads = [int(p) for p in node.attr("pads") or [0, 0, 0, 0]]
    y = _tshape(g.shape(node.outputs[0]), NHWC)
    f = w.model.constant(weights.transpose(1, 2, 3, 0), f"{node.name}/filter")  # OHWI
    b = w.model.constant(bias, f"{node.name}/bias")
    shape = w.ints(list(full), f"{node.name}/output_shape")

    def emit(out: int, code: int) -> None:
        target = out if tuple(full) == y else w.model.tensor(full, f"{node.name}/full")
        w.model.operator(Op.TRANSPOSE_CONV, [shape, f, x, b], [target], ("TransposeConvOptions", {
            "Padding": tflite.Padding.VALID, "StrideW": sw, "StrideH": sh, "FusedActivationFunction": code}))
        if target != out:
            w.model.operator(Op.SLICE, [target, w.ints([0, pads[0], pads[1], 0], f"{node.name}/begin"),
                                        w.ints(list(y), f"{node.name}/size")], [out])
    w.result(node, NHWC, emit)


_EMITTERS: dict[str, Callable[[_Writer, Node], None]] = {
    "Slice": _slice, "Split": _split, "Resize": _resize, "ConvTranspose": _conv_transpose,
    "Conv": _conv, "Gemm": _gemm, "MatMul": _gemm, "MaxPool": _pool, "AveragePool": _pool,
    "GlobalAveragePool": _global_average_pool, "Concat": _concat, "Softmax": _softmax, "Pad": _pad,
    "Transpose": _transpose, **{op: _reshape for op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze")},
    **{op: _binary for op in _BINARY},
    **{op: _unary for op in ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Exp")},
}
