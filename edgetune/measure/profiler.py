"""`edgetune profile`: measure every (node, verified primitive, threads) and every converter an edge
may need, into the ProfileDB, skipping what the database already holds.

Order of work: (1) verification of each candidate primitive on each distinct node signature (results
cached in the DB, a failing primitive is excluded with its reason); (2) timing of each verified
(signature, primitive, threads); (3) timing of each converter the space can need on each edge's tensor
shape; (4) the executor's per-step dispatch cost. Each result is committed as soon as it is measured,
so an interrupted profile resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Graph, Node
from edgetune.kernels import registry
from edgetune.kernels.base import FP32, Format, Primitive
from edgetune.kernels.registry import converter_route
from edgetune.kernels.segments import fusable_primitive, pair_key, segment_kernel
from edgetune.kernels.threads import set_threads
from edgetune.measure.candidate import CandidateMeasurer, CandidateRequest
from edgetune.measure.db import ProfileDB, node_signature
from edgetune.measure.isolation import IsolatedMeasurer
from edgetune.measure.overhead import measure_dispatch
from edgetune.measure.switching import all_pairs, measure_switches, states, switch_key
from edgetune.measure.timing import Timing, time_callable

DISPATCH_KEY = "executor.dispatch"
# Timing budget per measurement: enough runs for a stable median of sub-millisecond kernels, short
# enough that a whole model profiles in minutes on a 2-core machine.
DEFAULT_TIME_CAP_S = 0.2
# Wall-clock seconds one candidate's prepare + verification + timing may take in the worker before it is
# excluded as hung (the slowest honest case, a reference kernel on a large layer, takes a few seconds).
DEFAULT_KERNEL_TIMEOUT_S = 60.0
# A primitive slower than this multiple of a node's best at the largest thread count is not timed at
# other thread counts: fewer threads never make a kernel 3x faster here (probe: at most 1.6x).
PRUNE_FACTOR = 3.0
def _likely_slow(prim: Primitive) -> int:
    """Sort key: the node's best is known before the slow, rarely competitive kernels run."""
    return int(prim.measure_last)


@dataclass
class ProfileSummary:
    new_measurements: int = 0
    cached: int = 0
    verified: int = 0
    excluded: dict[str, str] = field(default_factory=dict)  # "node/primitive" -> reason
    disturbed: int = 0
    pruned: int = 0  # (primitive, threads) not timed: over PRUNE_FACTOR x the node's best at max threads
    seconds: float = 0.0


def candidate_primitives(node: Node, graph: Graph) -> list[Primitive]:
    return [p for p, reason in registry.candidates(node, graph) if reason is None]


