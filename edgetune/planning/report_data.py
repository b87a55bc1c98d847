"""The parts of `ReportData` that are computed rather than copied from the result: per-layer options,
the latency-memory front, the comparison as the report names it, the notes, and how numbers were
obtained. Each is a small function of the run's own objects, so the report shows what the loop used.
"""

from __future__ import annotations

from typing import Any

from edgetune.graph.ir import Graph
from edgetune.planning.candidates import Candidate
from edgetune.planning.design_space import SpaceInfo
from edgetune.planning.results import (
    ComparisonRow,
    LayerOption,
    LayerRow,
    Method,
    ParetoPoint,
    SpaceSummary,
    TuneConfig,
    TuneResult,
)
from edgetune.search import DesignSpace, pareto_front

PLAN_VARIANT = "edgetune plan"


def layer_rows(graph: Graph, space: DesignSpace, choice: list[int]) -> list[LayerRow]:
    """Per node in execution order, the option the plan runs and every option the search had."""
    rows = []
    for i, node in enumerate(graph.nodes):
        opts = space.options[i]
        c = opts[choice[i]]
        rows.append(LayerRow(node=node.name, op=node.op, chosen=c.key, chosen_ms=c.time_ms, options=[
            LayerOption(key=o.key, time_ms=o.time_ms, library=o.meta.get("library", ""), precision=o.precision)
            for o in opts]))
    return rows


