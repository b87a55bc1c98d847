"""Crash and hang isolation of the profiler: primitives that segfault, abort or hang (registered by the
test) are excluded with the reason and recorded, the worker restarts, and a rerun retries none of them."""

import pytest
from onnx import helper

from edgetune.graph import load_graph
from edgetune.kernels import registry
from edgetune.measure.db import ProfileDB, node_signature
from edgetune.measure.isolation import IsolatedMeasurer, crash_words
from edgetune.measure.profiler import Profiler, ProfileSummary, run_tasks
from edgetune.measure.tasks import SegmentRejected, TaskContext, segment_task
from edgetune.measure.timing import Timing
from tests.faulty_primitives import CRASHING_LIBRARY, FAULTY
from tests.graph_cases import mk, vi

TIMEOUT_S = 8.0  # generous: every candidate of the node (not only the hanging one) runs under it


@pytest.fixture
def faulty():
    for cls in FAULTY:
        registry.register(cls())
    yield
    for cls in FAULTY:
        registry.unregister(cls.name)


@pytest.fixture
def relu_graph():
    return load_graph(mk([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [1, 256])],
                         [vi("y", None)]), name="relu")


def test_crashes_and_hangs_are_excluded_with_their_reason_and_not_retried(tmp_path, faulty, relu_graph):
    db = ProfileDB(tmp_path / "p.sqlite", device_id="d", versions_id="v")
    prof = Profiler(relu_graph, db, [1], time_cap_s=0.02, kernel_timeout_s=TIMEOUT_S)
    s = prof.run()
    excluded = {k.split("/", 1)[1]: v for k, v in s.excluded.items()}
    assert excluded["relu.nullread.test"] == "segfault in prepare"
    assert excluded["relu.abort.test"] == "abort (SIGABRT) in prepare"
    assert excluded["relu.hang.test"].startswith(f"timed out after {TIMEOUT_S:g} s in ")
    sig = node_signature(relu_graph.nodes[0], relu_graph)
    # the worker was restarted after each crash: the correct primitive measured after them is stored
    assert "relu.good.test" not in excluded and db.get_node(sig, "relu.good.test", 1) is not None
    assert db.get_node(sig, "ref.relu", 1) is not None
    for name in ("relu.nullread.test", "relu.abort.test", "relu.hang.test"):
        rec = db.get_verification(sig, name)
        assert rec is not None and not rec.ok and rec.reason == excluded[name]
        assert db.get_node(sig, name, 1) is None
    rows = db.count()
    again = Profiler(relu_graph, db, [1], time_cap_s=0.02, kernel_timeout_s=TIMEOUT_S).run()
    assert again.new_measurements == 0 and db.count() == rows
    assert {k.split("/", 1)[1]: v for k, v in again.excluded.items()} == excluded


def test_in_process_profiling_still_works(tmp_path, relu_graph):
    db = ProfileDB(tmp_path / "p.sqlite", device_id="d", versions_id="v")
    s = Profiler(relu_graph, db, [1], time_cap_s=0.02, isolate=False).run()
    sig = node_signature(relu_graph.nodes[0], relu_graph)
    assert s.verified >= 1 and db.get_node(sig, "ref.relu", 1) is not None


def test_exit_status_in_words():
    assert crash_words(-11) == "segfault" and crash_words(-6) == "abort (SIGABRT)"
    assert crash_words(3) == "exited with status 3" and crash_words(None) == "died"


@pytest.fixture
def crashing_library():
    registry.register_library(CRASHING_LIBRARY)
    yield CRASHING_LIBRARY.name
    registry.unregister(CRASHING_LIBRARY.name)


def test_a_backend_crashing_on_a_segment_excludes_that_segment_not_the_profile(tmp_path, crashing_library):
    """Segments are compiled in the worker: a backend segfaulting on one is that segment's exclusion (stored,
    with the crash named), the worker restarts, and the next segment is measured."""
    graph = load_graph(mk([helper.make_node("Relu", ["x"], ["a"], name="r1"),
                           helper.make_node("Sigmoid", ["a"], ["y"], name="s1")],
                          [vi("x", [1, 64])], [vi("y", None)]), name="two")
    db = ProfileDB(tmp_path / "p.sqlite", device_id="d", versions_id="v")
    ctx = TaskContext(graph, 0.02)
    crash = segment_task("segment:crash-test:two", crashing_library, 1, ("r1", "s1"), "run")
    fine = segment_task("segment:onnxruntime:two", "onnxruntime", 1, ("r1", "s1"), "run")
    with IsolatedMeasurer(graph, ctx.samples, 0.02, TIMEOUT_S) as worker:
        ctx.isolated = worker.perform_task
        s = ProfileSummary()
        run_tasks([crash, fine], ctx, db, s)
        assert worker.restarts == 1
    reason = "crash-test: segfault while compiling or running it"
    assert s.excluded == {f"segment {crash.description}": reason} and s.new_measurements == 2
    assert db.get_converter(*fine.db_key) is not None and db.get_converter(*crash.db_key) is None
    out = worker.perform_task(crash)  # a closed worker starts again on demand
    assert isinstance(out, SegmentRejected) and str(out) == reason
    assert isinstance(worker.perform_task(fine), Timing)
    worker.close()
