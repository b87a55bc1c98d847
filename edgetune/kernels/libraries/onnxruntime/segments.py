"""A run of nodes as ONE ONNX Runtime session.

Why: a run of nodes handed to ORT as one subgraph keeps ORT's blocked NCHWc layout between its
convolutions, lets ORT fuse, and pays one dispatch instead of one per node. Whole-graph ORT is the
special case where every node takes its fusable primitive.
"""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node
from edgetune.graph.onnx_export import to_onnx
from edgetune.kernels.libraries.onnxruntime.session import initializer_bytes, session, session_kernel
from edgetune.kernels.library import FP32_SEGMENT, Segment, SegmentVariant
from edgetune.kernels.segments import boundary


def segment_kernel(graph: Graph, nodes: list[Node], threads: int, spin: str = "stop",
                   variant: SegmentVariant = FP32_SEGMENT) -> Segment:
    """One ORT session computing `nodes`; returns (kernel, input values, output values). `spin` as in
    `session.ort_session_options`: "on" only when this session is all the plan runs. ONNX Runtime's CPU
    provider has no bf16/f16 mode: a variant asking for one is refused."""
    if variant.precision != "fp32":
        raise ValueError(f"ONNX Runtime's CPU provider does not compute in {variant.precision}")
    ins, outs = boundary(graph, nodes)
    model = to_onnx(graph, nodes=nodes, inputs=ins, outputs=outs)
    if variant.rewrite is not None:
        model = variant.rewrite(model)
    sess = session(model, threads, "all", spin)
    return session_kernel(sess, initializer_bytes(model), ins), ins, outs
