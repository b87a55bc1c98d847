"""Plans made of segments (format 2): saved, loaded, checked and run; format-1 plans still load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from edgetune.errors import EdgetuneError
from edgetune.graph import load_graph
from edgetune.graph.reference import default_feeds, run_graph
from edgetune.kernels import registry
from edgetune.kernels.library import Library, ThreadPool
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import NodeChoice, Plan, PlanSegment, merged_segments


def _graph(nodes: list[tuple[str, str, list[str]]], name: str = "segments"):
    """x [1, 4, 8, 8] -> the given (name, op, inputs) nodes -> the last node's output."""
    vi = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])]
    made = [helper.make_node(op, ins, [n], name=n) for n, op, ins in nodes]
    out = [helper.make_tensor_value_info(nodes[-1][0], TensorProto.FLOAT, [1, 4, 8, 8])]
    model = helper.make_model(helper.make_graph(made, name, vi, out), opset_imports=[helper.make_opsetid("", 13)])
    return load_graph(model, optimize=False)


@pytest.fixture
def residual():
    """a = Relu(x); b = Sigmoid(a); c = Add(a, b): the path a -> b -> c leaves {a, c} and re-enters."""
    return _graph([("a", "Relu", ["x"]), ("b", "Sigmoid", ["a"]), ("c", "Add", ["a", "b"])])


@pytest.fixture
def branches():
    """a = Relu(x); b = Sigmoid(x); c = Add(a, b): {a, c} is convex although b sits between them."""
    return _graph([("a", "Relu", ["x"]), ("b", "Sigmoid", ["x"]), ("c", "Add", ["a", "b"])])


def _ort_plan(graph, segments):
    choices = {n.name: NodeChoice("op.ort", 1) for n in graph.nodes}
    return Plan.for_graph(graph, choices, segments=segments)


def _check_runs(graph, plan) -> Executor:
    ex = Executor(graph, plan)
    feeds = default_feeds(graph)
    got, want = ex.run(feeds), run_graph(graph, feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)
    return ex


def test_a_named_segment_is_one_step_and_matches_the_reference(residual, tmp_path: Path) -> None:
    plan = _ort_plan(residual, [PlanSegment("onnxruntime", 1, ["b", "c"])])
    path = plan.save(tmp_path / "plan.json")
    assert json.loads(path.read_text())["segments"] == [{"library": "onnxruntime", "threads": 1, "nodes": ["b", "c"]}]
    loaded = Plan.load(path)
    loaded.check_graph(residual)
    ex = _check_runs(residual, loaded)
    assert [s.name for s in ex.steps if s.kind == "node"] == ["a", "b..c"]


def test_no_segment_means_every_node_alone(residual) -> None:
    ex = _check_runs(residual, _ort_plan(residual, []))
    assert [s.name for s in ex.steps if s.kind == "node"] == ["a", "b", "c"]


def test_plans_from_choices_merge_fusable_runs(residual) -> None:
    plan = _ort_plan(residual, None)
    assert plan.segments is None and "segments" not in plan.to_dict()
    assert len([s for s in _check_runs(residual, plan).steps if s.kind == "node"]) == 1
    assert [s.nodes for s in plan.segments] == [["a", "b", "c"]]


def test_a_convex_segment_that_is_not_a_run_is_ordered_by_the_data(branches) -> None:
    ex = _check_runs(branches, _ort_plan(branches, [PlanSegment("onnxruntime", 1, ["a", "c"])]))
    assert [s.name for s in ex.steps if s.kind == "node"] == ["b", "a..c"]


def test_a_segment_that_is_not_convex_is_refused(residual) -> None:
    with pytest.raises(EdgetuneError, match="segment a..c is not convex"):
        Executor(residual, _ort_plan(residual, [PlanSegment("onnxruntime", 1, ["a", "c"])]))


def test_format_1_plans_load_and_merge_as_they_ran(residual, tmp_path: Path) -> None:
    d = _ort_plan(residual, None).to_dict()
    d["edgetune_plan"] = 1
    assert "segments" not in d
    path = tmp_path / "old.json"
    path.write_text(json.dumps(d))
    plan = Plan.load(path)
    assert plan.segments is None
    plan.check_graph(residual)
    assert plan.segments == merged_segments(residual, plan.choices)


@pytest.mark.parametrize("fmt", [0, 4, "2"])
def test_an_unknown_format_is_refused_in_one_line(residual, tmp_path: Path, fmt) -> None:
    d = _ort_plan(residual, None).to_dict()
    d["edgetune_plan"] = fmt
    path = tmp_path / "p.json"
    path.write_text(json.dumps(d))
    with pytest.raises(EdgetuneError, match=r"plan format .* is not one this edgetune reads \(1, 2, 3\)"):
        Plan.load(path)


@pytest.mark.parametrize("segment, message", [
    (PlanSegment("onnxruntime", 1, ["a", "zz"]), r"names unknown node\(s\) \['zz'\]"),
    (PlanSegment("onnxruntime", 2, ["b", "c"]), "chooses op.ort at 1 threads"),
    (PlanSegment("torch", 1, ["b", "c"]), r"segment 0 \(torch at 1 threads\)"),
    (PlanSegment("onnxruntime", 1, ["b", "c"], int8=["a"]), r"lists int8 node\(s\) \['a'\] it does not contain"),
    (PlanSegment("onnxruntime", 1, ["b", "c"], int8=["b"]), "has int8 nodes but the plan has no 'quantization'"),
])
def test_bad_segments_are_one_line_errors(residual, segment, message) -> None:
    with pytest.raises(EdgetuneError, match=message):
        _ort_plan(residual, [segment]).check_graph(residual)


def test_a_node_in_two_segments_is_refused(residual) -> None:
    plan = _ort_plan(residual, [PlanSegment("onnxruntime", 1, ["b", "c"]), PlanSegment("onnxruntime", 1, ["c"])])
    with pytest.raises(EdgetuneError, match=r"names node\(s\) \['c'\] twice"):
        plan.check_graph(residual)


def test_a_segment_on_a_library_that_is_not_installed_is_refused(residual) -> None:
    lib = Library("fake-absent", ("prims",), ThreadPool("fake-absent"), requires=("no_such_package_xyz",))
    registry._load_library("edgetune_no_such_package", lib)
    try:
        plan = _ort_plan(residual, [PlanSegment("fake-absent", 1, ["b", "c"])])
        with pytest.raises(EdgetuneError, match="runs on fake-absent, which is not usable here"):
            plan.check_graph(residual)
    finally:
        registry.unregister("fake-absent")


def test_precision_and_int8_nodes_round_trip_and_bad_ones_are_refused(residual, tmp_path: Path) -> None:
    plan = _ort_plan(residual, [PlanSegment("onnxruntime", 1, ["b", "c"], "fp32", ["c"])])
    plan.quantization = {"tensors": {"x": [0.0, 1.0]}}
    path = plan.save(tmp_path / "q.json")
    back = Plan.load(path)
    assert back.segments == plan.segments and back.quantization == plan.quantization
    assert "int8" in back.precisions and back.hash() == plan.hash()
    d = json.loads(path.read_text())
    assert d["edgetune_plan"] == 3 and d["segments"][0]["int8"] == ["c"] and "precision" not in d["segments"][0]
    d["segments"][0]["precision"] = "fp8"
    path.write_text(json.dumps(d))
    with pytest.raises(EdgetuneError, match=r"segment 0: 'precision' must be one of fp32, bf16, f16"):
        Plan.load(path)
