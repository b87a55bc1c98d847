"""The main job after profiling, in named steps: build the design space once, search it, pick and compile
candidate plans, measure them side by side with the peers, choose by measurement, save plan.json, and
hand back a `TuneResult` (summary.json) and the `ReportData` (report.html) for the caller to write.

Why re-measure: the search optimises a model of latency (sum of measured node, conversion and fusion
costs); the plan that runs fastest is decided on the real thing, side by side with the BLAS fp32
baseline and ONNX Runtime on the whole graph, in one alternating run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.device.cpu import describe, fingerprint, library_versions
from edgetune.device.placement import Placement
from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Graph
from edgetune.graph.reference import default_feeds
from edgetune.kernels.backends import generic_nodes
from edgetune.measure.compare import compare
from edgetune.measure.db import ProfileDB
from edgetune.measure.overhead import executor_overhead, step_times
from edgetune.measure.profiler import ProfileSummary
from edgetune.measure.timing import Timing
from edgetune.planning.candidates import Candidate, compile_candidates, pick_candidates, to_plan, whole_graph_choice
from edgetune.planning.closed_loop import MAX_ROUNDS, MeasuredPlan, agrees, fit_boundaries, write_fit
from edgetune.planning.design_space import SpaceInfo, measure_space
from edgetune.planning.node_precision import node_precision_planner
from edgetune.planning.on_demand import measure_proposed
from edgetune.planning.peer_accuracy import budget_peers, native_precisions, peer_accuracies
from edgetune.planning.placement import choose_placement, placed_plan
from edgetune.planning.precision import PrecisionData, PrecisionPoint, PrecisionSearch, search_precision
from edgetune.planning.report_data import (
    comparison_rows,
    layer_rows,
    method_text,
    pareto_points,
    report_notes,
    space_summary,
    timeline_rows,
)
from edgetune.planning.results import (
    Latencies,
    MemorySummary,
    ParetoPoint,
    ProfileCounts,
    ReportData,
    SearchSummary,
    Speedups,
    StrategyRun,
    TuneConfig,
    TuneResult,
)
from edgetune.planning.verdict import peer_verdict
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import batch_of, input_shapes, resolve_plan
from edgetune.search import DesignSpace, SearchResult, compared_strategies, comparison_budget, get_strategy
from edgetune.user_model import ModelSource

# The precision the Pareto front adds to the search's: memory only trades against latency when some
# option stores weights more compactly.
FRONT_PRECISION = "fp16w"
BLAS_BASELINE = "BLAS fp32 baseline"


@dataclass
class Spaces:
    """The design space, built once: the search's (its allowed precisions) and the Pareto front's
    (those and fp16 weights), with what the search's had to fall back on."""

    search: DesignSpace
    front: DesignSpace
    info: SpaceInfo


@dataclass
class Searches:
    """The exact optimum (always computed), the chosen strategy's result, and every strategy run."""

    exact: SearchResult
    chosen: SearchResult
    runs: dict[str, StrategyRun]


@dataclass
class SideBySide:
    """One alternating end-to-end run of the compiled candidates, the BLAS baseline and the peers, and the
    rows of candidates measured in the closed loop's other runs (`earlier`: not side by side with the peers)."""

    rows: list[dict[str, Any]]
    blas: Executor
    earlier: list[dict[str, Any]] = field(default_factory=list)

    def row(self, variant: str) -> dict[str, Any]:
        """The measured row of `variant` (every runnable candidate and the fixed peers have one)."""
        found = self.measured(variant)
        if found is None:
            raise KeyError(variant)
        return found

    def measured(self, variant: str) -> dict[str, Any] | None:
        """The measured row of `variant`, None when it was not measured (a refused candidate)."""
        return next((r for r in [*self.rows, *self.earlier] if r["variant"] == variant), None)


@dataclass
class Outcome:
    """What the side-by-side measurement decided: every candidate, the measurements, the chosen plan, how
    it stands against the peers, and the executor's own overhead on it."""

    cands: list[Candidate]
    side: SideBySide
    best: Candidate
    verdict: dict[str, Any]
    executor: dict[str, Any]
    loop: list[dict[str, Any]] = field(default_factory=list)  # the closed loop's rounds (closed_loop.py)
    precision: PrecisionSearch | None = None  # the precision search, where data was given (precision.py)
    peer_accuracy: dict[str, dict[str, Any]] = field(default_factory=dict)  # int8 peers on the same split
    placement: dict[str, Any] | None = None  # CPUs with core clusters: each placement measured (placement.py)


