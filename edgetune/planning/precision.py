"""Precision per node under an accuracy budget, measured on real data (issue 12's search).

Why this shape: int8 pays or not per CPU and per backend (ONNX Runtime's int8 is ~1.6x faster than fp32 on
one CPU and ~3x slower on another; OpenVINO's differs again), and the accuracy it costs is a property of the
whole network on real data, not of a node alone. So:

1. the float model is calibrated once on the calibration split (edgetune.quant: per-tensor range choice);
2. every quantisable node is ranked by a cheap proxy: the logits' SQNR when only that node is int8, on a
   small ranking subset of the calibration split (as NNCF ranks), no full evaluation;
3. on each backend that runs QDQ models (ONNX Runtime, OpenVINO), the whole graph with every quantisable
   node int8 is compiled, timed and evaluated on the evaluation split; where it misses the budget, the k most
   sensitive nodes are kept fp32 (after bias correction, then cross-layer equalisation, each kept where it
   scores better), k found by bisection (a full evaluation per probe: about log2 of the number
   of nodes), first on the backend whose int8 model is fastest, then checked at that k on the others;
4. bf16 (and f16) float parts where OpenVINO computes them natively on this CPU, evaluated like int8: the
   whole float model, and the fastest int8 configuration within the budget with its float part so;
5. per backend, from its fastest int8 configuration within the budget, the classes of layers whose int8
   form measures slower (whole model timed both ways, so the Q/DQ boundaries count) go back to float
   (precision_mix.py), and the result is evaluated like the others;
6. plans with per-node precisions from the measured design space (node_precision.py: bf16 primitives and
   int8 on uint8 edges where the optimum takes them), evaluated like the others; a per-node int8 plan over
   the budget is bisected like step 3: its most sensitive int8 nodes held fp32 and the optimum made again;
7. every configuration that meets the budget goes to the end-to-end measurement beside the fp32 plan and
   the peers; the loop keeps the fastest measured one. A configuration that misses the budget is never a
   candidate: the budget is checked on the measured accuracy, never on the proxy.

Calibration and evaluation samples are disjoint (edgetune.data's split); every full evaluation is counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgetune.data.accuracy import Evaluation, accuracy_drop, evaluate
from edgetune.graph.ir import Graph
from edgetune.graph.onnx_export import to_onnx
from edgetune.kernels import registry
from edgetune.kernels.segments import fusable_primitive
from edgetune.measure.timing import time_callable
from edgetune.planning.node_precision import PerNodePlan
from edgetune.planning.precision_mix import Reverted, revert_slow_classes
from edgetune.quant import QuantSpec, bias_corrections, calibrate, equalize, node_sensitivity, quantisable_nodes
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import NodeChoice, Plan, PlanSegment

PER_NODE = "per-node"  # the "library" of configurations whose nodes run on primitives of several libraries
QDQ_LIBRARIES = ("onnxruntime", "openvino")  # backends that compile a QDQ model into int8 kernels
RANKING_SAMPLES = 16  # calibration samples the sensitivity proxy runs on
EQUALIZE_ITERATIONS = 20  # cross-layer equalisation sweeps (chains of convs converge over sweeps)
QUICK_TIME_S = 1.0  # per configuration, to order the backends (the choice is made end to end)
PER_NODE_PROBES = 4  # full evaluations at most for the bisection of a per-node int8 plan (issue: <= 20 in all)
Feeds = list[dict[str, np.ndarray]]
Replan = Callable[[str, frozenset[str]], "PerNodePlan | None"]


@dataclass
class PrecisionData:
    """The labelled (or unlabelled) data a precision search runs on, already preprocessed into feeds."""

    calibration: Feeds
    evaluation: Feeds
    labels: np.ndarray | None  # of the evaluation feeds; None: fidelity to the fp32 model
    budget: float  # points of the metric the plan may lose
    description: str  # what the data is and how it was split


@dataclass
class PrecisionPoint:
    """One configuration evaluated on the evaluation split: where it runs, which nodes are int8, at which
    float precision the rest runs, its accuracy and drop, and its quick latency."""

    name: str
    library: str
    threads: int
    float_precision: str
    int8: tuple[str, ...]
    kept_fp32: int  # quantisable nodes kept fp32 (the k most sensitive)
    evaluation: Evaluation
    drop: float
    quick_ms: float
    meets_budget: bool
    plan: Plan = field(repr=False)
    reverted: tuple[Reverted, ...] = ()  # classes of layers given back to float because int8 was slower

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "library": self.library, "threads": self.threads,
                "float_precision": self.float_precision, "int8_nodes": len(self.int8), "kept_fp32": self.kept_fp32,
                "accuracy": self.evaluation.value, "metric": self.evaluation.metric, "drop": self.drop,
                "quick_ms": self.quick_ms, "meets_budget": self.meets_budget,
                "float_by_speed": [r.describe() for r in self.reverted]}


@dataclass
class PrecisionSearch:
    """What the precision search did: the fp32 reference, the calibration, the ranking, every evaluated
    configuration, the number of full evaluations, and why each node got its precision."""

    reference: Evaluation
    spec: QuantSpec
    order: list[str]  # quantisable nodes, most sensitive first
    sqnr_alone_db: dict[str, float]
    points: list[PrecisionPoint]
    evaluations: int
    data: str
    budget: float
    notes: list[str]
    seconds: float
    reference_logits: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def passing(self) -> list[PrecisionPoint]:
        return [p for p in self.points if p.meets_budget]

    def why(self, point: PrecisionPoint | None, graph: Graph) -> dict[str, str]:
        """Per node of `graph`, the precision `point` gives it and why (fp32 plan: point None)."""
        if point is not None and point.library == PER_NODE:
            return {n.name: f"{_precision_of(point.plan, n.name)}: per-node choice of the measured design space's "
                            "exact optimum with bf16 allowed" for n in graph.nodes}
        rank = {n: i for i, n in enumerate(self.order)}
        int8 = set(point.int8) if point else set()
        by_speed = {n: r for r in (point.reverted if point else ()) for n in r.nodes}
        fp = point.float_precision if point else "fp32"
        out = {}
        for n in graph.nodes:
            if n.name not in rank:
                out[n.name] = f"{fp}: no int8 form"
            elif point is None:
                out[n.name] = "fp32: the fastest measured plan within the budget is fp32"
            elif n.name in int8:
                out[n.name] = (f"int8 (sensitivity rank {rank[n.name] + 1} of {len(self.order)}, logits SQNR "
                               f"{self.sqnr_alone_db[n.name]:.1f} dB when alone int8)")
            elif n.name in by_speed:
                out[n.name] = f"{fp}: int8 measured slower for its class ({by_speed[n.name].describe()})"
            else:
                out[n.name] = (f"{fp}: among the {point.kept_fp32} most sensitive (rank {rank[n.name] + 1}, SQNR "
                               f"{self.sqnr_alone_db[n.name]:.1f} dB alone int8); fewer kept float missed the budget")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference.describe(), "metric": self.reference.metric,
                "reference_value": self.reference.value, "budget_points": self.budget,
                "full_evaluations": self.evaluations, "data": self.data, "notes": self.notes,
                "calibration_methods": self.spec.methods(), "seconds": self.seconds,
                "points": [p.to_dict() for p in self.points]}


def _precision_of(plan: Plan, node: str) -> str:
    """The precision of the primitive `plan` runs `node` on."""
    try:
        return registry.get(plan.choices[node].primitive).precision
    except KeyError:
        return "fp32"


def whole_graph_plan(graph: Graph, library: str, threads: int, int8: Sequence[str], float_precision: str,
                     spec: QuantSpec | None) -> Plan:
    """The whole graph as one segment of `library`: the nodes in `int8` quantised as `spec` says, the rest
    at `float_precision`."""
    choices = {n.name: NodeChoice(fusable_primitive(n, library), threads) for n in graph.nodes}
    seg = PlanSegment(library, threads, [n.name for n in graph.nodes], float_precision, list(int8))
    plan = Plan.for_graph(graph, choices, segments=[seg], meta={"precision_search": True})
    if int8:
        plan.quantization = spec.to_dict() if spec else None
    plan.tolerance = 1.0  # checked by the accuracy budget on real data, not by the reference's stand-in input
    return plan


def evaluation_logits(run: Callable[[dict[str, np.ndarray]], Any], feeds: Feeds) -> np.ndarray:
    """(samples, classes) logits of `run` (one feed -> one output array) over the evaluation feeds."""
    return np.concatenate([np.asarray(run(f)).reshape(1, -1) for f in feeds])


class _Evaluator:
    """Runs plans over the evaluation split and counts each full evaluation; holds the float model as ONNX
    (`to_onnx(graph)`, built once: calibration, bias correction and equalisation all read it)."""

    def __init__(self, graph: Graph, data: PrecisionData, reference_logits: np.ndarray) -> None:
        self.graph, self.data, self.reference_logits = graph, data, reference_logits
        self.model = to_onnx(graph)
        self.count = 1  # the fp32 reference was the first

    def logits(self, run: Callable[[dict[str, np.ndarray]], Any]) -> np.ndarray:
        out = self.graph.outputs[0]
        return evaluation_logits(lambda f: run(f)[out], self.data.evaluation)

    def evaluate(self, ex: Executor) -> Evaluation:
        self.count += 1
        return evaluate(self.logits(ex.run), self.data.labels, self.reference_logits)


def search_precision(graph: Graph, data: PrecisionData, threads: int, console: Any,
                     fp32_run: Callable[[dict[str, np.ndarray]], Any], precisions_native: Sequence[str] = (),
                     per_node: Sequence[PerNodePlan] = (),
                     replan: Replan | None = None) -> PrecisionSearch:
    """Steps 1-6 of the module's docstring; `fp32_run` runs the float model (the reference); `per_node`:
    plans of the design space with per-node precisions (planning/node_precision.py), evaluated too; `replan`
    (precision, nodes held fp32) -> such a plan again, for the bisection of a per-node int8 plan over budget."""
    t0 = time.perf_counter()
    ev = _Evaluator(graph, data, np.zeros(0))
    model = ev.model
    ref_logits = ev.logits(fp32_run)
    ev.reference_logits = ref_logits
    reference = evaluate(ref_logits, data.labels, ref_logits)
    console.print(f"precision search: fp32 {reference.describe()}; budget {data.budget:g} points; calibrating on "
                  f"{len(data.calibration)} samples...")
    spec = calibrate(model, data.calibration, threads=threads)
    quantisable = quantisable_nodes(model)
    sens = node_sensitivity(model, spec, data.calibration[:RANKING_SAMPLES], quantisable, modes=("only",),
                            threads=threads)
    order = sens.most_sensitive("only")
    sqnr = {s.node: float(s.only_sqnr_db) for s in sens.nodes}
    search = PrecisionSearch(reference, spec, order, sqnr, [], 0, data.description, data.budget, [], 0.0,
                             ref_logits)
    installed = {lib.name for lib in registry.installed_libraries()}
    libs = [lib for lib in QDQ_LIBRARIES if lib in installed]
    _search_int8(graph, search, ev, libs, threads, console)
    _search_native_float(graph, search, ev, libs, threads, precisions_native, console)
    _mix_by_speed(graph, search, ev, threads, console)
    for name, plan, _predicted in per_node:
        point = _try_per_node(search, ev, name, plan, console)
        if point is not None and not point.meets_budget and "int8" in plan.precisions and replan is not None:
            _bisect_per_node(search, ev, plan, replan, console)
    search.evaluations = ev.count
    search.seconds = time.perf_counter() - t0
    return search


def _search_int8(graph: Graph, search: PrecisionSearch, ev: _Evaluator, libs: list[str], threads: int,
                 console: Any) -> None:
    """All-int8 on every backend; where the fastest misses the budget, bisect k (most sensitive kept fp32)
    there, then check the other backends at that k (one step further where they miss)."""
    order = search.order
    first = [_try(graph, search, ev, lib, threads, order, "fp32", 0, console) for lib in libs]
    first = [p for p in first if p is not None]
    if not first:
        search.notes.append("no backend compiled the int8 model")
        return
    if any(p.meets_budget for p in first):
        return
    lead = min(first, key=lambda p: p.quick_ms)
    corrected = _try_bias_correction(graph, search, ev, lead, threads, console)
    if corrected is not None and corrected.meets_budget:
        return
    equalized = _try_equalization(graph, search, ev, corrected or lead, threads, console)
    if equalized is not None and equalized.meets_budget:
        return
    k = _bisect(graph, search, ev, lead.library, threads, console)
    if k is None:
        search.notes.append(f"no int8 configuration on {lead.library} met the budget: the plan stays fp32")
        return
    for other in (p.library for p in first if p.library != lead.library):
        for kk in (k, min(len(order), k + max(1, len(order) // 16))):
            p = _try(graph, search, ev, other, threads, order[kk:], "fp32", kk, console)
            if p is None or p.meets_budget:
                break


def _search_native_float(graph: Graph, search: PrecisionSearch, ev: _Evaluator, libs: list[str], threads: int,
                         precisions: Sequence[str], console: Any) -> None:
    """bf16/f16 where OpenVINO computes them natively here: the whole float model, and the fastest int8
    configuration within the budget with its float part at that precision (on AMX the int8 kernels and the
    bf16 ones are the two fast paths: the mix is what OpenVINO's own default runs)."""
    if "openvino" not in libs:
        return
    for precision in (p for p in precisions if p != "fp32"):
        _try(graph, search, ev, "openvino", threads, (), precision, 0, console)
        best = _fastest_int8(search, "openvino", "fp32")
        if best is not None:
            _try(graph, search, ev, "openvino", threads, best.int8, precision, best.kept_fp32, console)


def _fastest_int8(search: PrecisionSearch, lib: str, float_precision: str | None = None) -> PrecisionPoint | None:
    """The fastest (quick timing) configuration of `lib` within the budget that has int8 nodes."""
    pts = [p for p in search.passing() if p.library == lib and p.int8 and not p.reverted
           and (float_precision is None or p.float_precision == float_precision)]
    return min(pts, key=lambda p: p.quick_ms, default=None)


def _mix_by_speed(graph: Graph, search: PrecisionSearch, ev: _Evaluator, threads: int, console: Any) -> None:
    """Per backend, from its fastest int8 configuration within the budget: the classes of layers whose
    int8 form measured slower go back to float (precision_mix.py), and the result is evaluated."""
    for lib in dict.fromkeys(p.library for p in search.passing()):
        base = _fastest_int8(search, lib)
        if base is None:
            continue

        def build(nodes: Sequence[str], base: PrecisionPoint = base) -> Callable[[], object]:
            plan = whole_graph_plan(graph, base.library, threads, nodes, base.float_precision, search.spec)
            ex, feeds = Executor(graph, plan, check=False), ev.data.evaluation[0]
            return lambda: ex.run(feeds)

        console.print(f"precision search: which layers pay in int8 on {lib} (whole model timed both ways)...")
        kept, reverted = revert_slow_classes(graph, base.int8, build, console)
        if reverted:
            _try(graph, search, ev, lib, threads, kept, base.float_precision, base.kept_fp32, console,
                 reverted=tuple(reverted))
        else:
            search.notes.append(f"{lib}: int8 measured at least as fast for every class of its int8 layers")


def _try_bias_correction(graph: Graph, search: PrecisionSearch, ev: _Evaluator, lead: PrecisionPoint, threads: int,
                         console: Any) -> PrecisionPoint | None:
    """All-int8 on the lead backend with bias correction (Nagel et al. 2019: each int8 conv's mean output
    shift, measured on calibration samples, taken off its bias); kept as the search's spec where it scores
    better than without, so that the bisection that follows starts from the better calibration."""
    corrections = bias_corrections(ev.model, ev.data.calibration[:RANKING_SAMPLES], search.spec, threads=threads)
    if not corrections:
        return None
    return _keep_if_better(graph, search, ev, lead, replace(search.spec, bias_corrections=corrections), threads,
                           console, "bias correction")


def _keep_if_better(graph: Graph, search: PrecisionSearch, ev: _Evaluator, base: PrecisionPoint, spec: QuantSpec,
                    threads: int, console: Any, what: str) -> PrecisionPoint | None:
    """All-int8 on `base`'s backend with `spec`; it becomes the search's spec where it scores at least as well
    as `base` (the bisection that follows starts from the better quantisation), and the notes say which."""
    before, search.spec = search.spec, spec
    point = _try(graph, search, ev, base.library, threads, search.order, "fp32", 0, console)
    if point is None or point.evaluation.value < base.evaluation.value:
        search.spec = before
        search.notes.append(f"{what} did not improve all-int8 accuracy: not used")
    else:
        search.notes.append(f"{what} used: all-int8 on {base.library} {base.evaluation.value:.2f} -> "
                            f"{point.evaluation.value:.2f}")
    return point


def _try_equalization(graph: Graph, search: PrecisionSearch, ev: _Evaluator, best: PrecisionPoint, threads: int,
                      console: Any) -> PrecisionPoint | None:
    """All-int8 on the best point's backend after cross-layer equalisation (Nagel et al. 2019: each Conv ->
    Relu -> Conv pair's channels rescaled to equal ranges, the same float function), calibrated again on the
    equalised model; kept as the search's spec where it scores better, as bias correction is. None where the
    model has no equalisable pair."""
    equalized = equalize(ev.model, EQUALIZE_ITERATIONS)
    if all(a.raw_data == b.raw_data for a, b in zip(ev.model.graph.initializer, equalized.graph.initializer,
                                                     strict=True)):
        search.notes.append("cross-layer equalisation: no equalisable Conv -> Relu -> Conv pair")
        return None
    spec = replace(calibrate(equalized, ev.data.calibration, threads=threads), equalize_iterations=EQUALIZE_ITERATIONS)
    if search.spec.bias_corrections:  # corrections of the equalised weights' rounding, not of the original ones
        spec = replace(spec, bias_corrections=bias_corrections(equalized, ev.data.calibration[:RANKING_SAMPLES], spec,
                                                                 threads=threads))
    return _keep_if_better(graph, search, ev, best, spec, threads, console, "cross-layer equalisation")


def _bisect(graph: Graph, search: PrecisionSearch, ev: _Evaluator, lib: str, threads: int, console: Any) -> int | None:
    """The fewest most-sensitive nodes kept fp32 for which `lib`'s model meets the budget (k = 0 missed it,
    k = all is the fp32 model), by bisection; None when even one int8 node is too many."""
    order = search.order
    return _fewest_held(len(order), lambda k: _try(graph, search, ev, lib, threads, order[k:], "fp32", k, console))


def _fewest_held(n: int, probe: Callable[[int], PrecisionPoint | None], max_probes: int | None = None) -> int | None:
    """The fewest k in 1..n-1 for which `probe(k)` (k most sensitive nodes held in float; one full evaluation)
    meets the budget, by bisection (k = 0 missed it, k = n is the float model); None when none found within
    `max_probes` probes."""
    lo, hi, best, probes = 0, n, None, 0
    while hi - lo > 1 and (max_probes is None or probes < max_probes):
        mid, probes = (lo + hi) // 2, probes + 1
        p = probe(mid)
        if p is not None and p.meets_budget:
            hi, best = mid, mid
        else:
            lo = mid
    return best


def _try(graph: Graph, search: PrecisionSearch, ev: _Evaluator, lib: str, threads: int, int8: Sequence[str],
         float_precision: str, kept: int, console: Any, reverted: tuple[Reverted, ...] = ()
         ) -> PrecisionPoint | None:
    """Compile, time briefly and evaluate one configuration (with the search's current spec); None when the
    backend refuses it."""
    plan = whole_graph_plan(graph, lib, threads, int8, float_precision, search.spec)
    name = _name(lib, threads, len(int8), float_precision, kept) + (_spec_options(search.spec) if int8 else "")
    if reverted:
        name += f", {' + '.join(r.layer_class for r in reverted)} {float_precision} by speed"
    return _evaluated(search, ev, PrecisionPoint(name, lib, threads, float_precision, tuple(int8), kept,
                                                 Evaluation("", 0.0, 0), 0.0, 0.0, False, plan, reverted), console)


def _try_per_node(search: PrecisionSearch, ev: _Evaluator, name: str, plan: Plan, console: Any
                  ) -> PrecisionPoint | None:
    """A per-node plan evaluated; its int8 edges quantise with this search's calibration (the plan's spec
    becomes the graph's `activation_qparams` in the executor)."""
    if "int8" in plan.precisions:
        plan.quantization = search.spec.to_dict()
    return _try_plan(search, ev, name, plan, console)


def _bisect_per_node(search: PrecisionSearch, ev: _Evaluator, plan: Plan, replan: Replan, console: Any) -> None:
    """A per-node int8 plan over budget: the fewest of its int8 nodes, most sensitive first (the search's
    proxy ranking), held fp32 so that it meets the budget, by bisection; each probe re-plans the optimum
    with those nodes held (the others may move) and costs one full evaluation, at most PER_NODE_PROBES."""
    int8 = [n for n in search.order if n in plan.choices and _precision_of(plan, n) == "int8"]

    def probe(k: int) -> PrecisionPoint | None:
        again = replan("int8", frozenset(int8[:k]))
        return _try_per_node(search, ev, again[0], again[1], console) if again is not None else None

    _fewest_held(len(int8), probe, PER_NODE_PROBES)


def _try_plan(search: PrecisionSearch, ev: _Evaluator, name: str, plan: Plan, console: Any) -> PrecisionPoint | None:
    """A plan made elsewhere (per-node float precisions from the design space), compiled, timed briefly and
    evaluated like the whole-graph configurations; library "per-node", float precision its lowest one."""
    floats = [p for p in ("bf16", "f16", "fp16w") if p in plan.precisions]
    threads = max(c.threads for c in plan.choices.values())
    return _evaluated(search, ev, PrecisionPoint(name, PER_NODE, threads, floats[0] if floats else "fp32", (), 0,
                                                 Evaluation("", 0.0, 0), 0.0, 0.0, False, plan), console)


def _evaluated(search: PrecisionSearch, ev: _Evaluator, draft: PrecisionPoint, console: Any) -> PrecisionPoint | None:
    """`draft` (its evaluation and timing still empty) compiled, timed briefly and evaluated on the evaluation
    split; None, with why in the notes, where the backend refuses its plan."""
    try:
        ex = Executor(ev.graph, draft.plan, check=False)
    except Exception as e:  # noqa: BLE001 - a backend refusing a configuration excludes it, with why
        search.notes.append(f"{draft.name}: not compiled ({type(e).__name__}: {str(e).splitlines()[0][:160]})")
        return None
    feeds = ev.data.evaluation[0]
    quick = time_callable(lambda: ex.run(feeds), time_cap_s=QUICK_TIME_S, max_runs=100).median_ms
    result = ev.evaluate(ex)
    drop = accuracy_drop(search.reference, result)
    point = replace(draft, evaluation=result, drop=drop, quick_ms=quick, meets_budget=drop <= search.budget + 1e-9)
    search.points.append(point)
    console.print(f"  {point.name}: {result.describe()}, drop {drop:+.2f} points "
                  f"({'within' if point.meets_budget else 'over'} the budget), ~{quick:.2f} ms")
    return point


def _spec_options(spec: QuantSpec) -> str:
    """What the int8 nodes' quantisation adds to plain calibrated ranges, as a name suffix."""
    return (" + cross-layer equalisation" if spec.equalize_iterations else "") + \
        (" + bias correction" if spec.bias_corrections else "")


def _name(lib: str, threads: int, n_int8: int, float_precision: str, kept: int) -> str:
    what = f"int8 ({n_int8} nodes" + (f", {kept} most sensitive kept {float_precision})" if kept else ")")
    if not n_int8:
        what = float_precision
    elif float_precision != "fp32":
        what += f" + {float_precision}"
    return f"whole graph on {lib}, {threads} thread{'s' if threads > 1 else ''}, {what}"
