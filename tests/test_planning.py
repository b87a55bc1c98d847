"""planning/ directly: the design space from a hand-filled ProfileDB (options, times, edge costs, memory,
fallbacks, unmeasured converters, precision views), and the loop -> report contract (the data `tune`
builds is what report.html shows)."""

from __future__ import annotations

import io
import json

import numpy as np
import onnx
import pytest
from onnx import helper
from rich.console import Console

from edgetune.kernels.base import Primitive
from edgetune.kernels.segments import pair_key
from edgetune.measure.db import ProfileDB, node_signature
from edgetune.measure.profiler import DISPATCH_KEY, ProfileSummary
from edgetune.measure.switching import switch_key
from edgetune.measure.timing import Timing
from edgetune.planning import loop
from edgetune.planning.design_space import FALLBACK_MS, INFEASIBLE_MS, build_space, measure_space
from edgetune.planning.results import TuneConfig
from edgetune.report.html import FIGURE_FILES, write_report
from edgetune.search import compared_strategies
from edgetune.user_model import open_model
from tests.graph_cases import mk, vi
from tests.registered import registered

IM2COL, NHWC, MLAS, FP16W = "conv.im2col.numpy", "conv.im2col_nhwc.numpy", "conv.mlas.ort", "conv.im2col.numpy.fp16w"


def T(ms: float) -> Timing:
    return Timing(median_ms=ms, p10_ms=ms, p90_ms=ms, min_ms=ms, spread=0.0, runs=5, foreign_cores=0.0,
                  disturbed=False, ci_rel=0.01)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """x (1x3x8x8) -> Conv c1 -> Conv c2 -> MaxPool m -> y: two convolutions with several primitives, and a
    node left without measurements."""
    rng = np.random.default_rng(0)
    m = mk([helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1], name="c1"),
            helper.make_node("Conv", ["a", "w2"], ["b"], pads=[1, 1, 1, 1], name="c2"),
            helper.make_node("MaxPool", ["b"], ["y"], kernel_shape=[2, 2], strides=[2, 2], name="m")],
           [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 4, 4])],
           {"w1": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
            "w2": rng.standard_normal((4, 4, 3, 3)).astype(np.float32)})
    path = tmp_path_factory.mktemp("model") / "three.onnx"
    onnx.save(m, path)
    return str(path)


@pytest.fixture(scope="module")
def src(model_path):
    return open_model(model_path)


def put(db: ProfileDB, graph, node: str, prim: str, threads: int, ms: float, ok: bool = True, **mem) -> None:
    sig = node_signature(next(n for n in graph.nodes if n.name == node), graph)
    db.put_verification(sig, prim, ok, 0.0 if ok else 0.5, "" if ok else "5 % off")
    db.put_node(sig, prim, threads, T(ms), **mem)


def pair_key_of(graph, a: str, b: str) -> str:
    na, nb = (next(n for n in graph.nodes if n.name == x) for x in (a, b))
    return pair_key(graph, na, nb, node_signature(na, graph), node_signature(nb, graph))


