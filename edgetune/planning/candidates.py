"""The candidate plans `tune` measures end to end: the exact optimum of the cost model, the chosen
strategy's best, the per-layer fastest, the whole graph on ONNX Runtime, and for those whose ORT sessions
spin only while they run, the same plan with ORT workers that never spin.

Why several: the search optimises a model of latency; which plan really runs fastest is decided by
measuring a few good ones side by side, not by trusting the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Graph
from edgetune.graph.reference import reference_samples
from edgetune.kernels import registry
from edgetune.kernels.segments import fusable_primitive
from edgetune.measure.segment_candidates import promising
from edgetune.planning.design_space import choice_segments, choice_to_plan_choices
from edgetune.planning.results import CandidateRow, TuneConfig
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import NodeChoice, Plan, merged_segments
from edgetune.search import DesignSpace, SearchResult, get_strategy

WHOLE_GRAPH_ORT = "whole graph in one ONNX Runtime session"


@dataclass
class Candidate:
    """A plan to measure: its choice in the search space, what the cost model predicts, and once
    compiled its executor (None with the reason in `note` when it was refused)."""

    name: str
    choice: list[int]
    predicted_ms: float
    memory_bytes: int
    executor: Executor | None = None
    note: str = ""
    ort_spin: str = "auto"
    plan: Plan | None = None  # made outside the design space (a precision configuration); else from `choice`
    accuracy: dict[str, Any] | None = None  # measured on the evaluation split where a precision search ran

    def row(self, measured: dict[str, Any] | None, chosen: bool) -> CandidateRow:
        """The candidate beside its side-by-side measurement (None when it was not measured)."""
        ex = self.executor
        return CandidateRow(
            name=self.name, predicted_ms=self.predicted_ms,
            measured_ms=measured["median_ms"] if measured else None,
            p10_ms=measured["p10_ms"] if measured else None, p90_ms=measured["p90_ms"] if measured else None,
            memory_bytes=ex.memory().total_bytes if ex else self.memory_bytes,
            max_rel_error=ex.max_error if ex else None, chosen=chosen, note=self.note,
            steps=len(ex.steps) if ex else None, accuracy=self.accuracy)


def to_plan(graph: Graph, space: DesignSpace, choice: list[int], meta: dict[str, Any], ort_spin: str = "auto") -> Plan:
    """The Plan that runs `choice` of `space` on `graph`."""
    picks = choice_to_plan_choices(space, choice)
    choices = {n: NodeChoice(p, t) for n, (p, t) in picks.items()}
    measured = choice_segments(space, choice)  # segments measured whole, then the merged runs between them
    merged = merged_segments(graph, choices, exclude={n for seg in measured for n in seg.nodes})
    return Plan.for_graph(graph, choices, segments=measured + merged, meta=meta, ort_spin=ort_spin)


def all_ort_choice(space: DesignSpace, graph: Graph) -> list[int] | None:
    """The whole graph on ONNX Runtime as one fused session (the peer, expressed as a plan): its option
    measured whole where the profiler measured it, else every node's fusable ORT option."""
    threads = max(o.meta.get("threads", 1) for opts in space.options for o in opts)
    whole = whole_graph_choice(space, "onnxruntime", threads)
    if whole is not None:
        return whole
    choice = []
    for node, opts in zip(graph.nodes, space.options, strict=True):
        want = f"{fusable_primitive(node)}@{threads}"
        idx = [i for i, o in enumerate(opts) if o.key == want]
        if not idx:
            return None
        choice.append(idx[0])
    return choice


def whole_graph_choice(space: DesignSpace, library: str, threads: int) -> list[int] | None:
    """Every node on the whole-graph segment of `library` at `threads`, when it was measured."""
    choice = []
    for opts in space.options:
        idx = [k for k, o in enumerate(opts) if o.meta.get("segment_kind") == "whole graph"
               and o.meta.get("library") == library and o.meta.get("threads") == threads]
        if not idx:
            return None
        choice.append(idx[0])
    return choice


