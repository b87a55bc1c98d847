"""OpenVINO (CPU plugin): fp32 Conv, Gemm/MatMul and any other op as one-node compiled models, and runs
of fusable nodes compiled into one model (segments). Threads are set per compiled model (TBB)."""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.library import FP32_SEGMENT, Library, Segment, SegmentVariant, ThreadPool
from edgetune.kernels.one_node import pick_by_op


def warm_up(threads: int) -> None:
    from edgetune.kernels.libraries.openvino.compiled import warm_up_compiled  # loads openvino on demand

    warm_up_compiled(threads)


def compile_segment(graph: Graph, nodes: list[Node], threads: int, spin: str,
                    variant: SegmentVariant = FP32_SEGMENT) -> Segment:
    """One compiled model for `nodes`; `spin` (ONNX Runtime's spin mode) does not apply to OpenVINO and is
    ignored."""
    from edgetune.kernels.libraries.openvino.segments import segment_kernel  # loads openvino on demand

    return segment_kernel(graph, nodes, threads, spin, variant)


def fusable_primitive(node: Node) -> str:
    """The OpenVINO primitive that can join a segment for `node` (every one: plain fp32 models)."""
    return pick_by_op(node, "conv.cpu.openvino", "gemm.cpu.openvino", "op.openvino")


OPENVINO_POOL = ThreadPool("openvino", set_threads=None, probe="conv.cpu.openvino", warm_up=warm_up)

LIBRARY = Library("openvino", ("prims",), OPENVINO_POOL, requires=("openvino",),
                  segment=compile_segment, fusable=fusable_primitive, rank=60)