@pytest.fixture
def db(tmp_path, src):
    """c1: im2col (memory measured), NHWC im2col (its input conversion never measured), ORT at 1 and 2
    threads (measured resident below its weights), fp16-weight im2col; c2: im2col (memory not measured),
    ORT, and an NHWC im2col that failed verification; m: nothing. Converters: NHWC -> NCHW on a, the ORT
    pair session c1 => c2, the numpy <-> ORT pool switch at 1 thread, dispatch."""
    g = src.graph
    d = ProfileDB(tmp_path / "hand.sqlite")
    put(d, g, "c1", IM2COL, 1, 0.30, weight_bytes=432, workspace_bytes=2000, resident_bytes=100_000,
        transient_bytes=70_000)
    put(d, g, "c1", NHWC, 1, 0.20, weight_bytes=432, workspace_bytes=2000)
    put(d, g, "c1", MLAS, 1, 0.25, weight_bytes=432, resident_bytes=0, transient_bytes=0)
    d.put_node(node_signature(g.nodes[0], g), MLAS, 2, T(0.15), 432)
    put(d, g, "c1", FP16W, 1, 0.28, weight_bytes=216, workspace_bytes=2000)
    put(d, g, "c2", IM2COL, 1, 0.40, weight_bytes=576, workspace_bytes=3000)
    put(d, g, "c2", MLAS, 1, 0.35, weight_bytes=576, resident_bytes=8_000, transient_bytes=500)
    put(d, g, "c2", NHWC, 1, 0.01, ok=False, weight_bytes=576)
    d.put_converter("nhwc_to_nchw.numpy", (1, 4, 8, 8), 1, T(0.02))
    d.put_converter(pair_key_of(g, "c1", "c2"), (), 1, T(0.50))
    d.put_converter(switch_key(("numpy", 1), ("ort", 1)), (), 0, T(0.03))
    d.put_converter(DISPATCH_KEY, (), 1, T(0.001))
    yield d
    d.close()


def keys(space, i: int) -> list[str]:
    return [o.key for o in space.options[i]]


def test_options_times_and_fallback(src, db):
    space, info = build_space(src.graph, db, [1, 2], ("fp32",))
    assert space.nodes == ["c1", "c2", "m"]
    # candidate-primitive order, then thread count; fp16w left out, the unverified NHWC im2col excluded
    assert keys(space, 0) == [f"{IM2COL}@1", f"{NHWC}@1", f"{MLAS}@1", f"{MLAS}@2"]
    assert keys(space, 1) == [f"{IM2COL}@1", f"{MLAS}@1"]
    c1 = {o.key: o for o in space.options[0]}
    assert c1[f"{IM2COL}@1"].time_ms == 0.30 and c1[f"{MLAS}@2"].time_ms == 0.15
    # the graph input reaches the NHWC option through a converter the DB lacks: infeasible, and reported
    assert c1[f"{NHWC}@1"].time_ms == pytest.approx(0.20 + INFEASIBLE_MS)
    assert info.unmeasured == ["nchw_to_nhwc.numpy (1, 3, 8, 8)"]
    # m has no measured primitive: the reference kernel at one thread, NCHW fp32 (its time unknown)
    assert info.fallbacks == ["m"]
    (fb,) = space.options[2]
    assert (fb.key, fb.time_ms, fb.out_format, fb.in_formats) == ("ref.maxpool@1", FALLBACK_MS, "NCHW/float32",
                                                                 ["NCHW/float32"])
    assert fb.meta["fallback"] and space.dispatch_ms_per_step == 0.001


def test_edge_costs(src, db):
    space, _ = build_space(src.graph, db, [1, 2], ("fp32",))
    assert space.edges == [(0, 1), (1, 2)]
    e01, e12 = space.edge_cost
    i = {k: n for n, k in enumerate(keys(space, 0))}
    j = {k: n for n, k in enumerate(keys(space, 1))}
    im, nh, o1, o2 = (i[f"{p}@{t}"] for p, t in ((IM2COL, 1), (NHWC, 1), (MLAS, 1), (MLAS, 2)))
    c2im, c2o = j[f"{IM2COL}@1"], j[f"{MLAS}@1"]
    assert e01[im, c2im] == 0.0  # same format, same pool
    assert e01[nh, c2im] == pytest.approx(0.02)  # NHWC -> NCHW converter
    assert e01[im, c2o] == pytest.approx(0.03) and e01[o1, c2im] == pytest.approx(0.03)  # pool switch
    assert e01[nh, c2o] == pytest.approx(0.02 + 0.03)
    # one ORT session for both: pair time 0.50 against 0.25 + 0.35 alone
    assert e01[o1, c2o] == pytest.approx(0.50 - 0.25 - 0.35)
    assert e01[o2, c2im] == 0.0 and e01[o2, c2o] == 0.0  # switches never measured: free; threads differ: no pair
    # c2 -> the reference MaxPool: numpy-reference shares numpy's pool; from ORT it is a switch
    assert e12[c2im, 0] == 0.0 and e12[c2o, 0] == pytest.approx(0.03)