def timeline_rows(graph: Graph, space: DesignSpace, best: Candidate, steps: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    """The chosen plan's steps in program order (`measure.overhead.step_times`), each with its nodes and the
    cost model's prediction for it: its nodes' option times (a segment measured whole: its measured time);
    a precision configuration (a plan made outside the space) is predicted by its own whole measurement."""
    position = {n.name: i for i, n in enumerate(graph.nodes)}
    units = {}
    for seg in best.executor.plan.segments or []:
        names = sorted(seg.nodes, key=position.__getitem__)
        units[f"{names[0]}..{names[-1]}"] = names
    rows = []
    for s in steps:
        nodes = units.get(s["step"]) or ([s["step"]] if s["step"] in position else [])
        if best.plan is not None:  # made outside the design space: its one whole measurement
            predicted = best.predicted_ms if len(steps) == 1 else None
        else:
            predicted = sum(space.options[position[n]][best.choice[position[n]]].time_ms for n in nodes) if nodes \
                else None
        rows.append({**s, "nodes": len(nodes), "predicted_ms": predicted})
    return rows


def pareto_points(space: DesignSpace, front: DesignSpace, choice: list[int]) -> tuple[list[ParetoPoint], list[str]]:
    """The exact latency-memory front of `front` (the search's options and fp16-weight ones), the plan of
    `choice` in `space` starred where it is on it; the notes say why there is no front if it failed."""
    try:
        chosen_keys = [space.options[i][c].key for i, c in enumerate(choice)]
        points = [ParetoPoint(latency_ms=lat, memory_bytes=mem,
                              chosen=[front.options[i][c].key for i, c in enumerate(plan)] == chosen_keys)
                  for lat, mem, plan in pareto_front(front)]
    except Exception as e:  # noqa: BLE001 - the front is a figure, not the product
        return [], [f"Pareto front not computed: {e}"]
    return points, []


def space_summary(space: DesignSpace, info: SpaceInfo) -> SpaceSummary:
    """The search space's size and what had no measurement."""
    return SpaceSummary(nodes=len(space.nodes), edges=len(space.edges), log10_size=space.log10_size(),
                        options_per_node=space.n_options, fallbacks=info.fallbacks, unmeasured=info.unmeasured)


def comparison_rows(result: TuneResult, best_name: str) -> list[ComparisonRow]:
    """The side-by-side rows as the report shows them: the chosen candidate as "edgetune plan", the other
    candidates left to the candidates table, the peers and the BLAS baseline with what their memory counts."""
    base = result.latency_ms.blas
    others = {c.name for c in result.candidates} - {best_name}
    rows = []
    for r in result.comparison:
        if r["variant"] in others:
            continue
        planned = r["memory"].get("total_bytes")
        fresh = (r["memory"].get("fresh_process") or {}).get("total")
        memory, kind = ((planned, "planned total") if planned else (fresh, "resident, fresh process") if fresh
                        else (r["memory"].get("weight_bytes"), "weights only"))
        rows.append(ComparisonRow(
            variant=PLAN_VARIANT if r["variant"] == best_name else r["variant"], median_ms=r["median_ms"],
            p10_ms=r["p10_ms"], p90_ms=r["p90_ms"], memory_bytes=memory, memory_kind=kind,
            speedup_vs_blas=base / r["median_ms"], note=r["memory"].get("note", "")))
    return rows


def report_notes(graph: Graph, info: SpaceInfo, result: TuneResult) -> list[str]:
    """The verdict first, then what a reader must know to use the plan: the shape it is tuned for, opset
    upgrades, generic nodes, fallbacks, unmeasured converters, and the executor's own cost."""
    notes = [result.verdict["statement"], *result.notes]
    shapes = ", ".join(f"{k}={'x'.join(map(str, v))}" for k, v in result.input_shapes.items())
    notes.append(f"Tuned for input shape {shapes}; the plan is refused for any other shape.")
    if graph.upgraded_from is not None:
        notes.append(f"The model was upgraded from opset {graph.upgraded_from} to {graph.opset} at load "
                     f"(ONNX version converter).")
    if result.generic_nodes:
        ops = sorted(set(result.generic_nodes.values()))
        notes.append(f"{len(result.generic_nodes)} node(s) of ops edgetune has no kernel of its own for "
                     f"({', '.join(ops)}) run on a generic backend (ONNX Runtime); their ground truth is "
                     f"onnx.reference.")
    if info.fallbacks:
        notes.append(f"{len(info.fallbacks)} node(s) had no verified measured primitive and run on the reference "
                     f"kernel: {', '.join(info.fallbacks[:10])}")
    if info.unmeasured:
        notes.append(f"converters without measurements (priced as infeasible): {', '.join(info.unmeasured[:10])}")
    e = result.executor
    notes.append(f"The executor's own work (kernels stubbed out, measured): {e['per_step_us']:.2f} us per step, "
                 f"{e['per_inference_us']:.1f} us per inference over {e['steps']} steps"
                 + (f"; ONNX Runtime workers spin: {e['ort_spin']}." if "onnxruntime" in e["libraries"] else "."))
    return notes


def method_text(cfg: TuneConfig) -> Method:
    """How this run's numbers were obtained, for the report's captions and its "how to read" section."""
    return Method(
        timing="Each (node, primitive, threads) was timed alone on realistic activations: warm-up, then "
               "repeated runs until the 95% confidence interval of the median is within 5% or a time cap; "
               "runs disturbed by other processes (from /proc/stat) are repeated and flagged.",
        comparison="End-to-end latencies are medians of alternating rounds (every variant once per round, order "
                   "rotated) in one process, batch 1, same thread count; memory is planned (weights + largest "
                   "workspace + activation arena from liveness) for edgetune plans, weights for ONNX Runtime.",
        memory="edgetune plans: planned bytes = weights as the kernels hold them + the scratch buffers of "
               "all kernels + the activation arena peak from liveness analysis (bench/memory.py compares "
               "this with resident memory measured in a fresh process). Peers: resident bytes measured in a fresh "
               "process (load, compile, one run; growth over an import-only baseline). The "
               "Pareto front uses the search's memory model, over fp32 and fp16-weight per-node options "
               "(not segments): per option "
               "the resident bytes the profiler measured for its kernel (at least its weights), or its "
               "reported weights where none were measured, plus the largest scratch of any option (measured "
               "transient peak, else reported workspace).",
        search=f"Strategies optimise predicted latency = sum of node times + conversion costs + ONNX Runtime "
               f"fusion gains + dispatch; the exact optimum is a MILP/DP over the same tables. Budget "
               f"{cfg.budget} plan evaluations, seed {cfg.seed}.",
    )
