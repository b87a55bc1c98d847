"""The profiler on hand-built graphs, in process: every candidate verified (or excluded with its reason),
every verified one timed at the largest thread count, the fixed measurements (converters, ORT pairs,
switches, dispatch) written under exactly the keys `tasks()` lists, a rerun all cached, and a failing task
losing nothing measured before it."""

import pickle
from dataclasses import FrozenInstanceError
from types import SimpleNamespace

import numpy as np
import pytest

from edgetune.graph.ir import Graph, Node, Value
from edgetune.kernels import registry
from edgetune.measure.db import ProfileDB, node_signature
from edgetune.measure.profiler import Profiler, ProfileSummary, _likely_slow, candidate_primitives, run_tasks
from edgetune.measure.tasks import DISPATCH_KEY, MeasurementTask
from tests.faulty_primitives import WRONG, FivePercentWrong

CAP = 0.01  # seconds of timing per measurement: the values do not matter here, the rows do
KINDS = {"converter", "ort_pair", "switch", "dispatch", "segment"}


def _conv_relu() -> Graph:
    """x -> Conv 3x3 (4 -> 8 channels, 8x8) -> Relu -> y: converters (NHWC, blocked), an ORT pair, pools."""
    rng = np.random.default_rng(0)
    conv = Node("conv", "Conv", ["x", "w"], ["c"], {"strides": [1, 1], "dilations": [1, 1], "pads": [1, 1, 1, 1],
                                                    "group": 1, "kernel_shape": [3, 3]})
    relu = Node("relu", "Relu", ["c"], ["y"])
    w = (rng.standard_normal((8, 4, 3, 3)) / 6).astype(np.float32)
    values = {"x": Value("x", (1, 4, 8, 8)), "c": Value("c", (1, 8, 8, 8)), "y": Value("y", (1, 8, 8, 8))}
    return Graph("conv-relu", [conv, relu], ["x"], ["y"], values, {"w": w})


def _converter_rows(db: ProfileDB) -> set[tuple[str, tuple[int, ...], int]]:
    """The converters table's keys as (converter, shape, threads), as `MeasurementTask.db_key` has them."""
    rows = db.con.execute("SELECT converter, shape, threads FROM converters WHERE device=? AND versions=?",
                          (db.device_id, db.versions_id))
    return {(c, () if s == "scalar" else tuple(int(d) for d in s.split("x")), t) for c, s, t in rows}


def _recorder(bars: list[dict]):
    """A `progress` argument that records each bar's description, total and advances."""
    def progress(description: str, total: int):
        bar = {"description": description, "total": total, "advanced": []}
        bars.append(bar)
        return bar["advanced"].append
    return progress


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """One profile of the Conv -> Relu graph at 1 thread, with a Conv primitive wrong by 5 % registered."""
    registry.load_all()
    registry.register(FivePercentWrong())
    db = ProfileDB(tmp_path_factory.mktemp("profiler") / "p.sqlite", device_id="d", versions_id="v")
    try:
        graph, bars = _conv_relu(), []
        prof = Profiler(graph, db, [1], time_cap_s=CAP, isolate=False)
        first = prof.run(_recorder(bars))
        yield SimpleNamespace(graph=graph, db=db, prof=prof, first=first, bars=bars, rows=db.count())
    finally:
        registry.unregister(WRONG)
        db.close()


def test_every_candidate_is_verified_or_excluded_and_every_verified_one_timed(profiled):
    g, db, s = profiled.graph, profiled.db, profiled.first
    ok = 0
    for node in g.nodes:
        sig = node_signature(node, g)
        for prim in candidate_primitives(node, g):
            rec = db.get_verification(sig, prim.name)
            assert rec is not None, f"{node.name}/{prim.name} has no verification row"
            if rec.ok:
                ok += 1
                assert db.get_node(sig, prim.name, 1) is not None, f"{node.name}/{prim.name} verified, not timed"
            else:
                assert rec.reason and s.excluded[f"{node.name}/{prim.name}"] == rec.reason
                assert db.get_node(sig, prim.name, 1) is None
    assert ok == s.verified > 0 and len(s.excluded) == profiled.rows["verifications"] - ok