class _FusableElsewhere(Primitive):
    """A fusable conv of a library other than ONNX Runtime (as OpenVINO's, LiteRT's and torch's are)."""

    name, library, op_types, fuses = "conv.fusable_fake.torch", "torch", frozenset({"Conv"}), True

    def supports(self, node, graph):
        return None

    def prepare(self, node, ctx):
        raise NotImplementedError


def test_the_ort_pair_gain_prices_only_pairs_of_ort_options(src, db):
    """The pair is measured as one ORT session: it says nothing of two nodes of another fusable library, nor of
    an ORT node beside one."""
    fake = _FusableElsewhere()
    with registered(fake):
        put(db, src.graph, "c1", fake.name, 1, 0.22)
        put(db, src.graph, "c2", fake.name, 1, 0.33)
        space, _ = build_space(src.graph, db, [1], ("fp32",))
    e01 = space.edge_cost[space.edges.index((0, 1))]
    i, j = ({k: n for n, k in enumerate(keys(space, x))} for x in (0, 1))
    f1, f2, o1, o2 = i[f"{fake.name}@1"], j[f"{fake.name}@1"], i[f"{MLAS}@1"], j[f"{MLAS}@1"]
    assert e01[o1, o2] == pytest.approx(0.50 - 0.25 - 0.35)  # ORT => ORT: the measured gain
    assert e01[f1, f2] == 0.0  # torch => torch: no gain (it was 0.50 - 0.22 - 0.33 before)
    assert e01[f1, o2] == e01[o1, f2] == 0.0  # across libraries (no torch <-> ORT switch measured): nothing


def test_memory_model_uses_measured_resident_bytes(src, db):
    space, _ = build_space(src.graph, db, [1, 2], ("fp32",))
    c1 = {o.key: o for o in space.options[0]}
    c2 = {o.key: o for o in space.options[1]}
    # measured: resident kept, transient peak as scratch (the reported 432 + 2000 are not used)
    assert (c1[f"{IM2COL}@1"].weight_bytes, c1[f"{IM2COL}@1"].workspace_bytes) == (100_000, 70_000)
    assert c1[f"{IM2COL}@1"].meta["memory_measured"]
    # measured below the reported weights (aliased with the graph's arrays): at least the weights
    assert (c1[f"{MLAS}@1"].weight_bytes, c1[f"{MLAS}@1"].workspace_bytes) == (432, 0)
    # not measured: the kernel's own report
    assert (c2[f"{IM2COL}@1"].weight_bytes, c2[f"{IM2COL}@1"].workspace_bytes) == (576, 3000)
    assert not c2[f"{IM2COL}@1"].meta["memory_measured"]
    plan = [keys(space, 0).index(f"{IM2COL}@1"), keys(space, 1).index(f"{MLAS}@1"), 0]
    assert space.plan_memory(plan) == 100_000 + 8_000 + 0 + 70_000  # kept, summed + the largest scratch


def test_views_of_one_build_equal_separate_builds(src, db):
    measured = measure_space(src.graph, db, [1, 2], {"fp32", "fp16w"})
    for precisions in (("fp32",), ("fp32", "fp16w"), ("fp16w",)):
        view, vinfo = measured.view(precisions)
        alone, info = build_space(src.graph, db, [1, 2], precisions)
        assert [keys(view, i) for i in range(3)] == [keys(alone, i) for i in range(3)]
        assert [[o.time_ms for o in opts] for opts in view.options] == [[o.time_ms for o in opts]
                                                                         for opts in alone.options]
        assert view.edges == alone.edges and (vinfo.fallbacks, vinfo.unmeasured) == (info.fallbacks, info.unmeasured)
        assert all(np.array_equal(a, b) for a, b in zip(view.edge_cost, alone.edge_cost, strict=True))
    wide, _ = measured.view(("fp32", "fp16w"))
    assert f"{FP16W}@1" in keys(wide, 0)
    # fp16w alone: c1 has its fp16w option; c2 and m fall back; no NHWC option, so nothing unmeasured
    only, info = measured.view(("fp16w",))
    assert keys(only, 0) == [f"{FP16W}@1"] and info.fallbacks == ["c2", "m"] and info.unmeasured == []
    assert keys(only, 1) == ["ref.conv@1"]


