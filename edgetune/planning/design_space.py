"""Graph + ProfileDB -> DesignSpace.

Per node, one option per (verified primitive, thread count) measured in the DB. Per graph edge, a
matrix of conversion costs between the producer's output format and the consumer's input format (the
sum of the measured converters on that tensor). Per topologically adjacent pair of nodes, the measured
gain of running both in one ONNX Runtime session when both options are fusable ORT at the same thread
count (the executor merges such runs; see kernels/segments.py), and the measured cost of switching
thread pools. Conversions the graph's inputs and outputs need (to and from NCHW fp32) are added to the
option that needs them.

Memory, per option (what the search's memory objective, the memory limit and the Pareto front count):
where the profiler measured the kernel's memory (`NodeRecord.resident_bytes`/`transient_bytes`, from
edgetune.runtime.kernel_memory), the option keeps its measured resident bytes (at least its reported
weights: RSS cannot see weights aliased with the graph's arrays) and its scratch is its measured
transient peak, the same rule as `Executor.memory()`; where the DB has no measured memory, the
kernel's own report: its weights kept, its workspace as scratch. A plan's memory is the sum of what
its options keep plus the largest scratch (`DesignSpace.plan_memory`).

Built once, viewed per precision set: `measure_space` reads the DB once for every precision a run
needs (the search's and fp16 weights for the Pareto front) and `MeasuredSpace.view(precisions)`
assembles the DesignSpace for a subset without reading the DB again, equal to what a build for that
subset alone would give (same options in the same order, same costs, same edges).

Approximation, stated: a value read by several consumers in the same foreign format is converted once
by the executor but charged once per edge here; the end-to-end measurement of the best plans corrects
what this misprices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.base import FP32, Format
from edgetune.kernels.registry import converter_route
from edgetune.kernels.segments import SEGMENT_LIBRARY, fusable_primitive, fuses, pair_key
from edgetune.measure.db import NodeRecord, ProfileDB, node_signature
from edgetune.measure.profiler import DISPATCH_KEY, candidate_primitives, keyed_segment_candidates
from edgetune.measure.switching import pool, switch_key
from edgetune.planning.closed_loop import run_overhead_ms, switch_ms
from edgetune.runtime.plan import PlanSegment
from edgetune.search.space import DesignSpace, Option

INFEASIBLE_MS = 1e6  # an edge whose formats cannot be converted: never chosen by a sane search
FALLBACK_MS = 1.0  # the reference kernel's time when even it was not measured


@dataclass
class SpaceInfo:
    """What the builder had to do beyond the measurements (shown in the report)."""

    fallbacks: list[str]  # nodes with no measured verified primitive: run by the reference kernel
    unmeasured: list[str]  # converters missing from the DB (priced as infeasible)


@dataclass
class _EdgeTable:
    """The costs on one (producer i, consumer j) edge over every option of both nodes, each node's
    reference fallback included as its last row/column, so that any view can slice its own matrix."""

    cost: np.ndarray  # ms, (options of i + 1) x (options of j + 1)
    data: bool  # j reads a value i produces: the edge exists in every view
    measured: np.ndarray  # bool: a pair-session gain or a nonzero pool switch was found for the entry
    missing: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # converters absent from the DB

    def exists_for(self, rows: list[int], cols: list[int]) -> bool:
        """Whether a view keeping these options has this edge (a non-data edge only carries gains and
        switches, and only where one was found among the kept options)."""
        return self.data or bool(self.measured[np.ix_(rows, cols)].any())


@dataclass
class MeasuredSpace:
    """Every option of every node measured in the DB for the precisions asked, with every cost between
    them, read from the DB once; `view(precisions)` gives the search's DesignSpace for a subset."""

    nodes: list[str]
    options: list[list[Option]]  # per node, the measured options (the reference fallback excluded)
    fallbacks: list[Option]  # per node, the reference kernel's option, used when no option is allowed
    boundary_missing: list[list[list[str]]]  # per node, per option (fallback last), missing converters
    edges: dict[tuple[int, int], _EdgeTable]
    dispatch_ms_per_step: float

    def kept(self, i: int, precisions: set[str], segments: bool = True,
             admit: Callable[[Option], bool] | None = None) -> list[int]:
        """Indices of node i's allowed options; [fallback index] when none is allowed."""
        keep = [k for k, o in enumerate(self.options[i])
                if o.precision in precisions and (segments or o.group is None) and (admit is None or admit(o))]
        return keep or [len(self.options[i])]

    def view(self, precisions: Iterable[str], segments: bool = True,
             admit: Callable[[Option], bool] | None = None) -> tuple[DesignSpace, SpaceInfo]:
        """The DesignSpace over the options of these precisions that `admit` accepts (the reference kernel
        where a node has none), and what it had to fall back on."""
        wanted = set(precisions)
        keep = [self.kept(i, wanted, segments, admit) for i in range(len(self.nodes))]
        every = [[*opts, fb] for opts, fb in zip(self.options, self.fallbacks, strict=True)]
        options = [[every[i][k] for k in ks] for i, ks in enumerate(keep)]
        fallbacks = [n for i, n in enumerate(self.nodes) if keep[i] == [len(self.options[i])]]
        missing = [m for i, ks in enumerate(keep) for k in ks for m in self.boundary_missing[i][k]]
        pairs, mats = [], []
        for (i, j), table in sorted(self.edges.items()):
            if not table.exists_for(keep[i], keep[j]):
                continue
            pairs.append((i, j))
            mats.append(table.cost[np.ix_(keep[i], keep[j])])
            missing += [m for a in keep[i] for b in keep[j] for m in table.missing.get((a, b), ())]
        space = DesignSpace(nodes=list(self.nodes), options=options, edges=pairs, edge_cost=mats,
                            dispatch_ms_per_step=self.dispatch_ms_per_step)
        return space, SpaceInfo(fallbacks, sorted(set(missing)))


