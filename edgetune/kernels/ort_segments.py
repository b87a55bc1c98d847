"""Graph partitioning: consecutive nodes assigned to ONNX Runtime fp32 run as ONE session.

Why: a run of nodes handed to ORT as one subgraph keeps ORT's blocked NCHWc layout between its
convolutions, lets ORT fuse, and pays one dispatch instead of one per node. Whole-graph ORT is the
special case where every node is fusable. The executor merges each maximal run of consecutive nodes
(topological order) whose chosen primitive is in `FUSABLE` with the same thread count; the profiler
measures the gain of merging each topologically adjacent pair, which the search adds as an edge cost.
"""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.base import Kernel

# Single-node primitives that are plain ENABLE_ALL fp32 sessions, so that their union is one too.
FUSABLE = frozenset({"conv.mlas.ort", "gemm.mlas.ort", "op.ort"})
PAIR_KEY = "ort.pair"


def boundary(graph: Graph, nodes: list[Node]) -> tuple[list[str], list[str]]:
    """Dynamic values the segment reads from outside, and values it produces that are read outside it
    (or are graph outputs)."""
    inside = {id(n) for n in nodes}
    produced = {o for n in nodes for o in n.outputs}
    ins: list[str] = []
    for n in nodes:
        for v in graph.dynamic_inputs(n):
            if v not in produced and v not in ins:
                ins.append(v)
    outs = []
    for n in nodes:
        for o in n.outputs:
            used_outside = any(id(c) not in inside for c in graph.consumers(o))
            if o and (used_outside or o in graph.outputs):
                outs.append(o)
    return ins, outs


def segment_kernel(graph: Graph, nodes: list[Node], threads: int,
                   spin: str = "stop") -> tuple[Kernel, list[str], list[str]]:
    """One ORT session computing `nodes`; returns (kernel, input values, output values). `spin` as in
    `kernels.threads.ort_session_options`: "on" only when this session is all the plan runs."""
    from edgetune.graph.onnx_export import to_onnx
    from edgetune.kernels.ort_prims import initializer_bytes, session, session_kernel

    ins, outs = boundary(graph, nodes)
    model = to_onnx(graph, nodes=nodes, inputs=ins, outputs=outs)
    sess = session(model, threads, "all", spin)
    return session_kernel(sess, initializer_bytes(model), ins), ins, outs


def pair_key(graph: Graph, a: Node, b: Node, sig_a: str, sig_b: str) -> str:
    """DB key of the merged-pair measurement; '=>' when b reads a's output, '||' when independent."""
    link = "=>" if any(o in b.inputs for o in a.outputs) else "||"
    return f"{PAIR_KEY}:{sig_a}{link}{sig_b}"


def fusable_primitive(node: Node) -> str:
    """The one fusable ORT primitive that can run `node`."""
    if node.op == "Conv":
        return "conv.mlas.ort"
    if node.op in ("Gemm", "MatMul"):
        return "gemm.mlas.ort"
    return "op.ort"
