"""LiteRT (`ai-edge-litert`, formerly TensorFlow Lite) with its default CPU delegate XNNPACK: Conv,
Gemm/MatMul and the other ops edge CNNs need, converted from the IR to TFLite models by edgetune's own
writer (no TensorFlow), one node per model or runs of nodes as one model (segments). Threads are set per
interpreter."""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.libraries.litert.rules import primitive_for
from edgetune.kernels.library import FP32_SEGMENT, Library, Segment, SegmentVariant, ThreadPool


def warm_up(threads: int) -> None:
    from edgetune.kernels.libraries.litert.runner import warm_up_runtime  # loads ai_edge_litert on demand

    warm_up_runtime(threads)


def compile_segment(graph: Graph, nodes: list[Node], threads: int, spin: str,
                    variant: SegmentVariant = FP32_SEGMENT) -> Segment:
    """One fp32 TFLite model for `nodes` (XNNPACK has no spin setting: `spin` is ignored)."""
    from edgetune.kernels.libraries.litert.segments import segment_kernel  # loads ai_edge_litert on demand

    return segment_kernel(graph, nodes, threads, spin, variant)


def fusable_primitive(node: Node) -> str | None:
    """The LiteRT primitive that can join a segment for `node`; None for an op the converter does not write."""
    return primitive_for(node)


LITERT_POOL = ThreadPool("litert", set_threads=None, probe="conv.xnnpack_nchw.litert", warm_up=warm_up)

LIBRARY = Library("litert", ("prims",), LITERT_POOL, requires=("ai_edge_litert", "tflite", "flatbuffers"),
                  segment=compile_segment, fusable=fusable_primitive, rank=70)
