"""Thread placement on CPUs with core clusters: which placements are offered, pinning, and plans that carry
one (saved, loaded, refused where the process may not use its cpus, pinned while they run)."""

import json
import os

import numpy as np
import pytest
from onnx import helper

from edgetune.device.placement import Placement, pinned, placements, usable_cpus
from edgetune.errors import EdgetuneError
from edgetune.graph import load_graph
from edgetune.kernels.base import FunctionKernel, Primitive
from edgetune.planning.placement import placed_plan
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import NodeChoice, Plan
from tests.graph_cases import mk, vi
from tests.registered import registered

RK3588 = [{"core": "Cortex-A55", "cpus": [0, 1, 2, 3], "capacity": 414},
          {"core": "Cortex-A76", "cpus": [4, 5, 6, 7], "capacity": 1024}]


def test_placements_are_all_cores_then_each_cluster():
    got = placements(RK3588, usable=set(range(8)))
    assert got == [Placement("all 8 cores", tuple(range(8))), Placement("4x Cortex-A55", (0, 1, 2, 3)),
                   Placement("4x Cortex-A76", (4, 5, 6, 7))]


def test_one_kind_of_core_or_one_usable_cluster_offers_nothing():
    assert placements([{"core": "Cortex-A72", "cpus": [0, 1, 2, 3], "capacity": None}], set(range(4))) == []
    assert placements(RK3588, usable={4, 5, 6, 7}) == []  # taskset to the big cores: nothing left to choose
    assert placements([], usable={0}) == []


def test_pinned_runs_the_block_on_the_cpus_and_restores_the_mask():
    before = os.sched_getaffinity(0)
    cpu = min(before)
    with pinned([cpu]):
        assert os.sched_getaffinity(0) == {cpu}
    assert os.sched_getaffinity(0) == before
    with pinned(None):
        assert os.sched_getaffinity(0) == before


class _AffinityProbe(Primitive):
    """A Relu that records the cpus its calling thread may run on."""

    name = "relu.affinity_probe.test"
    library = "numpy"
    op_types = frozenset({"Relu"})
    seen: list = []

    def supports(self, node, graph):
        return None

    def prepare(self, node, ctx):
        def run(x):
            self.seen.append(os.sched_getaffinity(0))
            return [np.maximum(x, 0)]
        return FunctionKernel(run)


@pytest.fixture
def relu():
    probe = _AffinityProbe()
    graph = load_graph(mk([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [1, 8])], [vi("y", None)]),
                       name="relu")
    with registered(probe):
        yield graph, probe


def test_a_placed_plan_runs_on_its_cpus_and_round_trips(relu, tmp_path):
    graph, probe = relu
    cpu = min(usable_cpus())
    plan = placed_plan(Plan.for_graph(graph, {"relu": NodeChoice(probe.name, 4)}), Placement("1x test core", (cpu,)))
    assert plan.choices["relu"].threads == 1 and plan.placement == {"label": "1x test core", "cpus": [cpu]}
    before = os.sched_getaffinity(0)
    ex = Executor(graph, plan)
    probe.seen.clear()
    ex.run({"x": np.ones((1, 8), np.float32)})
    assert probe.seen == [{cpu}] and os.sched_getaffinity(0) == before  # pinned for the inference only
    back = Plan.load(plan.save(tmp_path / "p.json"))
    assert back.placement == plan.placement and back.hash() == plan.hash()
    assert back.hash() != Plan.for_graph(graph, {"relu": NodeChoice(probe.name, 1)}).hash()


def test_a_placement_on_cpus_this_process_may_not_use_is_one_line(relu):
    graph, probe = relu
    far = max(usable_cpus()) + 64
    plan = placed_plan(Plan.for_graph(graph, {"relu": NodeChoice(probe.name, 1)}), Placement("elsewhere", (far,)))
    with pytest.raises(EdgetuneError, match=rf"may not run on cpu {far} \(usable: "):
        Executor(graph, plan)


@pytest.mark.parametrize("bad", [{"cpus": []}, {"cpus": [-1]}, {"cpus": "0-3"}, {"cpus": [True]}, [0, 1]])
def test_a_malformed_placement_is_refused_naming_the_file(relu, tmp_path, bad):
    graph, probe = relu
    d = Plan.for_graph(graph, {"relu": NodeChoice(probe.name, 1)}).to_dict()
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**d, "placement": bad}))
    with pytest.raises(EdgetuneError, match=f"{path}: not a valid edgetune plan \\('placement' must be"):
        Plan.load(path)