def fake_compare(medians: dict[str, float]):
    """The side-by-side run's rows without timing anything: the candidates as `medians` says (else 1.5 ms),
    the BLAS baseline, and ONNX Runtime as the only peer."""

    def compare(src, variants, *, threads, time_cap, console, int8=True, peers=True, calibration=None, db=None):
        rows = []
        for name, ex in [*variants.items(), *([("onnxruntime fp32", None)] if peers else [])]:
            ms = medians.get(name, 1.5)
            mem = ex.memory().to_dict() if ex is not None else {"weight_bytes": 1234, "note": "peer"}
            rows.append({"variant": name, "median_ms": ms, "p10_ms": ms * 0.9, "p90_ms": ms * 1.1, "runs": 10,
                         "spread": 0.2, "disturbed": False, "foreign_cores": 0.0, "memory": mem})
        return rows

    return compare


def test_loop_result_is_what_the_report_shows(src, db, tmp_path, monkeypatch):
    builds = []

    def counted(*args, **kw):
        builds.append(args[3])
        return measure_space(*args, **kw)

    monkeypatch.setattr(loop, "measure_space", counted)
    monkeypatch.setattr(loop, "compare", fake_compare({"BLAS fp32 baseline": 4.0, "onnxruntime fp32": 2.0,
                                                       "exact optimum (predicted)": 1.0}))
    cfg = TuneConfig(budget=30, threads=[1, 2], precisions=("fp32",), compare_time_cap_s=1.0)
    out = tmp_path / "run"
    result, report = loop.tune(src, cfg, out, db, ProfileSummary(), Console(file=io.StringIO()))
    # the space is read once, with the Pareto front's precision too, and once more per round of the closed loop
    # that refitted the boundary costs
    fits = sum("fit" in r for r in result.loop)
    assert builds == [{"fp32", "fp16w"}] * (1 + fits) and result.loop[0]["round"] == 1
    # the plan the loop chose, and what summary.json says about it
    best = next(c for c in result.candidates if c.chosen)
    assert best.name == "exact optimum (predicted)" == result.search.chosen_candidate
    assert result.latency_ms.plan == 1.0 and result.speedup.vs_blas == 4.0 and result.speedup.vs_onnxruntime == 2.0
    assert "2.00x faster than the fastest peer" in result.verdict["statement"]
    assert json.loads((out / "plan.json").read_text())["meta"]["chosen_candidate"] == best.name
    d = result.to_dict()
    assert list(d) == ["model", "plan", "out_dir", "db", "input_shapes", "upgraded_from_opset", "generic_nodes",
                       "latency_ms", "speedup", "memory_bytes", "search", "profile", "candidates", "comparison",
                       "verdict", "executor", "device", "report", "batch", "loop"]
    assert d["latency_ms"] == {"plan": 1.0, "blas": 4.0, "onnxruntime": 2.0} and json.dumps(d, default=str)
    # the report is drawn from the same objects
    assert report.candidates is result.candidates and report.verdict is result.verdict
    assert set(report.strategies) == {"exact", "qlearning", *compared_strategies()}
    assert [r.variant for r in report.comparison] == ["edgetune plan", "BLAS fp32 baseline", "onnxruntime fp32"]
    assert report.space.fallbacks == ["m"] and report.pareto
    page = write_report(report, out).read_text(encoding="utf-8")
    assert f'<p class="verdict"><b>{result.verdict["statement"]}</b></p>' in page.replace("&#x27;", "'")
    assert "Tuned plan: 1.00 ms measured median" in page and "4.00× faster" in page
    assert f'<tr class="chosen"><td>{best.name}</td>' in page  # the chosen candidate's row
    for layer in report.layers:  # the layer table: every node with the option the plan runs
        assert f"<td>{layer.node}</td><td>{layer.op}</td><td>{layer.chosen}</td>" in page
    assert "1 node(s) had no verified measured primitive" in page and "<code>m</code>" in page
    assert page.count("data:image/png;base64,") == len(FIGURE_FILES)
    assert all((out / name).is_file() for name in FIGURE_FILES)


