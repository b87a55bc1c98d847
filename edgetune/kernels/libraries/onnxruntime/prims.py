"""ONNX Runtime primitives: one single-node InferenceSession per (node, thread count).

Why single-node sessions: ORT's MLAS kernels (NCHWc convolutions at ENABLE_ALL) are the strongest
fp32 choice on many layers here, and a one-node model lets the search mix them with other libraries.
Calls go through the C session's `run` (~7 us) rather than the Python wrapper (~10 us) or IO binding
(~18 us with a fresh output buffer, needed because the executor may keep outputs alive).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgetune.graph.ir import Activation, Graph, Node
from edgetune.graph.onnx_export import to_onnx
from edgetune.kernels.base import Kernel, PrepareContext
from edgetune.kernels.libraries.onnxruntime.session import initializer_bytes, session, session_kernel
from edgetune.kernels.one_node import OneNodeModel

GENERIC_OPS = frozenset(
    {
        "Relu",
        "LeakyRelu",
        "Clip",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Mul",
        "Add",
        "Sub",
        "Div",
        "Concat",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "Flatten",
        "Reshape",
        "Squeeze",
        "Unsqueeze",
        "Transpose",
        "Softmax",
        "Pad",
        "LRN",
        "BatchNormalization",
        "Slice",
    }
)
"""The ops `op.ort` was first written for; it now takes any op without a dedicated ORT primitive."""

# ---- building one-node models ----------------------------------------------------------------


def _tensor_type(dtype: str) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def activation_nodes(
    act: Activation | None, x: str, y: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """ONNX nodes computing `y = act(x)` (Swish as Sigmoid+Mul, HardSwish as x*HardSigmoid so that
    the model stays valid at the graph's opset), plus the constants they need."""
    if act is None:
        return [helper.make_node("Identity", [x], [y])], []
    op, p = act.op, act.params
    if op in ("Relu", "Sigmoid", "Tanh"):
        return [helper.make_node(op, [x], [y])], []
    if op == "LeakyRelu":
        return [helper.make_node(op, [x], [y], alpha=float(p.get("alpha", 0.01)))], []
    if op == "HardSigmoid":
        return [
            helper.make_node(op, [x], [y], alpha=float(p.get("alpha", 0.2)), beta=float(p.get("beta", 0.5)))
        ], []
    if op == "HardSwish":
        return [
            helper.make_node("HardSigmoid", [x], [y + "__hs"], alpha=1.0 / 6.0, beta=0.5),
            helper.make_node("Mul", [x, y + "__hs"], [y]),
        ], []
    if op == "Swish":
        return [
            helper.make_node("Sigmoid", [x], [y + "__sg"]),
            helper.make_node("Mul", [x, y + "__sg"], [y]),
        ], []
    if op == "Clip":
        inits, names = [], []
        for k in ("min", "max"):
            v = p.get(k)
            if v is None or not math.isfinite(v):
                names.append("")
            else:
                names.append(f"{y}__{k}")
                inits.append(numpy_helper.from_array(np.array(v, dtype=np.float32), names[-1]))
        return [helper.make_node("Clip", [x, *names], [y])], inits
    raise ValueError(f"unknown activation {op}")


def make_model(
    graph: Graph,
    inputs: list[str],
    outputs: list[str],
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto],
    opset: int | None = None,
) -> onnx.ModelProto:
    """A model over `nodes` whose graph inputs/outputs take their shapes and dtypes from `graph`."""
    vi = [
        helper.make_tensor_value_info(v, _tensor_type(graph.dtype(v)), list(graph.shape(v))) for v in inputs
    ]
    vo = [
        helper.make_tensor_value_info(v, _tensor_type(graph.dtype(v)), list(graph.shape(v))) for v in outputs
    ]
    g = helper.make_graph(nodes, "edgetune_node", vi, vo, initializers)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset or graph.opset)])
    model.ir_version = min(model.ir_version, 10)
    return model


def node_model(graph: Graph, node: Node, activation: Activation | None = None) -> onnx.ModelProto:
    """A one-node model of `node` (constants as initializers) with `activation` appended.

    Goes through the graph exporter, which turns the IR's lifted attributes (Reshape shape, Clip
    bounds, Pad pads, Squeeze/Unsqueeze axes) back into the ONNX inputs they are at opset >= 13."""

    one = dataclasses.replace(node, activation=activation)
    dyn = list(dict.fromkeys(graph.dynamic_inputs(node)))  # Mul(x, x) reads x once
    return to_onnx(graph, nodes=[one], inputs=dyn, outputs=[o for o in node.outputs if o])


# ---- primitives -----------------------------------------------------------------------------------


class OrtNode(OneNodeModel):
    """A single-node fp32 session (Conv, Gemm/MatMul, or any other op ONNX can express)."""

    library = "onnxruntime"

    def __init__(self, name: str, op_types: frozenset[str], optimization: str = "all",
                 any_op: bool = False) -> None:
        super().__init__(name, op_types, any_op)
        self.optimization = optimization
        self.fuses = optimization == "all"  # plain ENABLE_ALL fp32 sessions: their union is one session too

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        model = node_model(ctx.graph, node, node.activation)
        sess = session(model, ctx.threads, self.optimization, ctx.ort_spin)
        return session_kernel(sess, initializer_bytes(model), ctx.graph.dynamic_inputs(node))


PRIMITIVES = [
    OrtNode("conv.mlas.ort", frozenset({"Conv"}), "all"),
    OrtNode("conv.mlas_basic.ort", frozenset({"Conv"}), "basic"),
    OrtNode("gemm.mlas.ort", frozenset({"Gemm", "MatMul"}), "all"),
    OrtNode("op.ort", GENERIC_OPS, "all", any_op=True),
]
