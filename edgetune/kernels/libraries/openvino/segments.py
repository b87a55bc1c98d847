"""A run of nodes as ONE OpenVINO compiled model.

Why: a run of nodes handed to OpenVINO as one subgraph lets its graph compiler fuse (conv + bias +
activation + eltwise), keep its blocked layouts between layers, and pay one call instead of one per node.
The whole graph on OpenVINO is the special case where every node takes its fusable primitive.
"""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node
from edgetune.graph.onnx_export import to_onnx
from edgetune.kernels.libraries.openvino.compiled import compile_onnx, initializer_bytes, model_kernel
from edgetune.kernels.library import Segment
from edgetune.kernels.segments import boundary


def segment_kernel(graph: Graph, nodes: list[Node], threads: int, spin: str = "stop") -> Segment:
    """One compiled model computing `nodes`; returns (kernel, input values, output values). `spin` is ONNX
    Runtime's spin mode, which OpenVINO has no equivalent of: ignored (TBB's workers wait as TBB decides)."""
    ins, outs = boundary(graph, nodes)
    model = to_onnx(graph, nodes=nodes, inputs=ins, outputs=outs)
    return model_kernel(compile_onnx(model, threads), initializer_bytes(model)), ins, outs
