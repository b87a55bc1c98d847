"""ONNX Runtime int8 convolutions (QLinearConv and fused QDQ), fp32 in and out.

Why four variants: on AVX2 without VNNI, MLAS's u8s8 kernel uses `vpmaddubsw`, whose int16
accumulation saturates with full-range uint8 activations (10-20 % error, silently). 7-bit
activations (reduce_range) or uint8 weights avoid it. All variants are offered; verification rejects
the wrong ones on the machine at hand. Quantise/dequantise run inside the ONNX graph (faster than
numpy: ~45 us against ~190 us for a 64x56x56 tensor).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgetune.graph.ir import Graph, Node
from edgetune.kernels import int8_calib as cal
from edgetune.kernels.base import Format, Kernel, PrepareContext, Primitive
from edgetune.kernels.libraries.onnxruntime.prims import (
    activation_nodes,
    initializer_bytes,
    make_model,
    node_model,
    session,
    session_kernel,
)


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


class OrtInt8Conv(Primitive):
    """int8 conv as QuantizeLinear -> QLinearConv -> DequantizeLinear (or the QDQ form ORT fuses)."""

    library = "onnxruntime"
    op_types = frozenset({"Conv"})
    precision = "int8"
    tolerance = 0.05

    def __init__(self, name: str, form: str, reduce_range: bool, uint8_weights: bool = False) -> None:
        self.name = name
        self.form = form  # "qlinear" or "qdq"
        self.reduce_range = reduce_range
        self.uint8_weights = uint8_weights

    def supports(self, node: Node, graph: Graph) -> str | None:
        if node.inputs[1] not in graph.initializers:
            return "weights must be constant"
        if len(node.inputs) > 2 and node.inputs[2] and node.inputs[2] not in graph.initializers:
            return "bias must be constant"
        if len(graph.shape(node.inputs[0])) != 4:
            return "only 2-D convolution (4-D input)"
        return None

    def _calibrate(self, node: Node, ctx: PrepareContext) -> tuple[float, int, float, int]:
        """Input (scale, zp) from the samples; output (scale, zp) from the fp32 conv on them."""
        g = ctx.graph
        x = cal.input_sample(ctx, node.inputs[0], g.shape(node.inputs[0]))
        xs, xzp = cal.act_qparams(x, 127 if self.reduce_range else 255)
        act = node.activation if cal.relu_like(node.activation) else None
        sess = session(node_model(g, node, act), 1, "basic")
        y = sess.run(None, {node.inputs[0]: np.ascontiguousarray(x)})[0]
        ys, yzp = cal.act_qparams(y, 255)
        return xs, xzp, ys, yzp

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        g = ctx.graph
        xs, xzp, ys, yzp = self._calibrate(node, ctx)
        x, y = node.inputs[0], node.outputs[0]
        conv_attrs = _conv_attrs(node)
        wq, wsc, bq = _int8_weights(node, g, xs)
        co = wq.shape[0]
        inits = _scale_constants(xs, xzp, ys, yzp, wsc, bq)
        if self.form == "qlinear":
            inits += _weight_constants(wq, self.uint8_weights)
            nodes = [
                helper.make_node("QuantizeLinear", [x, "xs", "xzp"], ["xq"]),
                _qlinear_conv("xq", "yq", conv_attrs),
                helper.make_node("DequantizeLinear", ["yq", "ys", "yzp"], ["yf"]),
            ]
        else:
            inits += [
                _const("wq", wq),
                _const("wzp", np.zeros(co, np.int8)),
                _const("bs", (xs * wsc).astype(np.float32)),
                _const("bzp", np.zeros(co, np.int32)),
            ]
            nodes = [
                helper.make_node("QuantizeLinear", [x, "xs", "xzp"], ["xq"]),
                helper.make_node("DequantizeLinear", ["xq", "xs", "xzp"], ["xd"]),
                helper.make_node("DequantizeLinear", ["wq", "ws", "wzp"], ["wd"], axis=0),
                helper.make_node("DequantizeLinear", ["bq", "bs", "bzp"], ["bd"], axis=0),
                helper.make_node("Conv", ["xd", "wd", "bd"], ["yc"], **conv_attrs),
                helper.make_node("QuantizeLinear", ["yc", "ys", "yzp"], ["yq"]),
                helper.make_node("DequantizeLinear", ["yq", "ys", "yzp"], ["yf"]),
            ]
        act_nodes, act_inits = activation_nodes(node.activation, "yf", y)
        model = make_model(g, [x], [y], nodes + act_nodes, inits + act_inits, opset=max(g.opset, 13))
        return session_kernel(session(model, ctx.threads, "all", ctx.ort_spin), initializer_bytes(model))


class OrtInt8EdgeConv(OrtInt8Conv):
    """int8 conv with uint8 edges: QLinearConv alone, reading and writing uint8 tensors whose parameters are
    the edges' (`int8_calib.edge_qparams`), so a run of such convolutions stays int8 between them and the
    design space prices a quantise / dequantise only where int8 meets float. Full-range uint8 activations,
    so both ends of every edge agree; int8 weights (7-bit on x86 without VNNI, where u8 x s8 pair sums would
    saturate int16) or uint8 weights. A fused activation must be ReLU-like: the output's saturation at its
    calibrated range applies it."""

    graph_calibrated = True

    def __init__(self, name: str, uint8_weights: bool) -> None:
        super().__init__(name, "qlinear", reduce_range=False, uint8_weights=uint8_weights)

    def weight_qmax(self) -> int:
        """7-bit int8 weights where u8 x s8 would saturate (x86 without VNNI, as ONNX Runtime's reduce_range
        does), so that full-range uint8 edges stay exact; full 8-bit elsewhere and for uint8 weights."""
        return cal.INT8_MAX_REDUCED if not self.uint8_weights and cal.u8s8_saturates() else 127

    def supports(self, node: Node, graph: Graph) -> str | None:
        reason = super().supports(node, graph)
        if reason is None and node.activation is not None and not cal.relu_like(node.activation):
            return f"activation {node.activation.op} cannot be applied by uint8 saturation"
        if reason is None and graph.dtype(node.inputs[0]) != "float32":
            return "float32 input only"
        return reason

    def input_formats(self, node: Node, graph: Graph) -> list[Format]:
        return [cal.u8_format(graph, node.inputs[0])]

    def output_format(self, node: Node, graph: Graph) -> Format:
        return cal.u8_format(graph, node.outputs[0])

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        g = ctx.graph
        x, y = node.inputs[0], node.outputs[0]
        (xs, xzp), (ys, yzp) = cal.edge_qparams(g, x), cal.edge_qparams(g, y)
        wq, wsc, bq = _int8_weights(node, g, xs, self.weight_qmax())
        inits = [*_scale_constants(xs, xzp, ys, yzp, wsc, bq), *_weight_constants(wq, self.uint8_weights)]
        model = make_model(g, [x], [y], [_qlinear_conv(x, y, _conv_attrs(node))], inits, opset=max(g.opset, 13))
        for io in (*model.graph.input, *model.graph.output):
            io.type.tensor_type.elem_type = onnx.TensorProto.UINT8
        return session_kernel(session(model, ctx.threads, "all", ctx.ort_spin), initializer_bytes(model))


class OrtInt8EdgeAdd(Primitive):
    """int8 residual sum with uint8 edges: com.microsoft QLinearAdd, reading both operands and writing the sum
    as uint8 with the edges' parameters, so a residual block (conv -> conv -> add) stays int8 end to end
    instead of dequantising at every merge. A fused activation must be ReLU-like (applied by saturation)."""

    library = "onnxruntime"
    op_types = frozenset({"Add"})
    precision = "int8"
    tolerance = 0.05
    graph_calibrated = True
    name = "add.qlinear_u8_edges.ort"

    def supports(self, node: Node, graph: Graph) -> str | None:
        a, b = node.inputs[:2]
        if a in graph.initializers or b in graph.initializers:
            return "two dynamic operands only (a constant operand is a bias: fused into the conv)"
        if a == b:
            return "the same value on both sides (x + x)"
        if graph.shape(a) != graph.shape(b) or len(graph.shape(a)) != 4:
            return "two 4-D operands of one shape only (no broadcasting)"
        if graph.dtype(a) != "float32" or graph.dtype(b) != "float32":
            return "float32 operands only"
        if node.activation is not None and not cal.relu_like(node.activation):
            return f"activation {node.activation.op} cannot be applied by uint8 saturation"
        return None

    def input_formats(self, node: Node, graph: Graph) -> list[Format]:
        return [cal.u8_format(graph, v) for v in node.inputs[:2]]

    def output_format(self, node: Node, graph: Graph) -> Format:
        return cal.u8_format(graph, node.outputs[0])

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        g = ctx.graph
        (a, b), y = node.inputs[:2], node.outputs[0]
        consts = []
        for tag, v in (("a", a), ("b", b), ("y", y)):
            scale, zero_point = cal.edge_qparams(g, v)
            consts += [_const(f"{tag}s", np.float32(scale)), _const(f"{tag}zp", np.uint8(zero_point))]
        add = helper.make_node("QLinearAdd", [a, "as", "azp", b, "bs", "bzp", "ys", "yzp"], [y],
                               domain="com.microsoft")
        model = make_model(g, [a, b], [y], [add], consts, opset=max(g.opset, 13))
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        for io in (*model.graph.input, *model.graph.output):
            io.type.tensor_type.elem_type = onnx.TensorProto.UINT8
        return session_kernel(session(model, ctx.threads, "all", ctx.ort_spin), 0, feed=[a, b])


def _int8_weights(node: Node, graph: Graph, xs: float, qmax: int = 127
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(per-channel int8 weights in [-qmax, qmax], their scales, int32 bias in units of xs * scale) of a conv."""
    w = graph.initializers[node.inputs[1]].astype(np.float32)
    co = w.shape[0]
    wsc = cal.weight_scales(w, qmax)
    wq = cal.quantize_weights(w, wsc, qmax)
    b = graph.initializers.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    # channels with near-zero weights can overflow the int32 bias (such a layer then fails verification
    # instead of warning about a NaN cast)
    i32 = np.iinfo(np.int32)
    bq = np.clip(np.rint((b if b is not None else np.zeros(co)) / (xs * wsc)), i32.min, i32.max).astype(np.int32)
    return wq, wsc, bq