def build_space(graph: Graph, db: ProfileDB, threads: Iterable[int], precisions: Iterable[str] = ("fp32",)
                ) -> tuple[DesignSpace, SpaceInfo]:
    """The DesignSpace of `graph` over the options of `precisions` measured in `db` (one view of one build)."""
    precisions = set(precisions)
    return measure_space(graph, db, threads, precisions).view(precisions)


def measure_space(graph: Graph, db: ProfileDB, threads: Iterable[int], precisions: Iterable[str]) -> MeasuredSpace:
    """Read everything the DB holds about running `graph` at these thread counts and precisions."""
    threads, precisions = sorted(set(threads)), set(precisions)
    sigs = {n.name: node_signature(n, graph) for n in graph.nodes}
    disp = db.get_converter(DISPATCH_KEY, (), 1)
    dispatch = disp.median_ms if disp else 0.0
    segment_opts = _segment_options(graph, db, threads, sigs, dispatch) if "fp32" in precisions else {}
    options, fallbacks, boundary_missing = [], [], []
    for node in graph.nodes:
        opts = _node_options(node, graph, db, sigs[node.name], threads, precisions)
        opts += segment_opts.get(node.name, [])
        fallback = _fallback_option(node, graph, db, sigs[node.name])
        boundary_missing.append([_add_boundary_conversions(o, node, graph, db) for o in [*opts, fallback]])
        options.append(opts)
        fallbacks.append(fallback)
    every = [[*opts, fb] for opts, fb in zip(options, fallbacks, strict=True)]
    edges = _data_edges(graph, db, every)
    for i, (a_node, b_node) in enumerate(zip(graph.nodes, graph.nodes[1:], strict=False)):
        key = pair_key(graph, a_node, b_node, sigs[a_node.name], sigs[b_node.name])
        _add_neighbour_costs(edges, i, db, key, every[i], every[i + 1])
    _add_segment_consistency(edges, every)
    _add_run_overhead(every, run_overhead_ms(db))
    return MeasuredSpace(nodes=[n.name for n in graph.nodes], options=options, fallbacks=fallbacks,
                         boundary_missing=boundary_missing, edges=edges, dispatch_ms_per_step=dispatch)


