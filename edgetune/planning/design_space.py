"""Graph + ProfileDB -> DesignSpace.

Per node, one option per (verified primitive, thread count) measured in the DB. Per graph edge, a
matrix of conversion costs between the producer's output format and the consumer's input format (the
sum of the measured converters on that tensor). Per topologically adjacent pair of nodes, the measured
gain of running both in one ONNX Runtime session when both options are fusable ORT at the same thread
count (the executor merges such runs; see kernels/segments.py). Conversions the graph's inputs and
outputs need (to and from NCHW fp32) are added to the option that needs them.

Approximation, stated: a value read by several consumers in the same foreign format is converted once
by the executor but charged once per edge here; the end-to-end measurement of the best plans corrects
what this misprices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.base import FP32, Format
from edgetune.kernels.registry import converter_route
from edgetune.kernels.segments import fuses, pair_key
from edgetune.measure.db import ProfileDB, node_signature
from edgetune.measure.profiler import DISPATCH_KEY, candidate_primitives
from edgetune.measure.switching import pool, switch_key
from edgetune.search.space import DesignSpace, Option

INFEASIBLE_MS = 1e6  # an edge whose formats cannot be converted: never chosen by a sane search


@dataclass
class SpaceInfo:
    """What the builder had to do beyond the measurements (shown in the report)."""

    fallbacks: list[str]  # nodes with no measured verified primitive: run by the reference kernel
    unmeasured: list[str]  # converters missing from the DB (priced as infeasible)


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


def _node_options(node: Node, graph: Graph, db: ProfileDB, sig: str, threads: Iterable[int],
                  precisions: set[str]) -> list[Option]:
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
            opts.append(Option(
                key=f"{prim.name}@{t}", time_ms=rec.median_ms, weight_bytes=rec.weight_bytes,
                workspace_bytes=rec.workspace_bytes, out_format=prim.output_format(node, graph).key,
                in_formats=[f.key for f in prim.input_formats(node, graph)], precision=prim.precision,
                meta={"primitive": prim.name, "threads": t, "library": prim.library, "disturbed": rec.disturbed,
                      "spread": rec.spread},
            ))
    return opts


def build_space(graph: Graph, db: ProfileDB, threads: Iterable[int], precisions: Iterable[str] = ("fp32",)
                ) -> tuple[DesignSpace, SpaceInfo]:
    threads, precisions = sorted(set(threads)), set(precisions)
    sigs = {n.name: node_signature(n, graph) for n in graph.nodes}
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    producer = {o: index[n.name] for n in graph.nodes for o in n.outputs}
    info = SpaceInfo([], [])
    options: list[list[Option]] = []
    for node in graph.nodes:
        opts = _node_options(node, graph, db, sigs[node.name], threads, precisions)
        if not opts:
            info.fallbacks.append(node.name)
            rec = db.get_node(sigs[node.name], f"ref.{node.op.lower()}", 1)
            opts = [Option(key=f"ref.{node.op.lower()}@1", time_ms=rec.median_ms if rec else 1.0,
                           meta={"primitive": f"ref.{node.op.lower()}", "threads": 1, "library": "numpy-reference",
                                 "fallback": True})]
        # conversions at the graph's boundary belong to the option that needs them
        for o in opts:
            fmts = [Format(*_parse(k)) for k in o.in_formats]
            for value, fmt in zip(graph.dynamic_inputs(node), fmts, strict=False):
                if value in graph.inputs:
                    o.time_ms += _conversion_ms(db, FP32, fmt, graph.shape(value), info.unmeasured)
            for out in node.outputs:
                if out in graph.outputs:
                    o.time_ms += _conversion_ms(db, Format(*_parse(o.out_format)), FP32, graph.shape(out),
                                                info.unmeasured)
        options.append(opts)

    edges: dict[tuple[int, int], np.ndarray] = {}
    for j, node in enumerate(graph.nodes):
        for value in dict.fromkeys(graph.dynamic_inputs(node)):
            if value not in producer:
                continue
            i = producer[value]
            shape = graph.shape(value)
            m = edges.setdefault((i, j), np.zeros((len(options[i]), len(options[j]))))
            pos = graph.dynamic_inputs(node).index(value)
            for a, oa in enumerate(options[i]):
                for b, ob in enumerate(options[j]):
                    want = ob.in_formats[pos] if pos < len(ob.in_formats) else FP32.key
                    if want != oa.out_format:
                        m[a, b] += _conversion_ms(db, Format(*_parse(oa.out_format)), Format(*_parse(want)), shape,
                                                  info.unmeasured)
    for i, (a_node, b_node) in enumerate(zip(graph.nodes, graph.nodes[1:], strict=False)):
        key = pair_key(graph, a_node, b_node, sigs[a_node.name], sigs[b_node.name])
        gain = _pair_gains(db, key, options[i], options[i + 1])
        switch = _switch_costs(db, options[i], options[i + 1])
        for m in (gain, switch):
            if m is not None:
                edges[(i, i + 1)] = edges.get((i, i + 1), np.zeros_like(m)) + m
    disp = db.get_converter(DISPATCH_KEY, (), 1)
    pairs = sorted(edges)
    space = DesignSpace(
        nodes=[n.name for n in graph.nodes], options=options, edges=pairs, edge_cost=[edges[e] for e in pairs],
        dispatch_ms_per_step=disp.median_ms if disp else 0.0,
    )
    info.unmeasured = sorted(set(info.unmeasured))
    return space, info


def _pair_gains(db: ProfileDB, key: str, opts_a: list[Option], opts_b: list[Option]) -> np.ndarray | None:
    """(pair session time - each alone) where both options are fusable ORT at the same thread count."""
    m = np.zeros((len(opts_a), len(opts_b)))
    found = False
    for a, oa in enumerate(opts_a):
        for b, ob in enumerate(opts_b):
            ta, tb = oa.meta.get("threads"), ob.meta.get("threads")
            if fuses(oa.meta.get("primitive", "")) and fuses(ob.meta.get("primitive", "")) and ta == tb:
                rec = db.get_converter(key, (), ta)
                if rec is not None:
                    # one session can save at most the cheaper node's time: it still runs both; the bound
                    # keeps a noisy single-node measurement from turning into a huge "gain"
                    m[a, b] = max(rec.median_ms - oa.time_ms - ob.time_ms, -min(oa.time_ms, ob.time_ms))
                    found = True
    return m if found else None


def _switch_costs(db: ProfileDB, opts_a: list[Option], opts_b: list[Option]) -> np.ndarray | None:
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
                rec = db.get_converter(key, (), 0)
                cache[key] = rec.median_ms if rec else 0.0
            m[a, b] = cache[key]
    return m if m.any() else None


def _parse(key: str) -> tuple[str, str]:
    """Format key 'NHWC/float32' -> (layout, dtype) (quantised keys are not edge formats yet)."""
    layout, dtype = key.split("/")[:2]
    return layout, dtype


def choice_to_plan_choices(space: DesignSpace, choice: list[int]) -> dict[str, tuple[str, int]]:
    """Node name -> (primitive, threads) for a search result."""
    return {name: (space.options[i][c].meta["primitive"], int(space.options[i][c].meta["threads"]))
            for i, (name, c) in enumerate(zip(space.nodes, choice, strict=True))}
