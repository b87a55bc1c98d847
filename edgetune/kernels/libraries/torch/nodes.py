"""Torch primitives that join torch segments: one node as a one-node TorchScript module.

Why: a torch segment is chosen per node like any other option (`Library.fusable`), so each node it may
contain needs a primitive that is verified on that node (segment candidates are the runs where it passed)
and priced alone. Alone, the module is the same oneDNN convolution as `conv.onednn.torch` with a layout
round trip per call around it: rarely the fastest, so it is timed after the node's other candidates.
"""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.base import Kernel, PrepareContext
from edgetune.kernels.libraries.torch.rules import PRIMITIVE_NAMES, unsupported
from edgetune.kernels.libraries.torch.segments import compiled_kernel
from edgetune.kernels.one_node import OpFamilyPrimitive


class TorchScriptNode(OpFamilyPrimitive):
    """One node traced, frozen and optimised for inference as a TorchScript module (fp32, NCHW edges);
    `any_op` for the one that is a candidate for every op but Conv, Gemm and MatMul (`supports` says why
    a node is not lowered)."""

    library = "torch"
    precision = "fp32"
    tolerance = 1e-4
    fuses = True  # a run of them compiles as one module (segments.py)
    measure_last = True  # alone, rarely faster than the dedicated torch kernels

    def supports(self, node: Node, graph: Graph) -> str | None:
        return unsupported(node, graph)

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        dyn = ctx.graph.dynamic_inputs(node)
        unique = list(dict.fromkeys(dyn))  # Mul(x, x): one module input, the kernel is called with x twice
        return compiled_kernel(ctx.graph, [node], unique, [o for o in node.outputs if o],
                               [dyn.index(v) for v in unique], len(dyn))


PRIMITIVES = [
    TorchScriptNode(PRIMITIVE_NAMES["conv"], frozenset({"Conv"})),
    TorchScriptNode(PRIMITIVE_NAMES["gemm"], frozenset({"Gemm", "MatMul"})),
    TorchScriptNode(PRIMITIVE_NAMES["op"], frozenset(), any_op=True),
]
