"""LiteRT primitives: one TFLite model per (node, thread count), run by XNNPACK.

Why: XNNPACK is the CPU library behind TFLite/LiteRT, tuned for Arm (NEON dot product, i8mm, fp16) and
x86 (AVX2/AVX-512); it is what many edge deployments run. One-node models let the search mix it with the
others per layer; runs of its nodes compile into one model (`segments.py`). Its 4-D inputs and outputs
are NHWC arrays (XNNPACK's layout), declared through `Format` so that the design space prices the
NCHW <-> NHWC converters around it like any other layout change. A node XNNPACK would not take whole
is refused at prepare (the primitive's name says XNNPACK; TFLite's own kernels are not what is measured).

`conv.xnnpack_nchw.litert` is the same convolution with NCHW edges, the transposes inside the model (run
by XNNPACK's threads): rarely better than NHWC edges, so measured last; it is also the pool's switch-cost
probe, which is called with an NCHW array.
"""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.base import FP32, FP32_NHWC, Format, Kernel, PrepareContext, Primitive
from edgetune.kernels.libraries.litert.convert import convert
from edgetune.kernels.libraries.litert.rules import CONV_OPS, GEMM_OPS, OTHER_OPS, PRIMITIVE_NAMES, unsupported
from edgetune.kernels.libraries.litert.runner import model_kernel, runtime_unavailable, undelegated


class XnnpackNode(Primitive):
    """A node converted to a one-node TFLite model and run by XNNPACK; `layout` is that of its 4-D edges
    (other edges are plain NCHW arrays)."""

    library = "litert"
    precision = "fp32"
    tolerance = 1e-4

    def __init__(self, name: str, op_types: frozenset[str], layout: str = "NHWC") -> None:
        self.name = name
        self.op_types = op_types
        self.layout = layout
        self.fuses = layout == "NHWC"  # the one primitive per op that joins a segment (converted as one model)
        self.measure_last = layout != "NHWC"

    def available(self) -> str | None:
        return runtime_unavailable()

    def supports(self, node: Node, graph: Graph) -> str | None:
        return unsupported(node, graph)

    def input_formats(self, node: Node, graph: Graph) -> list[Format]:
        return [self._format(graph, v) for v in graph.dynamic_inputs(node)]

    def output_format(self, node: Node, graph: Graph) -> Format:
        return self._format(graph, node.outputs[0])

    def _format(self, graph: Graph, value: str) -> Format:
        return FP32_NHWC if self.layout == "NHWC" and len(graph.shape(value)) == 4 else FP32

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        dyn = ctx.graph.dynamic_inputs(node)
        unique = list(dict.fromkeys(dyn))  # Mul(x, x): one model input, the kernel is called with x twice
        model = convert(ctx.graph, [node], unique, [o for o in node.outputs if o], io_nhwc=self.layout == "NHWC")
        kernel = model_kernel(model.content, ctx.threads, model.weight_bytes, [dyn.index(v) for v in unique],
                              len(dyn))
        left = undelegated(kernel.interpreter)
        if left:
            raise ValueError(f"XNNPACK did not take {', '.join(left)}")
        return kernel


PRIMITIVES = [
    XnnpackNode(PRIMITIVE_NAMES["conv"], CONV_OPS),
    XnnpackNode(PRIMITIVE_NAMES["gemm"], GEMM_OPS),
    XnnpackNode(PRIMITIVE_NAMES["op"], OTHER_OPS),
    XnnpackNode(PRIMITIVE_NAMES["conv_nchw"], CONV_OPS, layout="NCHW"),
]
