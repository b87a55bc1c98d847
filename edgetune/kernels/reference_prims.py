"""`ref.<op>` primitives: the reference executor's NumPy kernels, one primitive per op type.

Why: they run any node edgetune imports, so they are the fallback when no fast primitive applies and
the whole of the built-in "reference" plan (`Plan.builtin("reference")` names `ref.<op lowercase>`).
They are the ground truth itself, hence the tight tolerance.
"""

from __future__ import annotations

import numpy as np

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.base import FunctionKernel, Kernel, PrepareContext, Primitive
from edgetune.kernels.registry import register
from edgetune.runtime.reference import run_node

REFERENCE_PRIMITIVE_OPS = (
    "Conv", "Gemm", "MatMul", "BatchNormalization",
    "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
    "Mul", "Add", "Sub", "Div", "Concat",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Softmax", "Pad", "Slice",
    "LRN", "Identity", "Dropout",
)
"""Op types that get a `ref.<op lowercase>` primitive (every op that survives import, and a few more)."""


class ReferencePrimitive(Primitive):
    """Runs one op type through `reference.run_node`, constants bound at prepare time."""

    library = "numpy-reference"
    tolerance = 1e-5

    def __init__(self, op: str) -> None:
        self.op = op
        self.name = f"ref.{op.lower()}"
        self.op_types = frozenset({op})

    def supports(self, node: Node, graph: Graph) -> str | None:
        if node.op != self.op:
            return f"runs {self.op} only"
        if node.op == "Conv":
            try:
                rank = len(graph.shape(node.inputs[0]))
            except KeyError:
                return None  # shape unknown: run_node copes with any rank >= 3
            if rank < 3:
                return f"Conv input of rank {rank} (needs N, C and at least one spatial axis)"
        return None

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        consts = ctx.graph.weights(node)
        slots = [i for i, name in enumerate(node.inputs) if name and consts[i] is None]

        def run(*dynamic: np.ndarray) -> list[np.ndarray]:
            if len(dynamic) != len(slots):
                raise TypeError(f"{self.name} on {node.name}: expected {len(slots)} inputs, got {len(dynamic)}")
            args = list(consts)
            for i, x in zip(slots, dynamic, strict=True):
                args[i] = x
            return run_node(node, args)

        weight_bytes = sum(int(c.nbytes) for c in consts if c is not None)
        return FunctionKernel(run, weight_bytes=weight_bytes)


PRIMITIVES = {op: register(ReferencePrimitive(op)) for op in REFERENCE_PRIMITIVE_OPS}
