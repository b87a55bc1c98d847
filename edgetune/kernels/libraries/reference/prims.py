"""`ref.<op>` primitives: the reference executor's NumPy kernels, one primitive per op type.

Why: they run any node edgetune imports, so they are the fallback when no fast primitive applies and
the whole of the built-in "reference" plan (`Plan.builtin("reference")` names `ref.<op lowercase>`).
They are the ground truth itself, hence the tight tolerance. `ref.onnx` runs every other op through the
same `run_node`, which falls back to constant_ops' NumPy and then to `onnx.reference`.
"""

from __future__ import annotations

import numpy as np

from edgetune.graph.ir import Graph, Node
from edgetune.graph.reference import REFERENCE_OPS, reference_primitive_name, run_node
from edgetune.kernels.base import FunctionKernel, Kernel, PrepareContext, Primitive

REFERENCE_PRIMITIVE_OPS = tuple(sorted(REFERENCE_OPS))
"""Op types that get a `ref.<op lowercase>` primitive (every op with a kernel in the reference executor)."""


class ReferencePrimitive(Primitive):
    """Runs one op type through `reference.run_node`, constants bound at prepare time."""

    library = "numpy-reference"
    measure_last = True  # float64 ground truth: the slowest way, timed last
    tolerance = 1e-5

    def __init__(self, op: str | None) -> None:
        """`op` None: the generic `ref.onnx`, for every op without its own reference kernel."""
        self.op = op
        self.name = reference_primitive_name(op) if op else "ref.onnx"
        self.op_types = frozenset({op}) if op else frozenset()

    def runs(self, op: str) -> bool:
        return op == self.op if self.op else op not in REFERENCE_OPS

    def ops_label(self) -> list[str]:
        return [self.op] if self.op else ["any op without a ref.<op> kernel (constant_ops, onnx.reference)"]

    def supports(self, node: Node, graph: Graph) -> str | None:
        if not self.runs(node.op):
            return f"runs {self.op or 'ops without a reference kernel'} only"
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


PRIMITIVES = [*(ReferencePrimitive(op) for op in REFERENCE_PRIMITIVE_OPS), ReferencePrimitive(None)]
