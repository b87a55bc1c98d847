"""`edgetune profile`: measure every (node, verified primitive, threads) and every converter an edge
may need, into the ProfileDB, skipping what the database already holds.

Order of work: (1) verification of each candidate primitive on each distinct node signature (results
cached in the DB, a failing primitive is excluded with its reason); (2) timing of each verified
(signature, primitive, threads); (3) the fixed measurements, as `MeasurementTask`s (edgetune.measure.tasks)
run by one loop: each converter the space can need on each edge's tensor shape, each adjacent pair of
ORT-fusable nodes as one session, each switch between two libraries' thread pools, and the executor's
per-step dispatch cost. Each result is committed as soon as it is measured, so an interrupted profile resumes where it
stopped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Graph, Node
from edgetune.kernels import registry
from edgetune.kernels.base import FP32, Format, Primitive
from edgetune.kernels.registry import converter_route
from edgetune.kernels.segments import fusable_primitive, pair_key, segment_signature
from edgetune.measure.candidate import CandidateMeasurer, CandidateRequest
from edgetune.measure.db import ProfileDB, VerifyRecord, node_signature
from edgetune.measure.isolation import IsolatedMeasurer
from edgetune.measure.segment_candidates import SegmentCandidate, promising, segment_candidates
from edgetune.measure.switching import all_pairs, states, switch_key
from edgetune.measure.tasks import DISPATCH_KEY as DISPATCH_KEY  # re-exported: planning.design_space reads it here
from edgetune.measure.tasks import (
    ISOLATED_KINDS,
    MeasurementTask,
    SegmentRejected,
    TaskContext,
    converter_task,
    dispatch_task,
    ort_pair_task,
    perform,
    segment_key,
    segment_task,
    switch_task,
)
from edgetune.measure.timing import Timing

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


def run_tasks(tasks: Sequence[MeasurementTask], ctx: TaskContext, db: ProfileDB, s: ProfileSummary,
              advance: Callable[[str], Any] | None = None) -> None:
    """Perform each task in order and store its timing at once, counting it in `s`: a task that raises
    stops the loop with every earlier result already in the DB (a rerun measures only what is missing)."""
    for task in tasks:
        try:
            outcome: Timing | SegmentRejected = perform(task, ctx)
        except SegmentRejected as e:  # excluded with its reason, remembered so that a rerun does not retry
            outcome = e
        record_task(task, outcome, db, s)
        if advance:
            advance(task.description)


def record_task(task: MeasurementTask, outcome: Timing | SegmentRejected, db: ProfileDB, s: ProfileSummary) -> None:
    """Store one task's outcome (its timing, or the segment's exclusion with its reason) and count it in `s`:
    the one place a task's result becomes a DB row, wherever the task was performed."""
    if isinstance(outcome, SegmentRejected):
        db.put_verification(task.key, rejection_key(task), False, None, str(outcome))
        s.excluded[f"segment {task.description}"] = str(outcome)
    else:
        db.put_converter(task.key, task.shape, task.threads, outcome)
        s.disturbed += int(outcome.disturbed)
    s.new_measurements += 1


class TaskRunner(Protocol):
    """Who performs a profile's measurements. The profiler decides what to measure and owns the DB; a runner
    only chooses where and in which order the work runs (`LocalRunner`: here, in order; edgetune.fleet's:
    on the boards of a Ray cluster) and must leave the DB holding exactly the rows a local run would."""

    def profile_nodes(self, profiler: Profiler, nodes: Sequence[Node], s: ProfileSummary,
                      advance: Callable[[str], Any] | None) -> None:
        """Every node's candidates verified and timed (`Profiler.profile_node` semantics), counted in `s`."""

    def run_tasks(self, tasks: Sequence[MeasurementTask], ctx: TaskContext, db: ProfileDB, s: ProfileSummary,
                  advance: Callable[[str], Any] | None) -> None:
        """Every task performed and stored (`record_task`), counted in `s`."""


