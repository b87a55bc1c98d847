"""Torch primitives that join torch segments: one node as a one-node TorchScript module.

Why: a torch segment is chosen per node like any other option (`Library.fusable`), so each node it may
contain needs a primitive that is verified on that node (segment candidates are the runs where it passed)
and priced alone. Alone, the module is the same oneDNN convolution as `conv.onednn.torch` with a layout
round trip per call around it: rarely the fastest, so it is timed after the node's other candidates.
"""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.base import Kernel, PrepareContext, Primitive
from edgetune.kernels.libraries.torch.rules import PRIMITIVE_NAMES, unsupported
from edgetune.kernels.libraries.torch.segments import compiled_kernel
from edgetune.kernels.one_node import DEDICATED_OPS


class TorchScriptNode(Primitive):
    """One node traced, frozen and optimised for inference as a TorchScript module (fp32, NCHW edges);
    `any_op` for the one that is a candidate for every op but Conv, Gemm and MatMul (`supports` says why
    a node is not lowered)."""

    library = "torch"
    precision = "fp32"
    tolerance = 1e-4
    fuses = True  # a run of them compiles as one module (segments.py)
    measure_last = True  # alone, rarely faster than the dedicated torch kernels

    def __init__(self, name: str, op_types: frozenset[str], any_op: bool = False) -> None:
        self.name = name
        self.op_types = op_types
        self.any_op = any_op

    def runs(self, op: str) -> bool:
        return op not in DEDICATED_OPS if self.any_op else op in self.op_types

    def ops_label(self) -> list[str]:
        return [f"any op except {', '.join(sorted(DEDICATED_OPS))}"] if self.any_op else sorted(self.op_types)

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