def tune(src: ModelSource, cfg: TuneConfig, out_dir: Path, db: ProfileDB, profile_summary: ProfileSummary,
         console: Any, data: PrecisionData | None = None) -> tuple[TuneResult, ReportData]:
    """profile (done by the caller: `profile_summary`) -> space -> search -> candidates -> side-by-side
    measurement -> plan.json; the result and the report's data go back to the caller, which writes
    report.html and summary.json (planning knows no report writer)."""
    graph = src.graph
    spaces = build_spaces(graph, db, cfg, console)
    searches = run_strategies(spaces.search, cfg, console)
    feeds = default_feeds(graph)
    picked = pick_candidates(graph, spaces.search, searches.exact, searches.chosen, cfg)
    cands = compile_candidates(graph, spaces.search, picked, feeds)
    outcome = measure_and_choose(src, cands, cfg, feeds, console, db)
    spaces, searches, outcome = close_the_loop(src, db, cfg, spaces, searches, outcome, feeds, console)
    if data is not None:
        outcome = choose_precision(src, cfg, spaces.search, outcome, data, feeds, console, db)
    outcome.placement, outcome.best.executor = choose_placement(
        graph, outcome.best.executor, feeds, fingerprint().get("clusters") or [], cfg.compare_time_cap_s / 2, console)
    outcome.executor["timeline"] = step_times(outcome.best.executor, feeds)  # once, for the plan chosen
    plan_path = save_plan(graph, spaces.search, outcome, cfg, out_dir, db)
    points, notes = pareto_points(spaces.search, spaces.front, outcome.best.choice)
    result = summarize(graph, cfg, db, profile_summary, spaces.search, searches, outcome, plan_path, notes)
    return result, report_for(graph, cfg, spaces, searches, outcome, points, result)


def build_spaces(graph: Graph, db: ProfileDB, cfg: TuneConfig, console: Any) -> Spaces:
    """Read the DB once for every precision this run needs (the search's, and fp16 weights for the
    Pareto front), then take the search's view: the front and the search stay over the same numbers."""
    console.print(f"building the design space ({len(graph.nodes)} nodes, threads {cfg.threads}, "
                  f"precisions {', '.join(cfg.precisions)})...")
    allowed = set(cfg.precisions)
    measured = measure_space(graph, db, cfg.threads, allowed | {FRONT_PRECISION})
    space, info = measured.view(allowed)
    # The front is over per-node options only: a segment measured whole has no measured memory of its own
    # yet, and its all-or-nothing groups make the front's MILP solves minutes instead of seconds.
    front = measured.view(allowed | {FRONT_PRECISION}, segments=False)[0]
    return Spaces(search=space, front=front, info=info)


def run_strategies(space: DesignSpace, cfg: TuneConfig, console: Any) -> Searches:
    """The exact optimum (always: it says how far the strategy got), the chosen strategy, and unless the
    run is quick the registry's compared strategies at their comparison budgets, all on the same costs."""
    console.print(f"design space: 10^{space.log10_size():.1f} plans; searching ({cfg.strategy}, budget {cfg.budget}"
                  f", objective {cfg.objective}) and computing the exact optimum...")

    def one(name: str, budget: int) -> tuple[SearchResult, float]:
        t0 = time.perf_counter()
        res = get_strategy(name).search(space, budget, cfg.seed, cfg.objective, cfg.max_memory)
        return res, time.perf_counter() - t0

    exact, exact_s = one("exact", 1)
    chosen, chosen_s = one(cfg.strategy, cfg.budget) if cfg.strategy != "exact" else (exact, exact_s)
    runs: dict[str, tuple[SearchResult, float]] = {"exact": (exact, exact_s), cfg.strategy: (chosen, chosen_s)}
    if cfg.compare_all_strategies:
        for name in compared_strategies():
            if name not in runs:
                runs[name] = one(name, comparison_budget(name, cfg.budget))
    return Searches(exact=exact, chosen=chosen, runs={name: _strategy_run(r, s) for name, (r, s) in runs.items()})


