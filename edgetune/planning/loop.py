"""The main job: profile what the DB lacks, search, measure the best plans end to end, pick by
measurement, and write plan.json + report.html.

Why re-measure: the search optimises a model of latency (sum of measured node, conversion and fusion
costs); the plan that runs fastest is decided on the real thing, side by side with the BLAS fp32
baseline and ONNX Runtime on the whole graph, in one alternating run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetune.errors import EdgetuneError
from edgetune.graph.reference import default_feeds
from edgetune.kernels.backends import generic_nodes
from edgetune.kernels.segments import fusable_primitive
from edgetune.measure.overhead import executor_overhead
from edgetune.planning.design_space import SpaceInfo, build_space, choice_to_plan_choices
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import NodeChoice, Plan, input_shapes
from edgetune.search import DesignSpace, SearchResult, get_strategy, pareto_front
from edgetune.user_model import ModelSource

# Strategies run for the report's convergence figure besides the chosen one (all on the same costs).
COMPARED_STRATEGIES = ("greedy", "random", "anneal", "qlearning", "optuna")
# Optuna's TPE costs ~20 ms per evaluation on a 65-node space: compared at a smaller budget.
COMPARISON_BUDGET_CAP = {"optuna": 200}


@dataclass
class TuneConfig:
    strategy: str = "qlearning"
    budget: int = 1000
    objective: str = "latency"
    max_memory: int | None = None
    threads: list[int] = field(default_factory=lambda: [1, 2])
    precisions: tuple[str, ...] = ("fp32",)
    seed: int = 0
    compare_time_cap_s: float = 20.0
    compare_all_strategies: bool = True


@dataclass
class Candidate:
    name: str
    choice: list[int]
    predicted_ms: float
    memory_bytes: int
    executor: Executor | None = None
    note: str = ""
    ort_spin: str = "auto"


def run_strategies(space: DesignSpace, cfg: TuneConfig) -> tuple[SearchResult, SearchResult, dict[str, Any]]:
    """The exact optimum (always), the chosen strategy, and the others for comparison."""
    def one(name: str, budget: int) -> tuple[SearchResult, float]:
        t0 = time.perf_counter()
        res = get_strategy(name).search(space, budget, cfg.seed, cfg.objective, cfg.max_memory)
        return res, time.perf_counter() - t0

    exact, exact_s = one("exact", 1)
    chosen, chosen_s = one(cfg.strategy, cfg.budget) if cfg.strategy != "exact" else (exact, exact_s)
    runs: dict[str, Any] = {"exact": (exact, exact_s), cfg.strategy: (chosen, chosen_s)}
    if cfg.compare_all_strategies:
        for name in COMPARED_STRATEGIES:
            if name not in runs:
                runs[name] = one(name, min(cfg.budget, COMPARISON_BUDGET_CAP.get(name, cfg.budget)))
    table = {
        name: {"best_ms": r.meta.get("latency_ms", r.best_cost), "best_cost": r.best_cost, "evaluations": r.evaluations,
               "seconds": s, "trace": [list(p) for p in r.trace], "memory_bytes": r.meta.get("memory_bytes"),
               "hyperparameters": {k: v for k, v in r.meta.items() if k not in ("latency_ms", "memory_bytes")}}
        for name, (r, s) in runs.items()
    }
    return exact, chosen, table


def all_ort_choice(space: DesignSpace, graph: Any) -> list[int] | None:
    """The whole graph on ONNX Runtime as one fused session (the peer, expressed as a plan)."""
    threads = max(o.meta.get("threads", 1) for opts in space.options for o in opts)
    choice = []
    for node, opts in zip(graph.nodes, space.options, strict=True):
        want = f"{fusable_primitive(node)}@{threads}"
        idx = [i for i, o in enumerate(opts) if o.key == want]
        if not idx:
            return None
        choice.append(idx[0])
    return choice


def to_plan(graph: Any, space: DesignSpace, choice: list[int], meta: dict[str, Any], ort_spin: str = "auto") -> Plan:
    picks = choice_to_plan_choices(space, choice)
    return Plan.for_graph(graph, {n: NodeChoice(p, t) for n, (p, t) in picks.items()}, meta=meta, ort_spin=ort_spin)


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


def tune(src: ModelSource, cfg: TuneConfig, out_dir: Path, db: Any, profile_summary: Any,
         console: Any) -> dict[str, Any]:
    from edgetune.measure.compare import compare

    graph = src.graph
    console.print(f"building the design space ({len(graph.nodes)} nodes, threads {cfg.threads}, "
                  f"precisions {', '.join(cfg.precisions)})...")
    space, info = build_space(graph, db, cfg.threads, cfg.precisions)
    console.print(f"design space: 10^{space.log10_size():.1f} plans; searching ({cfg.strategy}, budget {cfg.budget}"
                  f", objective {cfg.objective}) and computing the exact optimum...")
    exact, chosen, strategies = run_strategies(space, cfg)
    cm = space.cost_model
    cands: list[Candidate] = []
    seen: set[tuple[int, ...]] = set()

    def add(name: str, choice: list[int] | None, note: str = "") -> None:
        if choice is None or tuple(choice) in seen:
            return
        seen.add(tuple(choice))
        cands.append(Candidate(name, list(choice), cm.predict(choice), space.plan_memory(choice), note=note))

    add("exact optimum (predicted)", exact.best_choice)
    add(f"{cfg.strategy} best", chosen.best_choice)
    add("greedy (per-layer fastest)", get_strategy("greedy").search(space, 1, cfg.seed, cfg.objective,
                                                                     cfg.max_memory).best_choice)
    add(WHOLE_GRAPH_ORT, all_ort_choice(space, graph))
    feeds = default_feeds(graph)
    samples: list[Any] = []
    _prepare_candidates(graph, space, cands, feeds, samples)
    variants_of_spin = spin_variants(cands)
    _prepare_candidates(graph, space, variants_of_spin, feeds, samples)
    cands += variants_of_spin
    runnable = [c for c in cands if c.executor is not None]
    if not runnable:
        raise EdgetuneError(f"no candidate plan for {graph.name} passed the output check: {cands[0].note}")
    from edgetune.runtime.plan import resolve_plan

    threads = max(cfg.threads)
    blas = Executor(graph, resolve_plan("blas", graph, threads), check=False, measure_memory=True)
    variants: dict[str, Any] = {c.name: c.executor for c in runnable}
    variants["BLAS fp32 baseline"] = blas
    console.print(f"measuring {len(runnable)} candidate plans end to end, side by side with the BLAS baseline and "
                  "ONNX Runtime...")
    rows = compare(src, variants, threads=threads, time_cap=cfg.compare_time_cap_s, console=console, int8=False)
    by_name = {r["variant"]: r for r in rows}
    if cfg.objective == "memory":
        best = min(runnable, key=lambda c: (c.executor.memory().total_bytes, by_name[c.name]["median_ms"]))
    else:
        best = min(runnable, key=lambda c: by_name[c.name]["median_ms"])
    blas_row, ort_row = by_name["BLAS fp32 baseline"], by_name["onnxruntime fp32"]
    best_row = by_name[best.name]
    plan = to_plan(graph, space, best.choice, {
        "strategy": cfg.strategy, "objective": cfg.objective, "chosen_candidate": best.name,
        "predicted_ms": best.predicted_ms, "measured_ms": best_row["median_ms"], "threads": cfg.threads,
        "precisions": list(cfg.precisions), "budget": cfg.budget,
    }, ort_spin=best.executor.ort_spin)
    verdict = peer_verdict(best, best_row, rows)
    console.print(verdict["statement"])
    overhead = executor_overhead(best.executor, feeds)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan_path = plan.save(out_dir / "plan.json")
    plan_mem = best.executor.memory().to_dict()
    blas_mem = blas.memory().to_dict()
    db.put_plan(plan.graph_signature, plan.hash(), _timing_of(best_row),
                json.dumps({"memory": plan_mem, "model": graph.name}))
    result = {
        "model": graph.name, "plan": str(plan_path), "out_dir": str(out_dir), "db": str(db.path),
        "input_shapes": input_shapes(graph), "upgraded_from_opset": graph.upgraded_from,
        "generic_nodes": {n.name: n.op for n in generic_nodes(graph)},
        "latency_ms": {"plan": best_row["median_ms"], "blas": blas_row["median_ms"],
                       "onnxruntime": ort_row["median_ms"]},
        "speedup": {"vs_blas": blas_row["median_ms"] / best_row["median_ms"],
                    "vs_onnxruntime": ort_row["median_ms"] / best_row["median_ms"]},
        "memory_bytes": {"plan": plan_mem["total_bytes"], "blas": blas_mem["total_bytes"],
                         "onnxruntime_weights": ort_row["memory"].get("weight_bytes"), "plan_detail": plan_mem,
                         "blas_detail": blas_mem},
        "search": {"strategy": cfg.strategy, "evaluations": chosen.evaluations,
                   "predicted_ms": chosen.meta.get("latency_ms", chosen.best_cost),
                   "optimum_ms": exact.meta.get("latency_ms", exact.best_cost),
                   "design_space_log10": space.log10_size(), "chosen_candidate": best.name},
        "profile": {"new_measurements": profile_summary.new_measurements, "cached": profile_summary.cached,
                    "seconds": profile_summary.seconds, "excluded": len(profile_summary.excluded)},
        "candidates": [_cand_row(c, by_name, best) for c in cands],
        "comparison": rows,
        "verdict": verdict,
        "executor": {**overhead, "ort_spin": best.executor.ort_spin, "libraries": sorted(best.executor.libraries)},
    }
    report = _report_data(graph, space, info, cfg, strategies, exact, best, result, db)
    result["device"] = report["device"]
    from edgetune.report.html import write_report

    result["report"] = str(write_report(report, out_dir))
    (out_dir / "summary.json").write_text(json.dumps(result, indent=1, default=str))
    return result


# The whole-graph fp32 peers a plan must not lose to (int8 peers change the numerics: not the same job).
FP32_PEERS = ("onnxruntime fp32", "torch eager NCHW", "torch eager channels_last")
WHOLE_GRAPH_ORT = "whole graph in one ONNX Runtime session"
NOISE_FLOOR = 0.03


def peer_verdict(best: Candidate, best_row: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How the chosen plan stands against the fastest fp32 peer measured in the same run, in plain words.

    Within noise means the medians differ by less than the larger of 3 % and half the wider relative
    p10-p90 spread of the two."""
    peers = [r for r in rows if r["variant"] in FP32_PEERS]
    if not peers:
        return {"statement": "no whole-graph peer was measured", "best_peer": None}
    peer = min(peers, key=lambda r: r["median_ms"])
    plan_ms, peer_ms = best_row["median_ms"], peer["median_ms"]
    noise = max(NOISE_FLOOR, 0.5 * max(best_row["spread"], peer["spread"]))
    speedup = peer_ms / plan_ms
    within = abs(speedup - 1.0) <= noise
    figures = f"{plan_ms:.2f} ms against {peer['variant']} called directly {peer_ms:.2f} ms"
    if best.name.startswith(WHOLE_GRAPH_ORT) and (within or speedup > 1):
        statement = (f"ONNX Runtime alone is the best plan on this CPU; edgetune's plan is that: {figures} "
                     f"({speedup:.2f}x, noise band ±{noise * 100:.0f} %).")
    elif within:
        statement = f"edgetune's plan ties with the fastest peer within noise: {figures} (±{noise * 100:.0f} %)."
    elif speedup > 1:
        statement = f"edgetune's plan is {speedup:.2f}x faster than the fastest peer: {figures}."
    else:
        statement = (f"edgetune's plan is SLOWER than {peer['variant']} by {(1 / speedup - 1) * 100:.0f} %: {figures} "
                     f"(beyond the ±{noise * 100:.0f} % noise band); use {peer['variant']} on this CPU.")
    return {"statement": statement, "best_peer": peer["variant"], "best_peer_ms": peer_ms, "plan_ms": plan_ms,
            "speedup_vs_best_peer": speedup, "within_noise": within, "noise_band": noise}


