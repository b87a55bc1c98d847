"""Which runs of nodes are worth measuring whole on a backend that compiles segments.

Why candidates at all: the number of convex node sets is exponential, and a segment's cost is only known
once it is measured whole (fusion, layouts and scheduling inside a backend make the sum of its nodes
meaningless). So a few kinds are measured, as Collage does: the whole graph on each backend; the
natural blocks of the network (the runs between cuts where a single tensor crosses, i.e. residual,
inverted-residual and inception blocks), alone and in runs of consecutive blocks; and the maximal runs a
backend can run when it cannot run every node. Every candidate is an interval of the topological order
(hence convex).

A backend that is rarely best on parts of a graph (`Library.probe_first`: torch, whose oneDNN kernels the
one-node torch primitives already offer) is probed first: its whole graph (or, where it cannot run every
node, its maximal runs) is measured, and its blocks only where that whole graph measured within
`PROBE_FACTOR` of the fastest other backend's whole graph at the same thread count (`promising`). Why this
rule: blocks are most of a backend's candidates (a few per block of the network, per thread count), while a
backend far behind on the whole graph, where it fuses the most, has little chance on a part of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edgetune.graph.ir import Graph, Node

# Runs of up to this many consecutive blocks are measured (besides the whole graph).
MAX_BLOCKS_PER_SEGMENT = 4
# A probe-first backend's blocks are measured when its whole graph is at most this much slower than the
# fastest other backend's.
PROBE_FACTOR = 1.5
PROBE_KINDS = frozenset({"whole graph", "run"})  # what a probe-first backend is measured on before its blocks


@dataclass(frozen=True)
class SegmentCandidate:
    """`nodes` (names, in graph order) compiled as one kernel of `library` at `threads`."""

    library: str
    threads: int
    nodes: tuple[str, ...]
    kind: str  # "whole graph", "blocks", "run"

    @property
    def label(self) -> str:
        return f"{self.library}@{self.threads}[{self.nodes[0]}..{self.nodes[-1]}]"


def single_tensor_cuts(graph: Graph) -> list[int]:
    """Positions k (0 < k < n) where exactly one value computed before node k (or a graph input) is read
    from node k on, and that value opens or closes a block: it is read by several nodes (a branch point) or
    made by a node that merges several (Add, Concat). Chains between such cuts stay one block."""
    nodes = graph.nodes
    last_use: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for v in graph.dynamic_inputs(n):
            last_use[v] = i
    for o in graph.outputs:
        last_use[o] = len(nodes)
    born = {v: -1 for v in graph.inputs} | {o: i for i, n in enumerate(nodes) for o in n.outputs}
    cuts = []
    for k in range(1, len(nodes)):
        crossing = [v for v, b in born.items() if b < k <= last_use.get(v, -1)]
        if len(crossing) == 1 and _opens_or_closes(graph, crossing[0]):
            cuts.append(k)
    return cuts


def _opens_or_closes(graph: Graph, value: str) -> bool:
    if len(graph.consumers(value)) > 1:
        return True
    producer = next((n for n in graph.nodes if value in n.outputs), None)
    return producer is not None and len(graph.dynamic_inputs(producer)) > 1


def blocks(graph: Graph) -> list[tuple[int, int]]:
    """[start, end) index ranges between consecutive block cuts."""
    bounds = [0, *single_tensor_cuts(graph), len(graph.nodes)]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def _runs(ok: Sequence[bool]) -> list[tuple[int, int]]:
    """Maximal [start, end) runs of True."""
    out, start = [], None
    for i, flag in enumerate([*ok, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            out.append((start, i))
            start = None
    return out


def interval_candidates(graph: Graph, eligible: Sequence[bool],
                        max_blocks: int = MAX_BLOCKS_PER_SEGMENT) -> dict[tuple[int, int], str]:
    """[start, end) intervals of two nodes or more, every node eligible, with their kind: the whole graph,
    runs of 1..max_blocks consecutive blocks, and the maximal eligible runs."""
    n = len(graph.nodes)
    out: dict[tuple[int, int], str] = {}
    for a, b in _runs(eligible):
        if b - a >= 2:
            out[(a, b)] = "whole graph" if (a, b) == (0, n) else "run"
    bl = blocks(graph)
    for i in range(len(bl)):
        for j in range(i, min(i + max_blocks, len(bl))):
            a, b = bl[i][0], bl[j][1]
            if b - a >= 2 and all(eligible[a:b]):
                out.setdefault((a, b), "whole graph" if (a, b) == (0, n) else "blocks")
    return dict(sorted(out.items()))


def segment_candidates(graph: Graph, libraries: Sequence[str], threads: Sequence[int],
                       eligible: Callable[[str, Node], bool],
                       max_blocks: int = MAX_BLOCKS_PER_SEGMENT,
                       blocks_wanted: Callable[[str, int], bool] | None = None) -> list[SegmentCandidate]:
    """Candidates for every library that compiles segments and every thread count; `eligible(library, node)`
    says whether the library's fusable primitive was verified on the node; `blocks_wanted(library, threads)`,
    when given, whether the library's blocks are candidates beside its whole graph and maximal runs."""
    out = []
    for lib in libraries:
        ok = [eligible(lib, n) for n in graph.nodes]
        for (a, b), kind in interval_candidates(graph, ok, max_blocks).items():
            names = tuple(n.name for n in graph.nodes[a:b])
            out += [SegmentCandidate(lib, t, names, kind) for t in sorted(set(threads))
                    if kind in PROBE_KINDS or blocks_wanted is None or blocks_wanted(lib, t)]
    return out


def promising(whole_ms: float | None, others_ms: Sequence[float], factor: float = PROBE_FACTOR) -> bool:
    """Whether a probe-first backend's blocks are worth measuring: its whole graph was measured (it ran every
    node and matched the reference) within `factor` of the fastest other backend's whole graph (or no other
    backend's whole graph was measured to compare with)."""
    if whole_ms is None:
        return False
    return not others_ms or whole_ms <= factor * min(others_ms)