class LocalRunner:
    """This process, one measurement at a time, in the profiler's order (the default)."""

    def profile_nodes(self, profiler: Profiler, nodes: Sequence[Node], s: ProfileSummary,
                      advance: Callable[[str], Any] | None) -> None:
        for node in nodes:
            profiler.profile_node(node, s, advance)

    def run_tasks(self, tasks: Sequence[MeasurementTask], ctx: TaskContext, db: ProfileDB, s: ProfileSummary,
                  advance: Callable[[str], Any] | None) -> None:
        run_tasks(tasks, ctx, db, s, advance)


def keyed_segment_candidates(graph: Graph, db: ProfileDB, threads: Sequence[int],
                             sigs: dict[str, str]) -> list[tuple[SegmentCandidate, str]]:
    """Runs worth measuring whole on each installed library that compiles segments, where its fusable
    primitive verified on every node (measure/segment_candidates.py), each with its DB key. The profiler
    measures them; the design space reads them back under the same keys."""
    libs = [lib.name for lib in registry.installed_libraries() if lib.segment is not None]

    def verified(library: str, node: Node) -> bool:
        try:
            prim = fusable_primitive(node, library)
        except ValueError:  # the library has no primitive that can join a segment for this op
            return False
        rec = db.get_verification(sigs[node.name], prim)
        return rec is not None and rec.ok

    found = segment_candidates(graph, libs, threads, verified, blocks_wanted=_blocks_wanted(graph, db, sigs, libs))
    found += _proposed(graph, db, threads, sigs, set(libs), {(c.library, c.threads, c.nodes) for c in found})
    return [(c, candidate_key(graph, c, sigs)) for c in found]


def _blocks_wanted(graph: Graph, db: ProfileDB, sigs: dict[str, str], libs: list[str]) -> Callable[[str, int], bool]:
    """Whether a library's blocks are segment candidates at a thread count: always, but for a probe-first
    library (`Library.probe_first`) only once its whole graph measured close to the other backends' best
    (`segment_candidates.promising`), which the DB says after the profiler's first round of tasks."""
    probing = {lib for lib in libs if registry.library(lib).probe_first}
    whole = segment_signature(graph, graph.nodes, sigs)

    def whole_ms(lib: str, threads: int) -> float | None:
        rec = db.get_converter(segment_key(lib, whole, True), (), threads)
        return rec.median_ms if rec is not None else None

    def wanted(lib: str, threads: int) -> bool:
        if lib not in probing:
            return True
        others = [ms for other in libs if other != lib and (ms := whole_ms(other, threads)) is not None]
        return promising(whole_ms(lib, threads), others)

    return wanted


# ---- segments a search proposed (measured on demand) ------------------------------------------------
PROPOSED_KIND = "proposed"


def proposals_sig(graph: Graph, sigs: dict[str, str]) -> str:
    """The verifications-table key under which the runs searches proposed for this graph are remembered."""
    content = "\n".join(sigs[n.name] for n in graph.nodes)
    return f"proposed-segments:{hashlib.sha256(content.encode()).hexdigest()[:20]}"


def _proposed(graph: Graph, db: ProfileDB, threads: Sequence[int], sigs: dict[str, str], libs: set[str],
              known: set[tuple[str, int, tuple[str, ...]]]) -> list[SegmentCandidate]:
    """The proposals remembered for this graph ("library@threads:start-end", an interval of the topological
    order), at the thread counts asked for, that no enumerated candidate already is."""
    out = []
    for rec in db.verifications_of(proposals_sig(graph, sigs)):
        lib_t, _, span = rec.primitive.partition(":")
        lib, _, t = lib_t.rpartition("@")
        a, _, b = span.partition("-")
        if not (t.isdigit() and a.isdigit() and b.isdigit()) or lib not in libs or int(t) not in threads:
            continue
        names = tuple(n.name for n in graph.nodes[int(a):int(b)])
        if len(names) >= 2 and (lib, int(t), names) not in known:
            known.add((lib, int(t), names))
            out.append(SegmentCandidate(lib, int(t), names, PROPOSED_KIND))
    return out


