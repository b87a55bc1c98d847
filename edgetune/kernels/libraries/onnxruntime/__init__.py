"""ONNX Runtime: MLAS fp32 Conv/Gemm, any other op as a one-node session, QLinearConv/QDQ int8, and
runs of fusable nodes compiled into one session (segments). Threads are set per session."""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.library import FP32_SEGMENT, Library, Segment, SegmentVariant, ThreadPool
from edgetune.kernels.one_node import pick_by_op


def warm_up(threads: int) -> None:
    from edgetune.kernels.libraries.onnxruntime.session import warm_up_session  # loads onnxruntime on demand

    warm_up_session(threads)


def compile_segment(graph: Graph, nodes: list[Node], threads: int, spin: str,
                    variant: SegmentVariant = FP32_SEGMENT) -> Segment:
    from edgetune.kernels.libraries.onnxruntime.segments import segment_kernel  # loads onnxruntime on demand

    return segment_kernel(graph, nodes, threads, spin, variant)


def fusable_primitive(node: Node) -> str:
    """The one ORT primitive that can join a segment for `node` (plain ENABLE_ALL fp32 sessions)."""
    return pick_by_op(node, "conv.mlas.ort", "gemm.mlas.ort", "op.ort")


ORT_POOL = ThreadPool("ort", probe="conv.mlas.ort", warm_up=warm_up)

LIBRARY = Library("onnxruntime", ("prims", "int8"), ORT_POOL, requires=("onnxruntime", "onnx"),
                  segment=compile_segment, fusable=fusable_primitive, rank=50)