def _scale_constants(xs: float, xzp: int, ys: float, yzp: int, wsc: np.ndarray, bq: np.ndarray
                     ) -> list[onnx.TensorProto]:
    """The activations' (scale, zero point), the weights' per-channel scales and the int32 bias."""
    return [_const("xs", np.float32(xs)), _const("xzp", np.uint8(xzp)), _const("ys", np.float32(ys)),
            _const("yzp", np.uint8(yzp)), _const("ws", wsc.astype(np.float32)), _const("bq", bq)]


def _conv_attrs(node: Node) -> dict:
    """The node's Conv attributes as ONNX takes them (the IR keeps pads explicit; auto_pad is dropped)."""
    return {k: v for k, v in node.attrs.items() if k != "auto_pad"}


def _weight_constants(wq: np.ndarray, uint8_weights: bool) -> list[onnx.TensorProto]:
    """QLinearConv's weights and their zero points: int8 (zero 0) or shifted to uint8 (zero 128)."""
    co = wq.shape[0]
    if uint8_weights:
        return [_const("wq", (wq.astype(np.int16) + 128).astype(np.uint8)), _const("wzp", np.full(co, 128, np.uint8))]
    return [_const("wq", wq), _const("wzp", np.zeros(co, np.int8))]


def _qlinear_conv(x: str, y: str, conv_attrs: dict) -> onnx.NodeProto:
    return helper.make_node("QLinearConv", [x, "xs", "xzp", "wq", "ws", "wzp", "ys", "yzp", "bq"], [y], **conv_attrs)


PRIMITIVES = [
    OrtInt8Conv("conv.qlinear_u8s8.ort", "qlinear", reduce_range=False),
    OrtInt8Conv("conv.qlinear_u8s8_rr.ort", "qlinear", reduce_range=True),
    OrtInt8Conv("conv.qlinear_u8u8.ort", "qlinear", reduce_range=False, uint8_weights=True),
    OrtInt8Conv("conv.qdq.ort", "qdq", reduce_range=True),
    OrtInt8EdgeConv("conv.qlinear_u8s8_edges.ort", uint8_weights=False),
    OrtInt8EdgeConv("conv.qlinear_u8u8_edges.ort", uint8_weights=True),
    OrtInt8EdgeAdd(),
]
