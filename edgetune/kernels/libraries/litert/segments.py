"""A run of nodes as ONE TFLite model run by XNNPACK.

Why: handed a subgraph, XNNPACK keeps NHWC between its layers, fuses (conv + bias + activation, explicit
pad into the conv), plans one arena and pays one call. The segment's boundary is NCHW (the executor's
contract for segments), so the model transposes its 4-D inputs and outputs itself. XNNPACK may leave an
operator to TFLite's own kernels inside a segment; the segment is measured and verified whole either way.
"""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.libraries.litert.convert import convert
from edgetune.kernels.libraries.litert.runner import model_kernel
from edgetune.kernels.library import FP32_SEGMENT, Segment, SegmentVariant
from edgetune.kernels.segments import boundary


def segment_kernel(graph: Graph, nodes: list[Node], threads: int, spin: str = "stop",
                   variant: SegmentVariant = FP32_SEGMENT) -> Segment:
    """One model computing `nodes`; returns (kernel, input values, output values). `spin` is ONNX
    Runtime's spin mode: XNNPACK's pthreadpool has no such setting, so it is ignored. Only the plain fp32
    variant converts: a variant's rewrite is an ONNX (QDQ) model, which this converter does not read, and
    XNNPACK's fp16 path is not exposed by LiteRT's interpreter options; either is refused (ValueError)."""
    if not variant.plain:
        raise ValueError(f"LiteRT segments are fp32 only (asked: precision {variant.precision}, "
                         f"{'an int8 rewrite' if variant.rewrite is not None else 'no rewrite'})")
    ins, outs = boundary(graph, nodes)
    model = convert(graph, nodes, ins, outs, io_nhwc=False)
    return model_kernel(model.content, threads, model.weight_bytes), ins, outs