# ---- segments measured whole ------------------------------------------------------------------------

def _segment_options(graph: Graph, db: ProfileDB, threads: list[int], sigs: dict[str, str],
                     dispatch_ms: float) -> dict[str, list[Option]]:
    """Per node, one option per measured segment that covers it. A segment of k nodes measured whole at
    T ms gives each member T/k minus its share of the k-1 dispatches the cost model would add, so that
    all k together cost exactly T plus one step; `_add_segment_consistency` makes it all or nothing."""
    out: dict[str, list[Option]] = {}
    for sid, (cand, key) in enumerate(keyed_segment_candidates(graph, db, threads, sigs)):
        rec = db.get_converter(key, (), cand.threads)
        if rec is None:
            continue
        k = len(cand.nodes)
        share = rec.median_ms / k - dispatch_ms * (k - 1) / k
        for name in cand.nodes:
            node = graph.node(name)
            prim = fusable_primitive(node, cand.library)
            alone = db.get_node(sigs[name], prim, cand.threads)
            weights = option_memory(alone)[0] if alone is not None else 0
            out.setdefault(name, []).append(Option(
                key=f"segment{sid}:{cand.library}@{cand.threads}", time_ms=share, weight_bytes=weights,
                workspace_bytes=0, out_format=FP32.key, in_formats=[FP32.key] * len(graph.dynamic_inputs(node)),
                precision="fp32",
                meta={"primitive": prim, "threads": cand.threads, "library": cand.library,
                      "segment_nodes": list(cand.nodes), "segment_kind": cand.kind, "segment_ms": rec.median_ms,
                      "disturbed": rec.disturbed, "spread": rec.spread},
                group=sid,
            ))
    return out


def _add_segment_consistency(edges: dict[tuple[int, int], _EdgeTable], every: list[list[Option]]) -> None:
    """Between consecutive members of each segment, an infeasible cost where exactly one of the two takes
    the segment's option: a segment runs whole or not at all."""
    members: dict[int, list[tuple[int, int]]] = {}
    for i, opts in enumerate(every):
        for a, o in enumerate(opts):
            if o.group is not None:
                members.setdefault(o.group, []).append((i, a))
    for chain in members.values():
        for (i, a), (j, b) in zip(chain, chain[1:], strict=False):
            shape = (len(every[i]), len(every[j]))
            table = edges.get((i, j))
            if table is None:
                table = edges[(i, j)] = _EdgeTable(np.zeros(shape), False, np.zeros(shape, bool))
            m = np.zeros(shape)
            m[a, :] += INFEASIBLE_MS
            m[:, b] += INFEASIBLE_MS
            m[a, b] = 0.0
            table.cost = table.cost + m
            table.measured |= m != 0


def _add_run_overhead(every: list[list[Option]], ms: float) -> None:
    """The executor's fitted per-inference cost (planning/closed_loop.py), charged once per plan: on every
    option of the first node, so that every plan pays it and no search is steered by it."""
    if every and ms:
        for o in every[0]:
            o.time_ms += ms


def option_memory(rec: NodeRecord) -> tuple[int, int]:
    """(bytes the option keeps resident, its scratch bytes at the peak of one call).

    Measured where the profiler measured the kernel (resident at least the reported weights, since RSS
    cannot see weights the kernel aliases with the graph's arrays; scratch its measured transient peak),
    else the kernel's own report (weights, workspace): the rule `Executor.memory()` plans with."""
    if rec.resident_bytes is None:
        return int(rec.weight_bytes), int(rec.workspace_bytes)
    return max(int(rec.resident_bytes), int(rec.weight_bytes)), int(rec.transient_bytes or 0)