def propose_segments(graph: Graph, db: ProfileDB, runs: Sequence[tuple[str, int, Sequence[str]]]) -> int:
    """Remember runs of consecutive nodes a search put on one library (`(library, threads, nodes)`, as the
    executor merges them) that are not measured whole yet, so that the next profile measures them whole and
    the design space offers them as segments (issue 11: any segment a search proposes, measured on demand).
    Returns how many were new."""
    sigs = {n.name: node_signature(n, graph) for n in graph.nodes}
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    key, new = proposals_sig(graph, sigs), 0
    threads = sorted({t for _, t, _ in runs})
    known = {(c.library, c.threads, c.nodes) for c, _ in keyed_segment_candidates(graph, db, threads, sigs)}
    for lib, t, nodes in runs:
        pos = [index[n] for n in nodes]
        if len(pos) < 2 or pos != list(range(pos[0], pos[0] + len(pos))):
            continue  # not an interval of the topological order: never merged by the executor either
        if (lib, t, tuple(nodes)) not in known:
            db.put_verification(key, f"{lib}@{t}:{pos[0]}-{pos[-1] + 1}", True, None)
            known.add((lib, t, tuple(nodes)))
            new += 1
    return new


def candidate_key(graph: Graph, cand: SegmentCandidate, sigs: dict[str, str]) -> str:
    nodes = [graph.node(n) for n in cand.nodes]
    return segment_key(cand.library, segment_signature(graph, nodes, sigs), cand.kind == "whole graph")


def rejection_key(task: MeasurementTask) -> str:
    """The verifications row remembering that a segment was excluded (per library and thread count)."""
    return f"{task.library}@{task.threads}"


