"""OpenVINO primitives: one compiled one-node model per (node, thread count).

Why: OpenVINO's CPU plugin (oneDNN kernels with its own graph compiler and layouts) is another strong fp32
library on x86 and Arm; one-node models let the search mix it with the others per layer, and runs of
its nodes compile into one model (`segments.py`). The one-node model is the graph exporter's, so the
node's fused activation is in it: the compiled model applies it.
"""

from __future__ import annotations

from edgetune.graph.ir import Node
from edgetune.graph.onnx_export import to_onnx
from edgetune.kernels.base import Kernel, PrepareContext
from edgetune.kernels.libraries.openvino.compiled import compile_onnx, cpu_unavailable, initializer_bytes, model_kernel
from edgetune.kernels.one_node import OneNodeModel


class OpenVinoNode(OneNodeModel):
    """A one-node fp32 model compiled for OpenVINO's CPU plugin (Conv, Gemm/MatMul, or any other op its ONNX
    front end reads)."""

    library = "openvino"
    precision = "fp32"
    tolerance = 1e-4
    fuses = True  # plain fp32 models: a run of them compiles as one model too (segments.py)

    def available(self) -> str | None:
        return cpu_unavailable()

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