def test_a_wrong_primitive_is_excluded_with_its_reason(profiled):
    g, db, s = profiled.graph, profiled.db, profiled.first
    sig = node_signature(g.node("conv"), g)
    reason = s.excluded[f"conv/{WRONG}"]
    assert "error" in reason
    rec = db.get_verification(sig, WRONG)
    assert rec is not None and not rec.ok and rec.reason == reason and rec.rel_error == pytest.approx(0.05, rel=0.2)
    assert db.get_node(sig, WRONG, 1) is None
    assert WRONG not in {p.name for p in profiled.prof.verified(g.node("conv"))}


def test_tasks_are_every_kind_once_and_the_rows_written(profiled):
    planned = profiled.prof.all_tasks()
    assert {t.kind for t in planned} == KINDS
    assert len({t.db_key for t in planned}) == len(planned)  # nothing measured twice
    assert _converter_rows(profiled.db) == {t.db_key for t in planned}
    assert ("dispatch", (DISPATCH_KEY, (), 1)) in {(t.kind, t.db_key) for t in planned}
    assert all(t.threads == 0 for t in planned if t.kind == "switch")
    assert profiled.prof.tasks() == []  # nothing missing after a run


def test_every_measurement_is_counted_once_and_progress_reaches_its_totals(profiled):
    s, rows = profiled.first, profiled.rows
    assert s.new_measurements == rows["nodes"] + rows["converters"] + rows["verifications"]
    assert s.cached == 0
    nodes_bar, tasks_bar = profiled.bars
    assert tasks_bar["total"] == len(profiled.prof.all_tasks())
    for bar in (nodes_bar, tasks_bar):
        assert len(bar["advanced"]) == bar["total"] > 0, bar["description"]
    assert "executor dispatch" in tasks_bar["advanced"]
    assert tasks_bar["advanced"][-1].endswith("@1 whole graph conv..relu (2 nodes)")  # segments come last


def test_a_second_run_measures_nothing_and_counts_it_all_as_cached(profiled):
    g, db, first = profiled.graph, profiled.db, profiled.first
    bars: list[dict] = []
    again = Profiler(g, db, [1], time_cap_s=CAP, isolate=False).run(_recorder(bars))
    assert again.new_measurements == 0 and again.disturbed == 0
    assert again.cached == first.new_measurements
    assert (again.verified, again.excluded, again.pruned) == (first.verified, first.excluded, first.pruned)
    assert db.count() == profiled.rows
    assert [b["description"] for b in bars] == ["verifying and timing primitives"]  # no task bar: none to run


def test_run_measures_exactly_the_missing_tasks_it_lists(profiled):
    db, prof = profiled.db, profiled.prof
    before = _converter_rows(db)
    by_kind = {t.kind: t for t in prof.all_tasks()}  # one task of each kind
    for t in by_kind.values():
        db.con.execute("DELETE FROM converters WHERE converter=? AND threads=?", (t.key, t.threads))
    missing = before - _converter_rows(db)
    listed = prof.tasks()
    assert {t.db_key for t in listed} == missing and {t.kind for t in listed} == KINDS
    s = prof.run()
    assert s.new_measurements == len(listed) and _converter_rows(db) == before


def test_a_failing_task_keeps_what_was_measured_before_it(profiled, tmp_path):
    convs = [t for t in profiled.prof.all_tasks() if t.kind == "converter"]
    gone = MeasurementTask(kind="converter", key="no.such.converter", shape=(1, 4, 8, 8))  # unregistered since
    s = ProfileSummary()
    with ProfileDB(tmp_path / "fresh.sqlite", device_id="d", versions_id="v") as db:
        with pytest.raises(KeyError, match="no.such.converter"):
            run_tasks([convs[0], gone, convs[1]], profiled.prof.ctx, db, s)
        assert _converter_rows(db) == {convs[0].db_key}
    assert s.new_measurements == 1