def whole_graph_candidates(space: DesignSpace) -> list[tuple[str, list[int]]]:
    """The whole graph on each backend that compiled it, at each thread count measured (besides ORT at all
    cores, which is `WHOLE_GRAPH_ORT`); a probe-first backend's (torch) only where its whole graph measured
    close to the fastest other backend's (`segment_candidates.promising`, the rule that also decides whether
    its blocks are measured): measuring a plan end to end costs a tune more than one segment does."""
    whole = {(o.meta["library"], int(o.meta["threads"])): float(o.meta["segment_ms"]) for o in space.options[0]
             if o.meta.get("segment_kind") == "whole graph"} if space.options else {}
    top = max((t for _, t in whole), default=0)
    out = []
    for lib, t in sorted(whole):
        others = [ms for (other, tt), ms in whole.items() if tt == t and other != lib]
        if (lib, t) == ("onnxruntime", top) or (registry.library(lib).probe_first
                                                and not promising(whole[(lib, t)], others)):
            continue
        choice = whole_graph_choice(space, lib, t)
        if choice is not None:
            out.append((f"whole graph on {lib}, {t} thread{'s' if t > 1 else ''}", choice))
    return out


def pick_candidates(graph: Graph, space: DesignSpace, exact: SearchResult, chosen: SearchResult,
                    cfg: TuneConfig) -> list[Candidate]:
    """The distinct plans worth measuring, in the order the report lists them (a plan reached twice is
    measured once, under its first name)."""
    cm = space.cost_model
    greedy = get_strategy("greedy").search(space, 1, cfg.seed, cfg.objective, cfg.max_memory)
    named = [("exact optimum (predicted)", exact.best_choice), (f"{cfg.strategy} best", chosen.best_choice),
             ("greedy (per-layer fastest)", greedy.best_choice), (WHOLE_GRAPH_ORT, all_ort_choice(space, graph)),
             *whole_graph_candidates(space)]
    cands: list[Candidate] = []
    seen: set[tuple[int, ...]] = set()
    for name, choice in named:
        if choice is None or tuple(choice) in seen:
            continue
        seen.add(tuple(choice))
        cands.append(Candidate(name, list(choice), cm.predict(choice), space.plan_memory(choice)))
    return cands


def spin_variants(cands: list[Candidate]) -> list[Candidate]:
    """For each candidate whose ONNX Runtime sessions share the cores with other steps (they spin only during
    their run, "stop"), the same plan with ORT workers that never spin ("off"): which is faster depends on the
    CPU and the plan, so both are measured end to end rather than decided by a rule."""
    out = []
    for c in cands:
        ex = c.executor
        if ex is not None and ex.ort_spin == "stop" and "onnxruntime" in ex.libraries:
            out.append(Candidate(f"{c.name}, ORT workers never spin", c.choice, c.predicted_ms, c.memory_bytes,
                                 note="same plan, ort_spin=off", ort_spin="off"))
    return out


def compile_candidates(graph: Graph, space: DesignSpace, cands: list[Candidate],
                       feeds: dict[str, np.ndarray]) -> list[Candidate]:
    """Compile every candidate, checked against the reference on `feeds`, then its never-spinning ORT
    variant; returns all of them (a refused one keeps the reason as its note). Raises when none compiled."""
    samples: list[Any] = []
    _compile(graph, space, cands, feeds, samples)
    variants = spin_variants(cands)
    _compile(graph, space, variants, feeds, samples)
    cands = cands + variants
    if not any(c.executor is not None for c in cands):
        raise EdgetuneError(f"no candidate plan for {graph.name} passed the output check: {cands[0].note}")
    return cands


def _compile(graph: Graph, space: DesignSpace, cands: list[Candidate], feeds: dict[str, np.ndarray],
             samples: list[Any]) -> None:
    """Compile each candidate; a refused one keeps the reason as its note. `samples` caches the reference
    activations int8 candidates calibrate on (computed once, when first needed)."""
    for c in cands:
        plan = to_plan(graph, space, c.choice, {}, c.ort_spin)
        try:
            if not samples and "int8" in plan.precisions:
                samples.append(reference_samples(graph))
            c.executor = Executor(graph, plan, samples=samples[0] if samples else None, check_input=feeds,
                                  measure_memory=True)
        except EdgetuneError as e:
            c.note = f"refused: {e}"
