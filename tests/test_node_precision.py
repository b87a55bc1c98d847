"""Per-node float precision from the measured design space (planning/node_precision.py): the exact optimum
with bf16 allowed becomes a configuration of the precision search only where the profile measured bf16 nodes
and the optimum takes some. A stand-in bf16 Conv (inputs rounded to bf16, then the reference) makes this hold
on any CPU; the real one (torch/oneDNN) exists only where the CPU has native bf16 (tests/test_kernels_torch.py)."""

from types import SimpleNamespace

import numpy as np
import pytest
from onnx import helper

from edgetune.graph import load_graph
from edgetune.graph.reference import default_feeds
from edgetune.kernels import registry
from edgetune.kernels.base import FunctionKernel, Kernel, PrepareContext
from edgetune.kernels.libraries.reference.prims import ReferencePrimitive
from edgetune.measure.db import ProfileDB, node_signature
from edgetune.measure.profiler import Profiler
from edgetune.measure.timing import Timing
from edgetune.planning import precision
from edgetune.planning.node_precision import node_precision_plans
from edgetune.runtime.executor import Executor
from tests.graph_cases import mk, vi
from tests.registered import registered

RNG = np.random.default_rng(5)
STAND_IN = "conv.bf16_rounding.test"


def bf16_round(x: np.ndarray) -> np.ndarray:
    """float32 -> the nearest bfloat16 (round to nearest even), back as float32."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return rounded.astype(np.uint32).view(np.float32)


class RoundingBf16Conv(ReferencePrimitive):
    """The reference Conv on bf16-rounded inputs: a bf16 primitive any CPU can run."""

    library = "numpy"
    precision = "bf16"
    tolerance = 3e-2
    measure_last = False

    def __init__(self) -> None:
        super().__init__("Conv")
        self.name = STAND_IN

    def prepare(self, node, ctx: PrepareContext) -> Kernel:
        right = super().prepare(node, ctx)
        return FunctionKernel(lambda *xs: right(*[bf16_round(x) for x in xs]))


@pytest.fixture
def stand_in():
    with registered(RoundingBf16Conv()):
        yield STAND_IN


def _two_convs():
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="c1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["y"], name="c2", pads=[1, 1, 1, 1])]
    inits = {"w1": RNG.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3,
             "w2": RNG.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2}
    return load_graph(mk(nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 8, 8, 8])], inits), name="two_convs")


def _fast(ms: float) -> Timing:
    return Timing(median_ms=ms, p10_ms=ms, p90_ms=ms, min_ms=ms, spread=0.0, runs=10, foreign_cores=0.0,
                  disturbed=False, ci_rel=0.0)


def test_the_optimum_with_bf16_allowed_is_offered_where_bf16_nodes_were_measured(tmp_path, stand_in):
    graph = _two_convs()
    db = ProfileDB(tmp_path / "p.sqlite", device_id="d", versions_id="v")
    Profiler(graph, db, [1], time_cap_s=0.01, isolate=False).run()
    # the stand-in was measured (verified against the reference within its tolerance); made the fastest
    # option of both convs by far, and without the segments measured whole (a whole-graph session runs this
    # tiny graph in a few us), the optimum takes it
    for conv in graph.nodes:
        assert db.get_verification(node_signature(conv, graph), stand_in).ok
        db.put_node(node_signature(conv, graph), stand_in, 1, _fast(1e-4))
    db.con.execute("DELETE FROM converters WHERE converter LIKE 'segment:%'")
    plans = node_precision_plans(graph, db, [1])
    assert len(plans) == 1
    name, plan, predicted = plans[0]
    assert name.startswith("per-node bf16 (2 nodes)") and predicted > 0 and plan.precisions == {"bf16"}
    assert {c.primitive for c in plan.choices.values()} == {stand_in}
    feeds = default_feeds(graph)
    ex = Executor(graph, plan)  # checked against the reference within the plan's bf16 tolerance
    assert ex.max_error is not None and 0 < ex.max_error < plan.effective_tolerance()
    assert ex.run(feeds)[graph.outputs[0]].shape == (1, 8, 8, 8)


def test_no_bf16_node_measured_means_no_configuration(tmp_path):
    graph = _two_convs()
    db = ProfileDB(tmp_path / "p.sqlite", device_id="d", versions_id="v")
    Profiler(graph, db, [1], time_cap_s=0.01, isolate=False).run()
    real_bf16 = {"conv.onednn.torch.bf16"} - set(registry.unavailable())
    plans = node_precision_plans(graph, db, [1])
    assert plans == [] or (real_bf16 and all("bf16" in p.precisions for _, p, _ in plans))


def test_a_per_node_int8_plan_over_budget_is_bisected_over_its_most_sensitive_int8_nodes(monkeypatch):
    """Nodes a..h int8 in the plan (x stays fp32), most sensitive first; the budget is met from 3 held fp32.
    The bisection re-plans with the k most sensitive int8 nodes held and probes 4, 2, 3: one evaluation each."""
    int8, fp32 = "conv.qlinear_u8s8_edges.ort", "conv.im2col.numpy"
    order = ["a", "x", "b", "c", "d", "e", "f", "g", "h"]
    plan = SimpleNamespace(choices={n: SimpleNamespace(primitive=fp32 if n == "x" else int8) for n in order})
    held: list[frozenset[str]] = []

    def replan(p, nodes):
        assert p == "int8"
        held.append(nodes)
        return (f"held {len(nodes)}", plan, 1.0)

    monkeypatch.setattr(precision, "_try_per_node", lambda search, ev, name, plan, console:
                        SimpleNamespace(meets_budget=len(held[-1]) >= 3))
    precision._bisect_per_node(SimpleNamespace(order=order), None, plan, replan, None)
    assert held == [frozenset("abcd"), frozenset("ab"), frozenset("abc")]
