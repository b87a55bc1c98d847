"""Segments a search proposes, measured on demand: remembered in the ProfileDB, measured whole by the next
profile, offered by the next design space after the options the earlier plans chose (so their choices still
mean the same plans)."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from edgetune.measure.db import ProfileDB, node_signature
from edgetune.measure.profiler import PROPOSED_KIND, Profiler, keyed_segment_candidates, propose_segments
from edgetune.planning.design_space import measure_space
from edgetune.planning.loop import _extends_options
from edgetune.planning.on_demand import measure_proposed, merged_runs
from edgetune.runtime.plan import PlanSegment
from tests.test_plan_segments import _graph

PROPOSAL = ["b1", "c1", "a2", "b2"]  # an interval across two blocks: no enumerated candidate is this run


def _two_residuals():
    return _graph([("a1", "Relu", ["x"]), ("b1", "Sigmoid", ["a1"]), ("c1", "Add", ["x", "b1"]),
                   ("a2", "Relu", ["c1"]), ("b2", "Sigmoid", ["a2"]), ("c2", "Add", ["c1", "b2"]),
                   ("d", "Relu", ["c2"])], name="two_residuals")


@pytest.fixture
def two_residuals():
    return _two_residuals()


@pytest.fixture(scope="module")
def profiled_file(tmp_path_factory):
    """The graph profiled once (the slow part); each test gets its own copy of the DB."""
    path = tmp_path_factory.mktemp("on_demand") / "p.sqlite"
    with ProfileDB(path, device_id="d", versions_id="v") as db:
        Profiler(_two_residuals(), db, [1], time_cap_s=0.01, isolate=False).run()
    return path


@pytest.fixture
def profiled(tmp_path, profiled_file):
    shutil.copy(profiled_file, tmp_path / "p.sqlite")
    with ProfileDB(tmp_path / "p.sqlite", device_id="d", versions_id="v") as db:
        yield db


def _sigs(graph):
    return {n.name: node_signature(n, graph) for n in graph.nodes}


def test_a_proposal_is_remembered_once_and_only_when_new(two_residuals, profiled):
    runs = [("onnxruntime", 1, PROPOSAL),
            ("onnxruntime", 1, ["a1", "b1", "c1"]),  # the first block: already a candidate
            ("onnxruntime", 1, ["a1", "c1"])]  # not consecutive: the executor never merges it
    assert propose_segments(two_residuals, profiled, runs) == 1
    assert propose_segments(two_residuals, profiled, runs) == 0  # remembered
    cands = [c for c, _ in keyed_segment_candidates(two_residuals, profiled, [1], _sigs(two_residuals))]
    proposed = [c for c in cands if c.kind == PROPOSED_KIND]
    assert [(c.library, c.threads, c.nodes) for c in proposed] == [("onnxruntime", 1, tuple(PROPOSAL))]
    assert cands[-1] == proposed[0]  # after every enumerated candidate: earlier option indices stay put
    assert not [c for c, _ in keyed_segment_candidates(two_residuals, profiled, [2], _sigs(two_residuals))
                if c.kind == PROPOSED_KIND]  # at its own thread count only


def test_the_next_profile_measures_it_whole_and_the_space_offers_it(two_residuals, profiled):
    before = measure_space(two_residuals, profiled, [1], {"fp32"}).view({"fp32"})[0]
    assert propose_segments(two_residuals, profiled, [("onnxruntime", 1, PROPOSAL)]) == 1
    prof = Profiler(two_residuals, profiled, [1], time_cap_s=0.01, isolate=False)
    todo = prof.tasks()
    assert [t.nodes for t in todo] == [tuple(PROPOSAL)] and todo[0].kind == "segment"  # nothing else is missing
    s = prof.run()
    assert s.new_measurements == 1 and not prof.tasks()
    after = measure_space(two_residuals, profiled, [1], {"fp32"}).view({"fp32"})[0]
    offered = {o.meta["segment_kind"] for opts in after.options for o in opts if o.group is not None}
    assert PROPOSED_KIND in offered
    for name, opts in zip([n.name for n in two_residuals.nodes], after.options, strict=True):
        has = any(o.meta.get("segment_nodes") == PROPOSAL for o in opts)
        assert has == (name in PROPOSAL)
    assert _extends_options(before, after) and not _extends_options(after, before)


def test_the_loop_takes_the_runs_its_plans_merged_and_leaves_another_devices_db_alone(two_residuals, profiled):
    space = measure_space(two_residuals, profiled, [1], {"fp32"}).view({"fp32"})[0]
    per_node = [next(i for i, o in enumerate(opts) if o.group is None) for opts in space.options]
    merged = SimpleNamespace(plan=SimpleNamespace(segments=[PlanSegment("onnxruntime", 1, PROPOSAL),
                                                            PlanSegment("numpy", 1, ["d"])]))
    cand = SimpleNamespace(executor=merged, plan=None, choice=per_node)
    outside = SimpleNamespace(executor=merged, plan=object(), choice=per_node)  # a precision configuration
    assert merged_runs(space, [cand, outside]) == [("onnxruntime", 1, PROPOSAL)]
    # this DB is keyed by another device ("d"): measuring here would file this CPU's times under it
    assert measure_proposed(two_residuals, profiled, space, [cand], [1], 0.01, SimpleNamespace(print=print)) == 0
    assert propose_segments(two_residuals, profiled, [("onnxruntime", 1, PROPOSAL)]) == 1  # nothing was recorded