class Profiler:
    """Fills a ProfileDB for one graph; `plan()` says what is missing, `run()` measures it."""

    _best_ms: float = float("inf")

    def __init__(self, graph: Graph, db: ProfileDB, threads: Sequence[int], *,
                 samples: dict[str, np.ndarray] | None = None, time_cap_s: float = DEFAULT_TIME_CAP_S,
                 kernel_timeout_s: float = DEFAULT_KERNEL_TIMEOUT_S, isolate: bool = True) -> None:
        if not threads or min(threads) < 1:
            raise EdgetuneError(f"profiler: thread counts must be >= 1, got {list(threads)}")
        if not (np.isfinite(time_cap_s) and time_cap_s > 0):
            raise EdgetuneError(f"profiler: time cap must be > 0 s, got {time_cap_s}")
        if not (np.isfinite(kernel_timeout_s) and kernel_timeout_s > 0):
            raise EdgetuneError(f"profiler: kernel timeout must be > 0 s, got {kernel_timeout_s}")
        self.kernel_timeout_s, self.isolate = kernel_timeout_s, isolate
        self._measurer: Any = None
        self.graph, self.db, self.threads = graph, db, sorted(set(threads))
        self._samples = samples
        self.time_cap_s = time_cap_s
        self.sigs = {n.name: node_signature(n, graph) for n in graph.nodes}

    @property
    def samples(self) -> dict[str, np.ndarray]:
        if self._samples is None:
            from edgetune.graph.reference import reference_samples

            self._samples = reference_samples(self.graph)
        return self._samples

    # ---- what to do ------------------------------------------------------------------------
    def distinct_nodes(self) -> list[Node]:
        """One node per signature: identical layers share measurements."""
        seen: dict[str, Node] = {}
        for n in self.graph.nodes:
            seen.setdefault(self.sigs[n.name], n)
        return list(seen.values())

    def verified(self, node: Node) -> list[Primitive]:
        """Candidates whose cached verification passed (unverified ones are not included)."""
        out = []
        for p in candidate_primitives(node, self.graph):
            rec = self.db.get_verification(self.sigs[node.name], p.name)
            if rec is not None and rec.ok:
                out.append(p)
        return out

    def edge_conversions(self) -> set[tuple[str, tuple[int, ...], Any]]:
        """(value, shape, converter) for every converter some plan can need on some edge."""
        g = self.graph
        out_formats: dict[str, set[str]] = {i: {FP32.key} for i in g.inputs}
        fmt_by_key: dict[str, Format] = {FP32.key: FP32}
        needs: set[tuple[str, tuple[int, ...], Any]] = set()
        for node in g.nodes:
            prims = self.verified(node)
            for p in prims:
                for value, want in zip(g.dynamic_inputs(node), p.input_formats(node, g), strict=True):
                    fmt_by_key[want.key] = want
                    for have_key in out_formats.get(value, {FP32.key}):
                        for conv in converter_route(fmt_by_key[have_key], want) or []:
                            needs.add((value, g.shape(value), conv))
                of = p.output_format(node, g)
                fmt_by_key[of.key] = of
                for o in node.outputs:
                    out_formats.setdefault(o, set()).add(of.key)
        for o in g.outputs:
            for have_key in out_formats.get(o, set()):
                for conv in converter_route(fmt_by_key[have_key], FP32) or []:
                    needs.add((o, g.shape(o), conv))
        return needs

    # ---- doing it --------------------------------------------------------------------------
    def run(self, progress: Callable[[str, int], Any] | None = None) -> ProfileSummary:
        """Verify and time every candidate per distinct node, then converters, fusion pairs and dispatch.
        `progress(description, total)` returns an advance function (a progress bar)."""
        t0 = time.perf_counter()
        s = ProfileSummary()
        nodes = self.distinct_nodes()
        work = sum(len(candidate_primitives(n, self.graph)) for n in nodes) * len(self.threads)
        advance = progress("verifying and timing primitives", work) if progress and work else None
        try:
            for node in nodes:
                self._profile_node(node, s, advance)
        finally:
            self.close()
        conv_tasks, seen_convs = [], set()
        for _value, shape, conv in sorted(self.edge_conversions(), key=lambda x: (x[2].name, x[1])):
            if (conv.name, shape) in seen_convs:  # one measurement per (converter, tensor shape)
                continue
            seen_convs.add((conv.name, shape))
            if self.db.get_converter(conv.name, shape, 1) is None:
                conv_tasks.append((conv, shape))
            else:
                s.cached += 1
        pair_tasks, seen_pairs = [], set()
        for a, b, key in self.fusable_pairs():
            for t in self.threads:
                if (key, t) in seen_pairs:  # identical adjacent pairs share one measurement
                    continue
                seen_pairs.add((key, t))
                if self.db.get_converter(key, (), t) is None:
                    pair_tasks.append((a, b, key, t))
                else:
                    s.cached += 1
        dispatch_missing = self.db.get_converter(DISPATCH_KEY, (), 1) is None
        s.cached += int(not dispatch_missing)
        libs = {p.library for n in nodes for p in self.verified(n)}
        switch_pairs = all_pairs(states(sorted(libs), self.threads))
        switch_tasks = [ab for ab in switch_pairs if self.db.get_converter(switch_key(*ab), (), 0) is None]
        s.cached += len(switch_pairs) - len(switch_tasks)
        total = len(conv_tasks) + len(pair_tasks) + int(dispatch_missing) + len(switch_tasks)
        advance = progress("measuring converters and ONNX Runtime fusion", total) if progress and total else None
        for conv, shape in conv_tasks:
            timing = self._time_converter(conv, shape)
            self.db.put_converter(conv.name, shape, 1, timing)
            s.new_measurements += 1
            s.disturbed += int(timing.disturbed)
            if advance:
                advance(f"{conv.name} {shape}")
        for a, b, key, t in pair_tasks:
            timing = self._time_pair(a, b, t)
            self.db.put_converter(key, (), t, timing)
            s.new_measurements += 1
            s.disturbed += int(timing.disturbed)
            if advance:
                advance(f"{a.name}+{b.name} (one ORT session)@{t}")
        for ab in switch_tasks:
            for key, timing in measure_switches([ab], self.time_cap_s * 2).items():
                self.db.put_converter(key, (), 0, timing)
                s.new_measurements += 1
                s.disturbed += int(timing.disturbed)
            if advance:
                advance(f"thread-pool switch {ab[0]} <-> {ab[1]}")
        if dispatch_missing:
            self.db.put_converter(DISPATCH_KEY, (), 1, measure_dispatch())
            s.new_measurements += 1
            if advance:
                advance("executor dispatch")
        s.seconds = time.perf_counter() - t0
        return s

    def _profile_node(self, node: Node, s: ProfileSummary, advance: Callable[[str], Any] | None) -> None:
        """Verify each candidate (cached in the DB), time it at the largest thread count, then at the other
        thread counts only where it is within PRUNE_FACTOR of the node's best (the rest cannot win)."""
        sig, tmax = self.sigs[node.name], max(self.threads)
        ok: list[Primitive] = []
        self._best_ms = float("inf")  # the node's best time so far at tmax: lets hopeless kernels stop early
        for prim in sorted(candidate_primitives(node, self.graph), key=_likely_slow):
            rec = self.db.get_verification(sig, prim.name)
            timed = self.db.get_node(sig, prim.name, tmax) is not None
            if rec is None:
                self._measure(node, prim, tmax, s, verify=True, timed=timed)
                rec = self.db.get_verification(sig, prim.name)
            else:
                s.cached += 1
            if rec is None or not rec.ok:
                s.excluded[f"{node.name}/{prim.name}"] = rec.reason if rec else "not verified"
                if advance:
                    for _ in self.threads:
                        advance(f"{node.name} {prim.name}")
                continue
            s.verified += 1
            ok.append(prim)
            if self.db.get_node(sig, prim.name, tmax) is None:
                self._measure(node, prim, tmax, s)
            elif timed:
                s.cached += 1
            if (r := self.db.get_node(sig, prim.name, tmax)) is not None:
                self._best_ms = min(self._best_ms, r.median_ms)
            if advance:
                advance(f"{node.name} {prim.name}@{tmax}")
        times = {p.name: r.median_ms for p in ok if (r := self.db.get_node(sig, p.name, tmax)) is not None}
        best = min(times.values(), default=0.0)
        for t in self.threads:
            if t == tmax:
                continue
            for prim in ok:
                if times.get(prim.name, np.inf) > PRUNE_FACTOR * best:
                    s.pruned += 1
                elif self.db.get_node(sig, prim.name, t) is None:
                    self._measure(node, prim, t, s)
                else:
                    s.cached += 1
                if advance:
                    advance(f"{node.name} {prim.name}@{t}")

    def _measure(self, node: Node, prim: Primitive, threads: int, s: ProfileSummary, *, verify: bool = False,
                 timed: bool = False) -> None:
        """One request to the measurer (verification and/or timing), its results written to the DB: a
        verification, a node timing, or the exclusion of a candidate that raised, crashed or hung."""
        sig = self.sigs[node.name]
        req = CandidateRequest(node.name, prim.name, threads, verify=verify, time=not timed, best_ms=self._best_ms,
                               probe=threads == max(self.threads))
        out = self.measurer.measure(req)
        if out.verified is not None:
            ok, rel, reason = out.verified
            self.db.put_verification(sig, prim.name, ok, rel, reason)
            s.new_measurements += 1
            if not ok:
                return
        if out.failure is not None:
            self.db.put_verification(sig, prim.name, False, None, out.failure)
            s.excluded[f"{node.name}/{prim.name}"] = out.failure
            s.new_measurements += int(out.verified is None)
            return
        if out.timing is not None:
            self.db.put_node(sig, prim.name, threads, out.timing, out.weight_bytes, out.workspace_bytes,
                             *(out.memory or (None, None)))
            s.new_measurements += 1
            s.disturbed += int(out.timing.disturbed)

    @property
    def measurer(self) -> Any:
        """The candidate measurer: a crash- and hang-isolated worker process, or this process."""
        if self._measurer is None:
            if self.isolate:
                self._measurer = IsolatedMeasurer(self.graph, self.samples, self.time_cap_s, self.kernel_timeout_s)
            else:
                self._measurer = CandidateMeasurer(self.graph, self.samples, self.time_cap_s)
        return self._measurer

    def close(self) -> None:
        """Stop the measurement worker, if one was started."""
        if isinstance(self._measurer, IsolatedMeasurer):
            self._measurer.close()
        self._measurer = None

    def fusable_pairs(self) -> list[tuple[Node, Node, str]]:
        """Topologically adjacent node pairs that can both run as fused ORT nodes (verified)."""
        out = []
        nodes = self.graph.nodes
        for a, b in zip(nodes, nodes[1:], strict=False):
            if all(self._fusable_ok(n) for n in (a, b)):
                out.append((a, b, pair_key(self.graph, a, b, self.sigs[a.name], self.sigs[b.name])))
        return out

    def _fusable_ok(self, node: Node) -> bool:
        rec = self.db.get_verification(self.sigs[node.name], fusable_primitive(node))
        return rec is not None and rec.ok

    def _time_pair(self, a: Node, b: Node, threads: int) -> Timing:
        kernel, ins, _ = segment_kernel(self.graph, [a, b], threads)
        xs = [np.ascontiguousarray(self.samples[v]) for v in ins]
        set_threads(threads)
        return time_callable(lambda: kernel(*xs), time_cap_s=self.time_cap_s, max_runs=100, quiet_wait_s=0.3)

    def _time_converter(self, conv: Any, shape: tuple[int, ...]) -> Timing:
        set_threads(1)
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        for c in converter_route(FP32, conv.src) or []:
            x = c.prepare(shape)(x)
        fn = conv.prepare(shape)
        return time_callable(lambda: fn(x), time_cap_s=self.time_cap_s, max_runs=100, quiet_wait_s=0.3)