def _prepare_candidates(graph: Any, space: DesignSpace, cands: list[Candidate], feeds: dict[str, Any],
                        samples: list[Any]) -> None:
    """Compile each candidate (checked against the reference); a refused one keeps the reason as its note.
    `samples` caches the reference activations int8 candidates calibrate on (computed once, when needed)."""
    from edgetune.graph.reference import reference_samples

    for c in cands:
        plan = to_plan(graph, space, c.choice, {}, c.ort_spin)
        try:
            if not samples and "int8" in plan.precisions:
                samples.append(reference_samples(graph))
            c.executor = Executor(graph, plan, samples=samples[0] if samples else None, check_input=feeds,
                                  measure_memory=True)
        except EdgetuneError as e:
            c.note = f"refused: {e}"


def _timing_of(row: dict[str, Any]) -> Any:
    from edgetune.measure.timing import Timing

    return Timing(median_ms=row["median_ms"], p10_ms=row["p10_ms"], p90_ms=row["p90_ms"], min_ms=row["p10_ms"],
                  spread=row["spread"], runs=row["runs"], foreign_cores=row["foreign_cores"],
                  disturbed=row["disturbed"], ci_rel=0.0)


def _cand_row(c: Candidate, by_name: dict[str, Any], best: Candidate) -> dict[str, Any]:
    m = by_name.get(c.name)
    return {"name": c.name, "predicted_ms": c.predicted_ms, "measured_ms": m["median_ms"] if m else None,
            "p10_ms": m["p10_ms"] if m else None, "p90_ms": m["p90_ms"] if m else None,
            "memory_bytes": c.executor.memory().total_bytes if c.executor else c.memory_bytes,
            "max_rel_error": c.executor.max_error if c.executor else None, "chosen": c is best, "note": c.note,
            "steps": len(c.executor.steps) if c.executor else None}