def measure_side_by_side(src: ModelSource, cands: list[Candidate], cfg: TuneConfig, console: Any,
                         calibration: list[dict[str, np.ndarray]] | None = None,
                         db: ProfileDB | None = None) -> SideBySide:
    """Every compiled candidate, the BLAS fp32 baseline and the whole-graph peers in one alternating run at
    the run's largest thread count: load and frequency changes hit them all alike. The peers' fresh-process
    memory is kept in `db` (a warm tune reads it instead of starting a process per peer again)."""
    runnable = [c for c in cands if c.executor is not None]
    threads = max(cfg.threads)
    blas = Executor(src.graph, resolve_plan("blas", src.graph, threads), check=False, measure_memory=True)
    variants: dict[str, Any] = {c.name: c.executor for c in runnable}
    variants[BLAS_BASELINE] = blas
    console.print(f"measuring {len(runnable)} candidate plans end to end, side by side with the BLAS baseline and "
                  "ONNX Runtime...")
    rows = compare(src, variants, threads=threads, time_cap=cfg.compare_time_cap_s, console=console,
                   int8=calibration is not None, calibration=calibration, db=db)
    return SideBySide(rows=rows, blas=blas)


def measure_and_choose(src: ModelSource, cands: list[Candidate], cfg: TuneConfig, feeds: dict[str, np.ndarray],
                       console: Any, db: ProfileDB | None = None) -> Outcome:
    """Measure side by side, choose by the measurement, judge it against the peers (printed), and measure
    what the executor itself costs on the chosen plan."""
    side = measure_side_by_side(src, cands, cfg, console, db=db)
    best = choose_by_measurement(cands, side, cfg.objective)
    verdict = peer_verdict(best, side.row(best.name), side.rows)
    console.print(verdict["statement"])
    return Outcome(cands=cands, side=side, best=best, verdict=verdict, executor=executor_summary(best, feeds))


def close_the_loop(src: ModelSource, db: ProfileDB, cfg: TuneConfig, spaces: Spaces, searches: Searches,
                   outcome: Outcome, feeds: dict[str, np.ndarray], console: Any) -> tuple[Spaces, Searches, Outcome]:
    """Until the chosen plan's prediction agrees with its measurement (planning/closed_loop.py) and every run
    the measured plans merged is measured whole (planning/on_demand.py): fit the boundary costs to every plan
    measured so far, write them to the DB, search again, measure the plans the search now prefers beside the
    current best, and take the faster. A changed choice is measured once more
    side by side with the peers, so that the verdict compares one run."""
    first_best = outcome.best
    for round_no in range(1, MAX_ROUNDS + 1):
        best_ms = outcome.side.row(outcome.best.name)["median_ms"]
        entry: dict[str, Any] = {"round": round_no, "chosen": outcome.best.name,
                                 "predicted_ms": outcome.best.predicted_ms, "measured_ms": best_ms}
        outcome.loop.append(entry)
        entry["proposed_segments"] = measure_proposed(src.graph, db, spaces.search, outcome.cands, cfg.threads,
                                                      cfg.profile_time_cap_s, console)
        if agrees(outcome.best.predicted_ms, best_ms) and not entry["proposed_segments"]:
            entry["stop"] = "the chosen plan's prediction agrees with its measurement"
            break
        plans = _measured_plans(outcome)
        entry["plans"] = [{"name": p.name, "predicted_ms": p.predicted_ms, "measured_ms": p.measured_ms} for p in plans]
        fit = fit_boundaries(spaces.search, db, plans)
        write_fit(db, fit)
        entry["fit"] = fit.to_dict()
        console.print(f"closing the loop, round {round_no}: chosen plan predicted {outcome.best.predicted_ms:.2f} ms, "
                      f"measured {best_ms:.2f} ms; boundary costs fitted to {fit.plans} measured plans (RMS error "
                      f"{fit.residual_before_ms:.2f} -> {fit.residual_after_ms:.2f} ms), searching again...")
        refit = build_spaces(src.graph, db, cfg, _Quiet())
        if not _extends_options(spaces.search, refit.search):
            entry["stop"] = "the design space changed under the refit (options differ): stopped"
            break
        spaces = refit
        for c in outcome.cands:
            c.predicted_ms = spaces.search.cost_model.predict(c.choice)
        again = run_strategies(spaces.search, replace(cfg, compare_all_strategies=False), _Quiet())
        # the compared strategies keep their runs on the first model (the report compares them on one model)
        searches = Searches(exact=again.exact, chosen=again.chosen, runs={**searches.runs, **again.runs})
        new = _new_candidates(src.graph, spaces.search, searches, cfg, outcome, round_no)
        entry["new_candidates"] = [c.name for c in new]
        if not new:
            entry["stop"] = "the refitted search proposes no plan that was not measured"
            break
        _measure_round(src, cfg, spaces, outcome, new, feeds, console)
    if outcome.best is not first_best:
        console.print(f"the loop changed the chosen plan to {outcome.best.name!r}: measuring it side by side with "
                      "the peers...")
        outcome = _confirm(src, cfg, outcome, feeds, console, db)
    return spaces, searches, outcome