def _node_options(node: Node, graph: Graph, db: ProfileDB, sig: str, threads: list[int],
                  precisions: set[str]) -> list[Option]:
    """One option per verified primitive of an allowed precision and thread count the DB has a time for."""
    opts = []
    for prim in candidate_primitives(node, graph):
        if prim.precision not in precisions:
            continue
        ver = db.get_verification(sig, prim.name)
        if ver is None or not ver.ok:
            continue
        for t in threads:
            rec = db.get_node(sig, prim.name, t)
            if rec is None:
                continue
            kept, scratch = option_memory(rec)
            opts.append(Option(
                key=f"{prim.name}@{t}", time_ms=rec.median_ms, weight_bytes=kept, workspace_bytes=scratch,
                out_format=prim.output_format(node, graph).key,
                in_formats=[f.key for f in prim.input_formats(node, graph)], precision=prim.precision,
                meta={"primitive": prim.name, "threads": t, "library": prim.library, "disturbed": rec.disturbed,
                      "spread": rec.spread, "memory_measured": rec.resident_bytes is not None},
            ))
    return opts


def _fallback_option(node: Node, graph: Graph, db: ProfileDB, sig: str) -> Option:
    """The reference kernel at one thread, in NCHW fp32: what a node runs on when no verified primitive
    of an allowed precision was measured (its own time when the DB has it)."""
    prim = f"ref.{node.op.lower()}"
    rec = db.get_node(sig, prim, 1)
    kept, scratch = option_memory(rec) if rec else (0, 0)
    return Option(key=f"{prim}@1", time_ms=rec.median_ms if rec else FALLBACK_MS, weight_bytes=kept,
                  workspace_bytes=scratch, out_format=FP32.key,
                  in_formats=[FP32.key] * len(graph.dynamic_inputs(node)),
                  meta={"primitive": prim, "threads": 1, "library": "numpy-reference", "fallback": True})


def _add_boundary_conversions(o: Option, node: Node, graph: Graph, db: ProfileDB) -> list[str]:
    """Charge `o` the conversions from the graph's inputs and to its outputs (NCHW fp32) that it needs;
    returns the converters missing from the DB."""
    missing: list[str] = []
    fmts = [Format.from_key(k) for k in o.in_formats]
    for value, fmt in zip(graph.dynamic_inputs(node), fmts, strict=False):
        if value in graph.inputs:
            o.time_ms += _conversion_ms(db, FP32, fmt, graph.shape(value), missing)
    for out in node.outputs:
        if out in graph.outputs:
            o.time_ms += _conversion_ms(db, Format.from_key(o.out_format), FP32, graph.shape(out), missing)
    return missing


def _data_edges(graph: Graph, db: ProfileDB, every: list[list[Option]]) -> dict[tuple[int, int], _EdgeTable]:
    """Per (producer, consumer) pair of nodes, the converters' cost between every pair of their options."""
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    producer = {o: index[n.name] for n in graph.nodes for o in n.outputs}
    edges: dict[tuple[int, int], _EdgeTable] = {}
    for j, node in enumerate(graph.nodes):
        for value in dict.fromkeys(graph.dynamic_inputs(node)):
            if value not in producer:
                continue
            i = producer[value]
            shape = graph.shape(value)
            shape_ij = (len(every[i]), len(every[j]))
            table = edges.setdefault((i, j), _EdgeTable(np.zeros(shape_ij), True, np.zeros(shape_ij, bool)))
            pos = graph.dynamic_inputs(node).index(value)
            for a, oa in enumerate(every[i]):
                for b, ob in enumerate(every[j]):
                    want = ob.in_formats[pos] if pos < len(ob.in_formats) else FP32.key
                    if want != oa.out_format:
                        missing: list[str] = []
                        table.cost[a, b] += _conversion_ms(db, Format.from_key(oa.out_format), Format.from_key(want),
                                                           shape, missing)
                        if missing:
                            table.missing.setdefault((a, b), []).extend(missing)
    return edges


def _add_neighbour_costs(edges: dict[tuple[int, int], _EdgeTable], i: int, db: ProfileDB, key: str,
                         opts_a: list[Option], opts_b: list[Option]) -> None:
    """Add the measured pair-session gains and pool-switch costs between nodes i and i + 1."""
    gain, found = _pair_gains(db, key, opts_a, opts_b)
    switch = _switch_costs(db, opts_a, opts_b)
    for m, where in ((gain, found), (switch, switch != 0)):
        if not where.any():
            continue
        table = edges.get((i, i + 1))
        if table is None:
            table = edges[(i, i + 1)] = _EdgeTable(np.zeros_like(m), False, np.zeros(m.shape, bool))
        table.cost = table.cost + m
        table.measured |= where