def _report_data(graph: Any, space: DesignSpace, info: SpaceInfo, cfg: TuneConfig, strategies: dict[str, Any],
                 exact: SearchResult, best: Candidate, result: dict[str, Any], db: Any) -> dict[str, Any]:
    from edgetune.device.cpu import describe, library_versions

    layers = []
    for i, node in enumerate(graph.nodes):
        opts = space.options[i]
        c = opts[best.choice[i]]
        layers.append({"node": node.name, "op": node.op, "chosen": c.key, "chosen_ms": c.time_ms,
                       "options": [{"key": o.key, "time_ms": o.time_ms, "library": o.meta.get("library", ""),
                                    "precision": o.precision} for o in opts]})
    try:
        # The front is computed over fp32 and fp16-weight options: memory only trades against latency when
        # some option stores weights more compactly.
        wide = space
        if "fp16w" not in cfg.precisions:
            wide, _ = build_space(graph, db, cfg.threads, (*cfg.precisions, "fp16w"))
        chosen_keys = [space.options[i][c].key for i, c in enumerate(best.choice)]
        pareto = [{"latency_ms": lat, "memory_bytes": mem,
                   "chosen": [wide.options[i][c].key for i, c in enumerate(choice)] == chosen_keys}
                  for lat, mem, choice in pareto_front(wide)]
    except Exception as e:  # noqa: BLE001 - the front is a figure, not the product
        pareto = []
        result.setdefault("notes", []).append(f"Pareto front not computed: {e}")
    notes = list(result.get("notes", []))
    shapes = ", ".join(f"{k}={'x'.join(map(str, v))}" for k, v in result["input_shapes"].items())
    notes.append(f"Tuned for input shape {shapes}; the plan is refused for any other shape.")
    if graph.upgraded_from is not None:
        notes.append(f"The model was upgraded from opset {graph.upgraded_from} to {graph.opset} at load "
                     f"(ONNX version converter).")
    if result["generic_nodes"]:
        ops = sorted(set(result["generic_nodes"].values()))
        notes.append(f"{len(result['generic_nodes'])} node(s) of ops edgetune has no kernel of its own for "
                     f"({', '.join(ops)}) run on a generic backend (ONNX Runtime); their ground truth is "
                     f"onnx.reference.")
    if info.fallbacks:
        notes.append(f"{len(info.fallbacks)} node(s) had no verified measured primitive and run on the reference "
                     f"kernel: {', '.join(info.fallbacks[:10])}")
    if info.unmeasured:
        notes.append(f"converters without measurements (priced as infeasible): {', '.join(info.unmeasured[:10])}")
    notes.insert(0, result["verdict"]["statement"])
    e = result["executor"]
    notes.append(f"The executor's own work (kernels stubbed out, measured): {e['per_step_us']:.2f} us per step, "
                 f"{e['per_inference_us']:.1f} us per inference over {e['steps']} steps"
                 + (f"; ONNX Runtime workers spin: {e['ort_spin']}." if "onnxruntime" in e["libraries"] else "."))
    comparison = []
    base = result["latency_ms"]["blas"]
    for r in result["comparison"]:
        name = "edgetune plan" if r["variant"] == best.name else r["variant"]
        if r["variant"] in {c["name"] for c in result["candidates"]} and r["variant"] != best.name:
            continue
        planned = r["memory"].get("total_bytes")
        mem = planned or r["memory"].get("weight_bytes")
        comparison.append({"variant": name, "median_ms": r["median_ms"], "p10_ms": r["p10_ms"],
                           "p90_ms": r["p90_ms"],
                           "memory_bytes": mem, "memory_kind": "planned total" if planned else "weights only",
                           "speedup_vs_blas": base / r["median_ms"],
                           "note": r["memory"].get("note", "")})
    return {
        "model": graph.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "objective": cfg.objective,
        "max_memory": cfg.max_memory, "device": describe(), "versions": library_versions(), "threads": cfg.threads,
        "method": {
            "timing": "Each (node, primitive, threads) was timed alone on realistic activations: warm-up, then "
                      "repeated runs until the 95% confidence interval of the median is within 5% or a time cap; "
                      "runs disturbed by other processes (from /proc/stat) are repeated and flagged.",
            "comparison": "End-to-end latencies are medians of alternating rounds (every variant once per round, order "
                          "rotated) in one process, batch 1, same thread count; memory is planned (weights + largest "
                          "workspace + activation arena from liveness) for edgetune plans, weights for ONNX Runtime.",
            "memory": "edgetune plans: planned bytes = weights as the kernels hold them + the scratch buffers of "
                      "all kernels + the activation arena peak from liveness analysis (bench/memory.py compares "
                      "this with resident memory measured in a fresh process). ONNX Runtime: its weights. The "
                      "Pareto front uses the search's memory model: weights + the largest kernel workspace, over "
                      "fp32 and fp16-weight options.",
            "search": f"Strategies optimise predicted latency = sum of node times + conversion costs + ONNX Runtime "
                      f"fusion gains + dispatch; the exact optimum is a MILP/DP over the same tables. Budget "
                      f"{cfg.budget} plan evaluations, seed {cfg.seed}.",
        },
        "space": {"nodes": len(space.nodes), "edges": len(space.edges), "log10_size": space.log10_size(),
                  "options_per_node": space.n_options, "fallbacks": info.fallbacks, "unmeasured": info.unmeasured},
        "layers": layers, "strategies": strategies, "optimum_ms": exact.meta.get("latency_ms", exact.best_cost),
        "pareto": pareto, "candidates": result["candidates"], "comparison": comparison,
        "verdict": result["verdict"], "executor": result["executor"],
        "profile": {**result["profile"], "db": str(db.path)}, "plan_path": result["plan"], "notes": notes,
    }


def default_out_dir(model: str) -> Path:
    return Path("runs") / f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"