def _measured_plans(outcome: Outcome) -> list[MeasuredPlan]:
    """Every candidate with an end-to-end measurement, as the fit reads it."""
    out = []
    for c in outcome.cands:
        row = outcome.side.measured(c.name) if c.executor is not None else None
        if row is not None and c.ort_spin == "auto":  # a spin variant repeats its plan's choice
            out.append(MeasuredPlan(c.name, list(c.choice), c.predicted_ms, row["median_ms"]))
    return out


def _extends_options(a: DesignSpace, b: DesignSpace) -> bool:
    """Whether `b` offers every option of `a` at the same index per node (segments measured on demand come
    after the others), so that the choices of plans measured in `a` mean the same plans in `b`."""
    return len(a.options) == len(b.options) and all(
        [o.key for o in old] == [o.key for o in new[:len(old)]] for old, new in zip(a.options, b.options, strict=True))


def _new_candidates(graph: Graph, space: DesignSpace, searches: Searches, cfg: TuneConfig, outcome: Outcome,
                    round_no: int) -> list[Candidate]:
    """The refitted search's candidates that were not measured yet, named by the round that found them."""
    seen = {tuple(c.choice) for c in outcome.cands}
    picked = pick_candidates(graph, space, searches.exact, searches.chosen, cfg)
    fresh = [c for c in picked if tuple(c.choice) not in seen]
    for c in fresh:
        c.name = f"{c.name}, loop round {round_no}"
    return fresh


def _measure_round(src: ModelSource, cfg: TuneConfig, spaces: Spaces, outcome: Outcome, new: list[Candidate],
                   feeds: dict[str, np.ndarray], console: Any) -> None:
    """Compile the new candidates and time them beside the current best (no peers); the faster becomes the
    best. The best keeps its first row (side by side with the peers) unless it lost."""
    try:
        new = compile_candidates(src.graph, spaces.search, new, feeds)
    except EdgetuneError as e:
        outcome.loop[-1]["stop"] = f"no new candidate compiled: {e}"
        return
    outcome.cands.extend(new)
    variants = {c.name: c.executor for c in new if c.executor is not None}
    again = f"{outcome.best.name} (again)"
    variants[again] = outcome.best.executor
    rows = compare(src, variants, threads=max(cfg.threads), time_cap=cfg.compare_time_cap_s, console=console,
                   int8=False, peers=False)
    by_name = {r["variant"]: r for r in rows}
    outcome.side.earlier.extend(r for r in rows if r["variant"] != again)
    winner = min(by_name, key=lambda n: by_name[n]["median_ms"])
    if winner != again:
        outcome.best = next(c for c in new if c.name == winner)


def _confirm(src: ModelSource, cfg: TuneConfig, outcome: Outcome, feeds: dict[str, np.ndarray],
             console: Any, db: ProfileDB | None = None) -> Outcome:
    """The loop's choice measured once more side by side with the BLAS baseline and the peers; the other
    candidates keep their rows from the runs that measured them."""
    best = outcome.best
    side = measure_side_by_side(src, [best], cfg, console, db=db)
    side.earlier = _earlier_plan_rows(outcome.side, best.name)
    verdict = peer_verdict(best, side.row(best.name), side.rows)
    console.print(verdict["statement"])
    return Outcome(cands=outcome.cands, side=side, best=best, verdict=verdict,
                   executor=executor_summary(best, feeds), loop=outcome.loop)