class Profiler:
    """Fills a ProfileDB for one graph: `run()` verifies and times every node's candidates, then runs the
    `tasks()` (converters, fusion pairs, switches, dispatch) the DB lacks. Where that work runs is the
    `runner`'s choice (default `LocalRunner`: here, in order; edgetune.fleet: on a Ray cluster's boards)."""

    _best_ms: float = float("inf")

    def __init__(self, graph: Graph, db: ProfileDB, threads: Sequence[int], *,
                 samples: dict[str, np.ndarray] | None = None, time_cap_s: float = DEFAULT_TIME_CAP_S,
                 kernel_timeout_s: float = DEFAULT_KERNEL_TIMEOUT_S, isolate: bool = True,
                 runner: TaskRunner | None = None) -> None:
        if not threads or min(threads) < 1:
            raise EdgetuneError(f"profiler: thread counts must be >= 1, got {list(threads)}")
        if not (np.isfinite(time_cap_s) and time_cap_s > 0):
            raise EdgetuneError(f"profiler: time cap must be > 0 s, got {time_cap_s}")
        if not (np.isfinite(kernel_timeout_s) and kernel_timeout_s > 0):
            raise EdgetuneError(f"profiler: kernel timeout must be > 0 s, got {kernel_timeout_s}")
        self.kernel_timeout_s, self.isolate = kernel_timeout_s, isolate
        self.runner: TaskRunner = runner or LocalRunner()
        self._measurer: Any = None
        self.graph, self.db, self.threads = graph, db, sorted(set(threads))
        self.ctx = TaskContext(graph, time_cap_s, samples)
        self.time_cap_s = time_cap_s
        self.sigs = {n.name: node_signature(n, graph) for n in graph.nodes}

    @property
    def samples(self) -> dict[str, np.ndarray]:
        """The graph's reference samples (computed on first use, shared with the tasks)."""
        return self.ctx.samples

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

    # ---- the fixed measurements: tasks ------------------------------------------------------------
    def all_tasks(self) -> list[MeasurementTask]:
        """Every converter, ORT-pair, switch and dispatch measurement this graph's space can need, each
        once, in the order they are measured. Depends on the verifications: list after the node phase."""
        return [*self._converter_tasks(), *self._pair_tasks(), *self._switch_tasks(), dispatch_task(),
                *self._segment_tasks()]

    def tasks(self) -> list[MeasurementTask]:
        """The tasks whose row the DB lacks: what `run` would still measure after the node phase (and, once
        these are measured, the blocks of a probe-first backend whose whole graph came close)."""
        return self._missing(self.all_tasks())

    def _missing(self, tasks: Sequence[MeasurementTask]) -> list[MeasurementTask]:
        """Tasks with neither a measurement nor a remembered exclusion."""
        return [t for t in tasks if self.db.get_converter(*t.db_key) is None
                and (t.kind != "segment" or self.db.get_verification(t.key, rejection_key(t)) is None)]

    def segment_candidates(self) -> list[SegmentCandidate]:
        """Runs worth measuring whole (see `keyed_segment_candidates`)."""
        return [c for c, _ in keyed_segment_candidates(self.graph, self.db, self.threads, self.sigs)]

    def segment_key(self, cand: SegmentCandidate) -> str:
        return candidate_key(self.graph, cand, self.sigs)

    def _segment_tasks(self) -> list[MeasurementTask]:
        """One task per (segment content, library, threads): identical blocks share one measurement."""
        out, seen = [], set()
        for cand, key in keyed_segment_candidates(self.graph, self.db, self.threads, self.sigs):
            if (key, cand.threads) not in seen:
                seen.add((key, cand.threads))
                out.append(segment_task(key, cand.library, cand.threads, cand.nodes, cand.kind))
        return out

    def _converter_tasks(self) -> list[MeasurementTask]:
        """One task per (converter, tensor shape), whichever edges share it."""
        out, seen = [], set()
        for _value, shape, conv in sorted(self.edge_conversions(), key=lambda x: (x[2].name, x[1])):
            if (conv.name, shape) not in seen:
                seen.add((conv.name, shape))
                out.append(converter_task(conv, shape))
        return out

    def _pair_tasks(self) -> list[MeasurementTask]:
        """One task per (fusable pair key, threads): identical adjacent pairs share one measurement."""
        out, seen = [], set()
        for a, b, key in self.fusable_pairs():
            for t in self.threads:
                if (key, t) not in seen:
                    seen.add((key, t))
                    out.append(ort_pair_task(a.name, b.name, key, t))
        return out

    def _switch_tasks(self) -> list[MeasurementTask]:
        """One task per pair of (pool, threads) states of the libraries with a verified primitive."""
        libs = {p.library for n in self.distinct_nodes() for p in self.verified(n)}
        return [switch_task(switch_key(a, b), a, b) for a, b in all_pairs(states(sorted(libs), self.threads))]

    # ---- doing it --------------------------------------------------------------------------
    def run(self, progress: Callable[[str, int], Any] | None = None) -> ProfileSummary:
        """Verify and time every candidate per distinct node, then the tasks (converters, fusion pairs,
        switches, dispatch) the DB lacks. `progress(description, total)` returns an advance function."""
        t0 = time.perf_counter()
        s = ProfileSummary()
        self.profile_nodes(s, progress)
        planned = self.all_tasks()
        todo = self._missing(planned)
        s.cached += len(planned) - len(todo)
        try:
            self._run_round(todo, s, progress, "measuring converters, fusion and segments")
            # the first round measured the probe-first backends' whole graphs: their blocks where those came close
            if later := self.tasks():
                self._run_round(later, s, progress, "measuring segments of the backends that came close")
        finally:
            self.close()
        s.seconds = time.perf_counter() - t0
        return s

    def _run_round(self, todo: list[MeasurementTask], s: ProfileSummary,
                   progress: Callable[[str, int], Any] | None, what: str) -> None:
        """Perform `todo` through the runner (segments in the isolated worker when there is one), told even when
        `todo` is empty (a fleet's runner closes the profile's status there)."""
        advance = progress(what, len(todo)) if progress and todo else None
        if self.isolate and isinstance(self.runner, LocalRunner) and any(t.kind in ISOLATED_KINDS for t in todo):
            self.ctx.isolated = self.measurer.perform_task  # a backend crashing on a segment excludes it
        try:
            self.runner.run_tasks(todo, self.ctx, self.db, s, advance)
        finally:
            self.ctx.isolated = None

    def profile_nodes(self, s: ProfileSummary, progress: Callable[[str, int], Any] | None = None) -> None:
        """The node phase, counted in `s`: every distinct node's candidates verified and timed (see
        `profile_node`) by the runner, then the measurement worker stopped. The tasks depend on its verifications."""
        nodes = self.distinct_nodes()
        work = sum(len(candidate_primitives(n, self.graph)) for n in nodes) * len(self.threads)
        advance = progress("verifying and timing primitives", work) if progress and work else None
        try:
            self.runner.profile_nodes(self, nodes, s, advance)
        finally:
            self.close()

    def profile_node(self, node: Node, s: ProfileSummary, advance: Callable[[str], Any] | None = None) -> None:
        """Verify each candidate (cached in the DB), time it at the largest thread count, then at the other
        thread counts only where it is within PRUNE_FACTOR of the node's best (the rest cannot win)."""
        ok = self._verify_and_time_at_max(node, s, advance)
        self._time_other_threads(node, ok, s, advance)

    def _verify_and_time_at_max(self, node: Node, s: ProfileSummary,
                                advance: Callable[[str], Any] | None) -> list[Primitive]:
        """Each candidate, likely-slow ones last so the node's best is known before they run: verified
        (excluded with its reason when it fails) and timed at the largest thread count. Returns the verified."""
        tmax = max(self.threads)
        ok: list[Primitive] = []
        self._best_ms = float("inf")  # the node's best time so far at tmax: lets hopeless kernels stop early
        for prim in sorted(candidate_primitives(node, self.graph), key=_likely_slow):
            timed = self.db.get_node(self.sigs[node.name], prim.name, tmax) is not None
            rec = self._verification(node, prim, s, timed)
            if rec is None or not rec.ok:
                s.excluded[f"{node.name}/{prim.name}"] = rec.reason if rec else "not verified"
                if advance:
                    for _ in self.threads:
                        advance(f"{node.name} {prim.name}")
                continue
            s.verified += 1
            ok.append(prim)
            self._time_at_max(node, prim, s, timed)
            if advance:
                advance(f"{node.name} {prim.name}@{tmax}")
        return ok

    def _verification(self, node: Node, prim: Primitive, s: ProfileSummary, timed: bool) -> VerifyRecord | None:
        """The cached verification, or a new one; a new one also times at the largest thread count when
        that timing is missing (`timed` False), from the same prepared kernel."""
        sig = self.sigs[node.name]
        rec = self.db.get_verification(sig, prim.name)
        if rec is not None:
            s.cached += 1
            return rec
        self._measure(node, prim, max(self.threads), s, verify=True, timed=timed)
        return self.db.get_verification(sig, prim.name)

    def _time_at_max(self, node: Node, prim: Primitive, s: ProfileSummary, timed: bool) -> None:
        """A verified candidate's timing at the largest thread count (unless the DB or the verification
        request has it), then the node's best so far updated from it."""
        sig, tmax = self.sigs[node.name], max(self.threads)
        if self.db.get_node(sig, prim.name, tmax) is None:
            self._measure(node, prim, tmax, s)
        elif timed:
            s.cached += 1
        if (r := self.db.get_node(sig, prim.name, tmax)) is not None:
            self._best_ms = min(self._best_ms, r.median_ms)

    def _time_other_threads(self, node: Node, ok: list[Primitive], s: ProfileSummary,
                            advance: Callable[[str], Any] | None) -> None:
        """The verified candidates at the other thread counts, except those over PRUNE_FACTOR x the node's
        best at the largest (fewer threads never made a kernel that much faster)."""
        sig, tmax = self.sigs[node.name], max(self.threads)
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