def test_tasks_are_plain_picklable_keyword_only_data(profiled):
    planned = profiled.prof.all_tasks()
    assert pickle.loads(pickle.dumps(planned)) == planned
    with pytest.raises(TypeError):
        MeasurementTask("dispatch", DISPATCH_KEY)
    with pytest.raises(FrozenInstanceError):
        planned[0].key = "other"


def test_two_thread_counts_time_every_verified_candidate_at_the_largest_and_prune_the_rest(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 256)).astype(np.float32)
    node = Node("relu", "Relu", ["x"], ["y"])
    g = Graph("relu", [node], ["x"], ["y"], {"x": Value("x", x.shape), "y": Value("y", x.shape)}, {})
    sig = node_signature(node, g)
    with ProfileDB(tmp_path / "p.sqlite", device_id="d", versions_id="v") as db:
        s = ProfileSummary()
        Profiler(g, db, [2, 1], time_cap_s=CAP, isolate=False).profile_nodes(s)
        prims = candidate_primitives(node, g)
        verified = [p for p in prims if db.get_verification(sig, p.name).ok]
        assert len(verified) == s.verified >= 2
        assert all(db.get_node(sig, p.name, 2) is not None for p in verified)
        assert s.pruned == sum(db.get_node(sig, p.name, 1) is None for p in verified)
        # likely-slow candidates are timed last at the largest thread count: the node's best is known first
        at_max = sorted(db.nodes(sig), key=lambda r: r.measured_at)
        slow = {p.name: _likely_slow(p) for p in prims}
        order = [slow[r.primitive] for r in at_max if r.threads == 2]
        assert order == sorted(order)


def test_the_whole_graph_is_measured_whole_on_each_segment_library(profiled):
    """The two-node graph as one ORT session: one segment row, at the key the profiler derives from its
    content, whose time is the whole run (not the sum of the nodes)."""
    seg = [t for t in profiled.prof.all_tasks() if t.kind == "segment"]
    segment_libraries = {lib.name for lib in registry.installed_libraries() if lib.segment is not None}
    assert {t.library for t in seg} == segment_libraries >= {"onnxruntime"}
    assert all(t.nodes == ("conv", "relu") for t in seg)
    for cand, task in zip(profiled.prof.segment_candidates(), seg, strict=True):
        assert cand.kind == "whole graph" and profiled.prof.segment_key(cand) == task.key
        assert task.key.startswith(f"segment:{task.library}:") and task.key.endswith(":whole")
        rec = profiled.db.get_converter(task.key, (), 1)
        assert rec is not None and rec.median_ms > 0


def test_a_segment_its_backend_cannot_run_is_excluded_and_remembered(tmp_path, monkeypatch):
    """A backend failing to compile is an exclusion with its reason, stored, and not retried on a rerun."""
    from edgetune.measure import tasks as tasks_module

    def broken(graph, nodes, threads, spin="stop", library="onnxruntime"):
        raise RuntimeError("unsupported attribute in node conv\nmore detail")

    def broken_segments_only(graph, nodes, threads, spin="stop", library="onnxruntime"):
        if len(nodes) == 2 and spin == "on" and library == "onnxruntime":  # the whole-graph ORT segment
            return broken(graph, nodes, threads, spin, library)
        return real(graph, nodes, threads, spin, library)

    real = tasks_module.segment_kernel
    monkeypatch.setattr(tasks_module, "segment_kernel", broken_segments_only)
    graph = _conv_relu()
    with ProfileDB(tmp_path / "p.sqlite", device_id="d", versions_id="v") as db:
        prof = Profiler(graph, db, [1], time_cap_s=CAP, isolate=False)
        first = prof.run()
        reasons = [r for k, r in first.excluded.items() if k.startswith("segment ")]
        assert reasons == ["onnxruntime cannot run it: RuntimeError: unsupported attribute in node conv"]
        assert [t for t in prof.tasks() if t.kind == "segment"] == []
        assert Profiler(graph, db, [1], time_cap_s=CAP, isolate=False).run().new_measurements == 0