def choose_precision(src: ModelSource, cfg: TuneConfig, space: DesignSpace, outcome: Outcome, data: PrecisionData,
                     feeds: dict[str, np.ndarray], console: Any, db: ProfileDB | None = None) -> Outcome:
    """The precision search (planning/precision.py) from the fp32 plan the loop chose; every configuration
    that met the budget is measured end to end beside that plan, the BLAS baseline and the peers (the int8
    peers calibrated on the same calibration split, their accuracy measured on the same evaluation split);
    the fastest measured plan within the budget is chosen, fp32 when no lower precision pays."""
    threads = max(cfg.threads)
    fp32 = outcome.best
    planner = node_precision_planner(src.graph, db, cfg.threads, cfg.objective) if db is not None else None
    search = search_precision(src.graph, data, threads, console, fp32.executor.run, native_precisions(),
                              planner.plans() if planner else [], planner.plan if planner else None)
    fp32.accuracy = {"metric": search.reference.metric, "value": search.reference.value, "drop": 0.0,
                     "meets_budget": True}
    cands = [_precision_candidate(src.graph, space, p, fp32) for p in _fastest_passing(search)]
    console.print(f"precision search: {len(search.points)} configurations, {search.evaluations} full evaluations, "
                  f"{len(search.passing())} within the budget; measuring {len(cands)} of them end to end...")
    side = measure_side_by_side(src, [fp32, *cands], cfg, console, calibration=data.calibration, db=db)
    side.earlier = _earlier_plan_rows(outcome.side, fp32.name)
    best = min([fp32, *cands], key=lambda c: side.row(c.name)["median_ms"])
    peers = peer_accuracies(src, data, search, threads)
    verdict = peer_verdict(best, side.row(best.name), side.rows, budget_peers(peers, data.budget))
    console.print(verdict["statement"])
    return Outcome(cands=[*outcome.cands, *cands], side=side, best=best, verdict=verdict,
                   executor=executor_summary(best, feeds), loop=outcome.loop, precision=search, peer_accuracy=peers)


def _earlier_plan_rows(side: SideBySide, remeasured: str) -> list[dict[str, Any]]:
    """The plan rows of an earlier side-by-side run that a new run does not measure again (neither the plan
    `remeasured` nor the BLAS baseline): they keep the numbers of the run that measured them."""
    return [r for r in [*side.rows, *side.earlier]
            if r["kind"] == "plan" and r["variant"] not in (remeasured, BLAS_BASELINE)]


def _chosen_point(outcome: Outcome) -> PrecisionPoint | None:
    """The precision configuration the loop chose, None when it chose an fp32 plan (or ran no search)."""
    search = outcome.precision
    return next((p for p in search.points if p.plan is outcome.best.plan), None) if search else None


def _fastest_passing(search: PrecisionSearch, per_library: int = 2) -> list[PrecisionPoint]:
    """The configurations worth measuring end to end: within the budget, the fastest few per backend by
    their quick timing."""
    out = []
    for lib in dict.fromkeys(p.library for p in search.points):
        ok = sorted((p for p in search.passing() if p.library == lib), key=lambda p: p.quick_ms)
        out += ok[:per_library]
    return out


def _precision_candidate(graph: Graph, space: DesignSpace, point: PrecisionPoint, fp32: Candidate) -> Candidate:
    """A precision configuration as a candidate plan: its own plan, its whole-graph fp32 option's indices
    for the per-layer table (the fp32 plan's where that segment was not measured), its quick time as the
    prediction (it is measured whole), compiled and checked only by its measured accuracy."""
    choice = whole_graph_choice(space, point.library, point.threads) or list(fp32.choice)
    ex = Executor(graph, point.plan, check=False, measure_memory=True)
    acc = {"metric": point.evaluation.metric, "value": point.evaluation.value, "drop": point.drop,
           "meets_budget": point.meets_budget}
    return Candidate(point.name, choice, point.quick_ms, ex.memory().total_bytes, executor=ex, plan=point.plan,
                     note="precision configuration, within the accuracy budget", accuracy=acc)