# ---- segments measured whole ---------------------------------------------------------------------

def _segment_db(tmp_path, graph, whole_ms: float, block_ms: float):
    """op.ort/conv.mlas.ort verified and timed on every node at 1 thread, the whole graph and the block
    c1..c2 as ORT segments, dispatch 0.01 ms."""
    from edgetune.measure.profiler import keyed_segment_candidates

    d = ProfileDB(tmp_path / "seg.sqlite")
    put(d, graph, "c1", MLAS, 1, 0.25)
    put(d, graph, "c2", MLAS, 1, 0.25)
    put(d, graph, "m", "op.ort", 1, 0.05)
    put(d, graph, "m", "ref.maxpool", 1, 0.5)
    d.put_converter(DISPATCH_KEY, (), 1, T(0.01))
    sigs = {n.name: node_signature(n, graph) for n in graph.nodes}
    keyed = [(c, k) for c, k in keyed_segment_candidates(graph, d, [1], sigs) if c.library == "onnxruntime"]
    for cand, key in keyed:
        d.put_converter(key, (), 1, T(whole_ms if cand.kind == "whole graph" else block_ms))
    return d, keyed


def test_segments_measured_whole_are_options_that_run_whole(tmp_path, src):
    from edgetune.planning.candidates import to_plan
    from edgetune.planning.design_space import choice_segments
    from edgetune.search import get_strategy

    g = src.graph
    db, keyed = _segment_db(tmp_path, g, whole_ms=0.2, block_ms=0.4)
    kinds = {c.kind: c.nodes for c, _ in keyed}
    assert kinds["whole graph"] == ("c1", "c2", "m")
    space, _ = build_space(g, db, [1])
    whole = [[k for k, o in enumerate(opts) if o.meta.get("segment_kind") == "whole graph"][0]
             for opts in space.options]
    # three options of one group: the measured 0.2 ms plus one step of dispatch, never the nodes' sum
    assert space.cost_model.predict(whole) == pytest.approx(0.2 + 0.01)
    assert len({space.options[i][k].group for i, k in enumerate(whole)}) == 1
    # taking it on one node only is repaired to no segment at all
    partial = [whole[0], 0, 0]
    assert space.repair(partial)[0] != whole[0]
    best = get_strategy("exact").search(space, 1, 0)
    assert best.best_choice == whole and best.best_cost == pytest.approx(0.21)
    plan = to_plan(g, space, best.best_choice, {})
    assert [(s.library, s.nodes) for s in plan.segments] == [("onnxruntime", ["c1", "c2", "m"])]
    assert [s.nodes for s in choice_segments(space, best.best_choice)] == [["c1", "c2", "m"]]


def test_a_slow_segment_is_not_chosen(tmp_path, src):
    from edgetune.planning.design_space import choice_segments
    from edgetune.search import get_strategy

    db, _ = _segment_db(tmp_path, src.graph, whole_ms=5.0, block_ms=5.0)
    space, _ = build_space(src.graph, db, [1])
    best = get_strategy("exact").search(space, 1, 0)
    assert choice_segments(space, best.best_choice) == []
