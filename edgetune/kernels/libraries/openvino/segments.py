"""A run of nodes as ONE OpenVINO compiled model.

Why: a run of nodes handed to OpenVINO as one subgraph lets its graph compiler fuse (conv + bias +
activation + eltwise), keep its blocked layouts between layers, and pay one call instead of one per node.
The whole graph on OpenVINO is the special case where every node takes its fusable primitive.
"""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node
from edgetune.graph.onnx_export import to_onnx
from edgetune.kernels.libraries.openvino.compiled import compile_onnx, initializer_bytes, model_kernel
from edgetune.kernels.library import FP32_SEGMENT, Segment, SegmentVariant
from edgetune.kernels.segments import boundary


def segment_kernel(graph: Graph, nodes: list[Node], threads: int, spin: str = "stop",
                   variant: SegmentVariant = FP32_SEGMENT) -> Segment:
    """One compiled model computing `nodes`; returns (kernel, input values, output values). `spin` is ONNX
    Runtime's spin mode, which OpenVINO has no equivalent of: ignored (TBB's workers wait as TBB decides).
    The variant's rewrite (a QDQ model) is compiled as OpenVINO's low-precision pipeline reads it, the rest
    at the variant's precision."""
    ins, outs = boundary(graph, nodes)
    model = to_onnx(graph, nodes=nodes, inputs=ins, outputs=outs)
    if variant.rewrite is not None:
        model = variant.rewrite(model)
    compiled = compile_onnx(model, threads, variant.precision)
    return model_kernel(compiled, initializer_bytes(model)), ins, outs