class _Quiet:
    """A console that prints nothing: the loop's rebuilt spaces and searches repeat what was said."""

    def print(self, *args: Any, **kwargs: Any) -> None:
        return None


def choose_by_measurement(cands: list[Candidate], side: SideBySide, objective: str) -> Candidate:
    """The fastest measured candidate (for the memory objective: the smallest planned memory, then the
    fastest), whatever the cost model predicted."""
    runnable = [c for c in cands if c.executor is not None]
    if objective == "memory":
        return min(runnable, key=lambda c: (c.executor.memory().total_bytes, side.row(c.name)["median_ms"]))
    return min(runnable, key=lambda c: side.row(c.name)["median_ms"])


def executor_summary(best: Candidate, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    """The executor's own work per inference of the chosen plan (kernels stubbed out, measured), with the
    ORT spin mode and libraries it runs: what the plan pays beyond its kernels."""
    overhead = executor_overhead(best.executor, feeds)
    return {**overhead, "ort_spin": best.executor.ort_spin, "libraries": sorted(best.executor.libraries)}


def save_plan(graph: Graph, space: DesignSpace, outcome: Outcome, cfg: TuneConfig, out_dir: Path,
              db: ProfileDB) -> Path:
    """Write plan.json (with how it was found and what it measured) and record its measurement and
    planned memory in the DB, so the plan's figures outlive the run folder; returns the plan's path."""
    best, best_row = outcome.best, outcome.side.row(outcome.best.name)
    plan = best.plan or to_plan(graph, space, best.choice, {})
    plan.meta.update({
        "strategy": cfg.strategy, "objective": cfg.objective, "chosen_candidate": best.name,
        "predicted_ms": best.predicted_ms, "measured_ms": best_row["median_ms"], "threads": cfg.threads,
        "precisions": list(cfg.precisions), "budget": cfg.budget,
    })
    plan.ort_spin = best.executor.ort_spin
    if best.executor.plan.placement is not None:
        where = best.executor.plan.placement
        plan = placed_plan(plan, Placement(where["label"], tuple(where["cpus"])))
        plan.meta["placement"] = outcome.placement
    if best.accuracy is not None and outcome.precision is not None:
        plan.meta["accuracy"] = {**best.accuracy, "budget_points": outcome.precision.budget,
                                 "data": outcome.precision.data}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = plan.save(out_dir / "plan.json")
    db.put_plan(plan.graph_signature, plan.hash(), _timing_of(best_row),
                json.dumps({"memory": best.executor.memory().to_dict(), "model": graph.name}))
    return path


def summarize(graph: Graph, cfg: TuneConfig, db: ProfileDB, profile_summary: ProfileSummary, space: DesignSpace,
              searches: Searches, outcome: Outcome, plan_path: Path, notes: list[str]) -> TuneResult:
    """The run's outcome as summary.json holds it: measured latencies, speed-ups and planned memory of the
    plan against the BLAS baseline and ONNX Runtime, the search, the profile, every candidate."""
    best, side = outcome.best, outcome.side
    best_row, blas_row, ort_row = side.row(best.name), side.row(BLAS_BASELINE), side.row("onnxruntime fp32")
    plan_mem, blas_mem = best.executor.memory().to_dict(), side.blas.memory().to_dict()
    return TuneResult(
        model=graph.name, plan=str(plan_path), out_dir=str(plan_path.parent), db=str(db.path),
        input_shapes=input_shapes(graph), upgraded_from_opset=graph.upgraded_from,
        generic_nodes={n.name: n.op for n in generic_nodes(graph)},
        latency_ms=Latencies(plan=best_row["median_ms"], blas=blas_row["median_ms"],
                             onnxruntime=ort_row["median_ms"]),
        speedup=Speedups(vs_blas=blas_row["median_ms"] / best_row["median_ms"],
                         vs_onnxruntime=ort_row["median_ms"] / best_row["median_ms"]),
        memory_bytes=MemorySummary(plan=plan_mem["total_bytes"], blas=blas_mem["total_bytes"],
                                   onnxruntime_weights=ort_row["memory"].get("weight_bytes"),
                                   plan_detail=plan_mem, blas_detail=blas_mem),
        search=SearchSummary(strategy=cfg.strategy, evaluations=searches.chosen.evaluations,
                             predicted_ms=_latency(searches.chosen), optimum_ms=_latency(searches.exact),
                             design_space_log10=space.log10_size(), chosen_candidate=best.name),
        profile=ProfileCounts(new_measurements=profile_summary.new_measurements, cached=profile_summary.cached,
                              seconds=profile_summary.seconds, excluded=len(profile_summary.excluded)),
        candidates=[c.row(side.measured(c.name), c is best) for c in outcome.cands],
        comparison=side.rows, verdict=outcome.verdict, executor=outcome.executor, notes=notes, device=describe(),
        report=None, batch=batch_of(graph), loop=outcome.loop, precision=precision_summary(graph, outcome),
        placement=outcome.placement)


def report_for(graph: Graph, cfg: TuneConfig, spaces: Spaces, searches: Searches, outcome: Outcome,
               pareto: list[ParetoPoint], result: TuneResult) -> ReportData:
    """What report.html shows: the result with the per-layer options, every strategy's search, the
    Pareto front, the comparison as the report names it, the notes and how the numbers were obtained."""
    return ReportData(
        model=graph.name, created=time.strftime("%Y-%m-%dT%H:%M:%S"), objective=cfg.objective,
        max_memory=cfg.max_memory, device=result.device, versions=library_versions(), threads=cfg.threads,
        method=method_text(cfg), space=space_summary(spaces.search, spaces.info),
        layers=layer_rows(graph, spaces.search, outcome.best.choice), strategies=searches.runs,
        optimum_ms=_latency(searches.exact), pareto=pareto, candidates=result.candidates,
        comparison=comparison_rows(result, outcome.best.name), verdict=result.verdict, executor=result.executor,
        profile=result.profile, profile_db=result.db, plan_path=result.plan,
        notes=report_notes(graph, spaces.info, result), loop=result.loop,
        precision=_with_nodes(graph, outcome, result.precision),
        timeline=timeline_rows(graph, spaces.search, outcome.best, outcome.executor.get("timeline", [])))


def precision_summary(graph: Graph, outcome: Outcome) -> dict[str, Any] | None:
    """The precision search as summary.json holds it: its configurations, full evaluations, the peers'
    accuracy on the same split, and what the chosen plan computes in with its measured accuracy."""
    search = outcome.precision
    if search is None:
        return None
    chosen = _chosen_point(outcome)
    return {**search.to_dict(), "peers": outcome.peer_accuracy, "chosen": chosen.to_dict() if chosen else None,
            "chosen_accuracy": outcome.best.accuracy}


def _with_nodes(graph: Graph, outcome: Outcome, summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """The report's precision section: the summary and, per node, the precision chosen and why."""
    if summary is None or outcome.precision is None:
        return summary
    return {**summary, "nodes": outcome.precision.why(_chosen_point(outcome), graph)}


def _latency(r: SearchResult) -> float:
    """A search result's predicted latency (its cost is bytes under the memory objective)."""
    return r.meta.get("latency_ms", r.best_cost)


def _strategy_run(r: SearchResult, seconds: float) -> StrategyRun:
    return StrategyRun(best_ms=_latency(r), best_cost=r.best_cost, evaluations=r.evaluations, seconds=seconds,
                       trace=[list(p) for p in r.trace], memory_bytes=r.meta.get("memory_bytes"),
                       hyperparameters={k: v for k, v in r.meta.items() if k not in ("latency_ms", "memory_bytes")})


def _timing_of(row: dict[str, Any]) -> Timing:
    """A side-by-side row as the DB's Timing (the row carries no minimum: p10 stands in)."""
    return Timing(median_ms=row["median_ms"], p10_ms=row["p10_ms"], p90_ms=row["p90_ms"], min_ms=row["p10_ms"],
                  spread=row["spread"], runs=row["runs"], foreign_cores=row["foreign_cores"],
                  disturbed=row["disturbed"], ci_rel=0.0)
