"""What every backend that runs a node as a one-node model (ONNX Runtime, OpenVINO) shares: which ops
it takes, the reasons it refuses a node, and which of its primitives joins a segment for a node.

Why shared: both backends compile the node's ONNX form, so they accept and refuse nodes for the same
reasons; written once, a third such backend subclasses it.
"""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.base import Primitive

DEDICATED_OPS = frozenset({"Conv", "Gemm", "MatMul"})
"""Ops with their own primitive in such a backend (its Conv and its Gemm/MatMul), so not its generic one's."""


def shapes_known(node: Node, graph: Graph) -> str | None:
    """None when every value the node reads or writes has a static shape, else the reason."""
    for v in [*graph.dynamic_inputs(node), *(o for o in node.outputs if o)]:
        try:
            graph.shape(v)
        except KeyError:
            return f"shape of {v} unknown"
    return None


def pick_by_op(node: Node, conv: str, gemm: str, generic: str) -> str:
    """The backend's primitive for `node`: its Conv, its Gemm/MatMul, or its generic one-node model."""
    if node.op == "Conv":
        return conv
    if node.op in ("Gemm", "MatMul"):
        return gemm
    return generic


class OpFamilyPrimitive(Primitive):
    """A backend's primitive for some ops, or (`any_op`) its generic one: a candidate for every op without a
    dedicated primitive (DEDICATED_OPS), where verification settles whether the backend really runs it."""

    def __init__(self, name: str, op_types: frozenset[str], any_op: bool = False) -> None:
        self.name = name
        self.op_types = op_types
        self.any_op = any_op

    def runs(self, op: str) -> bool:
        return op not in DEDICATED_OPS if self.any_op else op in self.op_types

    def ops_label(self) -> list[str]:
        return [f"any op except {', '.join(sorted(DEDICATED_OPS))}"] if self.any_op else sorted(self.op_types)


class OneNodeModel(OpFamilyPrimitive):
    """A node compiled alone as an ONNX model by a backend."""

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