def _conversion_ms(db: ProfileDB, src: Format, dst: Format, shape: tuple[int, ...], missing: list[str]) -> float:
    route = converter_route(src, dst)
    if route is None:
        return INFEASIBLE_MS
    total = 0.0
    for conv in route:
        rec = db.get_converter(conv.name, shape, 1)
        if rec is None:
            missing.append(f"{conv.name} {shape}")
            return INFEASIBLE_MS
        total += rec.median_ms
    return total


def _pair_gains(db: ProfileDB, key: str, opts_a: list[Option], opts_b: list[Option]) -> tuple[np.ndarray, np.ndarray]:
    """(pair session time - each alone) where both options are fusable ORT at the same thread count, and
    where such a pair time was found. Only ORT's: the pair is measured as one ONNX Runtime session, which
    says nothing of two OpenVINO, LiteRT or torch nodes fused, nor of an ORT node beside another library's."""
    m = np.zeros((len(opts_a), len(opts_b)))
    found = np.zeros(m.shape, bool)
    for a, oa in enumerate(opts_a):
        for b, ob in enumerate(opts_b):
            ta, tb = oa.meta.get("threads"), ob.meta.get("threads")
            if oa.group is not None or ob.group is not None:  # a segment is measured whole, not by pairs
                continue
            if _pairs_as_ort(oa) and _pairs_as_ort(ob) and ta == tb:
                rec = db.get_converter(key, (), ta)
                if rec is not None:
                    # one session can save at most the cheaper node's time: it still runs both; the bound
                    # keeps a noisy single-node measurement from turning into a huge "gain"
                    m[a, b] = max(rec.median_ms - oa.time_ms - ob.time_ms, -min(oa.time_ms, ob.time_ms))
                    found[a, b] = True
    return m, found


def _pairs_as_ort(o: Option) -> bool:
    """Whether the option is a fusable ONNX Runtime one (the library whose pairs the profiler measures)."""
    return o.meta.get("library") == SEGMENT_LIBRARY and fuses(o.meta.get("primitive", ""))


def _switch_costs(db: ProfileDB, opts_a: list[Option], opts_b: list[Option]) -> np.ndarray:
    """Measured thread-pool switch cost between consecutive steps whose (pool, threads) differ."""
    m = np.zeros((len(opts_a), len(opts_b)))
    cache: dict[str, float] = {}
    for a, oa in enumerate(opts_a):
        sa = (pool(oa.meta.get("library", "")), int(oa.meta.get("threads", 1)))
        for b, ob in enumerate(opts_b):
            sb = (pool(ob.meta.get("library", "")), int(ob.meta.get("threads", 1)))
            if sa == sb:
                continue
            key = switch_key(sa, sb)
            if key not in cache:
                cache[key] = switch_ms(db, key)
            m[a, b] = cache[key]
    return m


def choice_to_plan_choices(space: DesignSpace, choice: list[int]) -> dict[str, tuple[str, int]]:
    """Node name -> (primitive, threads) for a search result."""
    return {name: (space.options[i][c].meta["primitive"], int(space.options[i][c].meta["threads"]))
            for i, (name, c) in enumerate(zip(space.nodes, choice, strict=True))}


def choice_segments(space: DesignSpace, choice: list[int]) -> list[PlanSegment]:
    """The measured segments a search result takes (each once, its nodes in graph order)."""
    found: dict[int, PlanSegment] = {}
    for i, c in enumerate(choice):
        o = space.options[i][c]
        if o.group is not None and o.group not in found:
            m = o.meta
            found[o.group] = PlanSegment(m["library"], int(m["threads"]), list(m["segment_nodes"]))
    return list(found.values())

