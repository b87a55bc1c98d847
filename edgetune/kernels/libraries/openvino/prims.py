"""OpenVINO primitives: one compiled one-node model per (node, thread count).

Why: OpenVINO's CPU plugin (oneDNN kernels with its own graph compiler and layouts) is another strong fp32
library on x86 and Arm; one-node models let the search mix it with the others per layer, and runs of
its nodes compile into one model (`segments.py`). The one-node model is the graph exporter's, so the
node's fused activation is in it: the compiled model applies it.
"""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node
from edgetune.graph.onnx_export import to_onnx
from edgetune.kernels.base import Kernel, PrepareContext, Primitive
from edgetune.kernels.libraries.openvino.compiled import compile_onnx, cpu_unavailable, initializer_bytes, model_kernel

DEDICATED_OPS = frozenset({"Conv", "Gemm", "MatMul"})
"""Ops with their own OpenVINO primitives (`conv.cpu.openvino`, `gemm.cpu.openvino`), so not `op.openvino`'s."""


def shapes_known(node: Node, graph: Graph) -> str | None:
    for v in [*graph.dynamic_inputs(node), *(o for o in node.outputs if o)]:
        try:
            graph.shape(v)
        except KeyError:
            return f"shape of {v} unknown"
    return None


class OpenVinoNode(Primitive):
    """A one-node fp32 model compiled for OpenVINO's CPU plugin (Conv, Gemm/MatMul, or any other op its ONNX
    front end reads)."""

    library = "openvino"
    precision = "fp32"
    tolerance = 1e-4
    fuses = True  # plain fp32 models: a run of them compiles as one model too (segments.py)

    def __init__(self, name: str, op_types: frozenset[str], any_op: bool = False) -> None:
        self.name = name
        self.op_types = op_types
        self.any_op = any_op

    def available(self) -> str | None:
        return cpu_unavailable()

    def runs(self, op: str) -> bool:
        """The generic `op.openvino` is a candidate for every op except those with a dedicated primitive;
        whether OpenVINO really runs a node is settled by verification (prepare fails otherwise)."""
        return op not in DEDICATED_OPS if self.any_op else op in self.op_types

    def ops_label(self) -> list[str]:
        return [f"any op except {', '.join(sorted(DEDICATED_OPS))}"] if self.any_op else sorted(self.op_types)

    def supports(self, node: Node, graph: Graph) -> str | None:
        if node.op == "Conv":
            if node.inputs[1] not in graph.initializers:
                return "weights must be constant"
            if len(graph.shape(node.inputs[0])) != 4:
                return "only 2-D convolution (4-D input)"
        if node.op == "Gemm" and node.inputs[1] not in graph.initializers:
            return "B must be constant"
        if not graph.dynamic_inputs(node):
            return "no dynamic input (should have been constant-folded)"
        return shapes_known(node, graph)

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        dyn = ctx.graph.dynamic_inputs(node)
        unique = list(dict.fromkeys(dyn))  # Mul(x, x): one model input, the kernel is called with x twice
        model = to_onnx(ctx.graph, nodes=[node], inputs=unique, outputs=[o for o in node.outputs if o])
        feed = [dyn.index(v) for v in unique]
        return model_kernel(compile_onnx(model, ctx.threads), initializer_bytes(model), feed, len(dyn))


PRIMITIVES = [
    OpenVinoNode("conv.cpu.openvino", frozenset({"Conv"})),
    OpenVinoNode("gemm.cpu.openvino", frozenset({"Gemm", "MatMul"})),
    OpenVinoNode("op.openvino", frozenset(), any_op=True),
]
