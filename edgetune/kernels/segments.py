"""Graph partitioning: consecutive nodes whose primitives fuse run as ONE kernel of their library.

Why: a run of nodes handed to a library as one subgraph lets it keep its own layouts between layers,
fuse, and pay one dispatch instead of one per node (ONNX Runtime today; see `Library.segment`). The
executor merges each maximal run of consecutive nodes (topological order) whose chosen primitives have
`Primitive.fuses`, belong to one library and run at one thread count; the profiler measures the gain of
merging each topologically adjacent pair, which the search adds as an edge cost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from edgetune.graph.ir import Graph, Node
from edgetune.kernels import registry
from edgetune.kernels.library import FP32_SEGMENT, Segment, SegmentVariant

PAIR_KEY = "ort.pair"
SEGMENT_LIBRARY = "onnxruntime"  # the library whose segments the profiler prices pairwise today


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


def fuses(primitive: str) -> bool:
    """Whether the primitive called `primitive` can join a segment of its library."""
    try:
        return registry.get(primitive).fuses
    except KeyError:
        return False


def library_of(primitive: str) -> str | None:
    """The library of the primitive called `primitive`; None when no such primitive is registered here."""
    try:
        return registry.get(primitive).library
    except KeyError:
        return None


def segment_kernel(graph: Graph, nodes: list[Node], threads: int, spin: str = "stop",
                   library: str = SEGMENT_LIBRARY, variant: SegmentVariant = FP32_SEGMENT) -> Segment:
    """One kernel of `library` computing `nodes` as `variant` says: (kernel, input values, output values)."""
    compile_segment = registry.library(library).segment
    if compile_segment is None:
        raise ValueError(f"library {library} does not compile segments")
    return compile_segment(graph, nodes, threads, spin, variant)


def fusable_primitive(node: Node, library: str = SEGMENT_LIBRARY) -> str:
    """The primitive of `library` that can run `node` inside one of its segments."""
    pick = registry.library(library).fusable
    name = pick(node) if pick is not None else None
    if name is None:
        raise ValueError(f"library {library} has no fusable primitive for {node.op}")
    return name


def pair_key(graph: Graph, a: Node, b: Node, sig_a: str, sig_b: str) -> str:
    """DB key of the merged-pair measurement; '=>' when b reads a's output, '||' when independent."""
    link = "=>" if any(o in b.inputs for o in a.outputs) else "||"
    return f"{PAIR_KEY}:{sig_a}{link}{sig_b}"


def segment_signature(graph: Graph, nodes: Sequence[Node], node_sigs: dict[str, str]) -> str:
    """A content key for a run of nodes: the node signatures in order, how they are wired to each other and
    to the outside (outside values numbered by first use), and which outputs leave the run, so that
    identical blocks (same ops, shapes, attributes, wiring) share one measurement."""
    inside = {o: (i, k) for i, n in enumerate(nodes) for k, o in enumerate(n.outputs)}
    outside: dict[str, int] = {}
    _, leaving = boundary(graph, list(nodes))
    h = hashlib.sha256()
    for n in nodes:
        wiring = [inside[v] if v in inside else f"x{outside.setdefault(v, len(outside))}"
                  for v in graph.dynamic_inputs(n)]
        out = [o in leaving for o in n.outputs]
        h.update(f"{node_sigs[n.name]}<{wiring}>{out}|".encode())
    return h.hexdigest()[:20]
