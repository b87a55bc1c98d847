"""The plan executor: converters between formats, ORT segment fusion, liveness, refusal of bad plans."""

import json

import numpy as np
import pytest

from edgetune import zoo
from edgetune.errors import EdgetuneError
from edgetune.graph import load_graph
from edgetune.graph.reference import default_feeds, run_graph
from edgetune.kernels import registry
from edgetune.kernels.base import FunctionKernel, Primitive
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import NodeChoice, Plan


@pytest.fixture(scope="module")
def resnet20():
    return load_graph(zoo.build_onnx("resnet20_cifar"), name="resnet20_cifar")


def plan_with(graph, pick):
    base = Plan.builtin("blas", graph, threads=1)
    for n in graph.nodes:
        p = pick(n)
        if p:
            base.choices[n.name] = NodeChoice(p, 1)
    return base


def test_mixed_layouts_insert_converters_and_match_reference(resnet20):
    convs = [n.name for n in resnet20.nodes if n.op == "Conv"]
    layouts = ["conv.onednn_nhwc.torch", "conv.onednn_blocked.torch", "conv.im2col.numpy", "conv.mlas.ort"]
    pick = {name: layouts[i % len(layouts)] for i, name in enumerate(convs)}
    plan = plan_with(resnet20, lambda n: pick.get(n.name))
    feeds = default_feeds(resnet20)
    ex = Executor(resnet20, plan, check_input=feeds)
    kinds = [s.kind for s in ex.steps]
    assert kinds.count("convert") >= 4  # NHWC and BLOCKED values must be converted for NCHW consumers
    conv_names = {s.primitive for s in ex.steps if s.kind == "convert"}
    assert any("nhwc" in c.lower() for c in conv_names) and any("blocked" in c.lower() for c in conv_names)
    ref = run_graph(resnet20, feeds)[resnet20.outputs[0]]
    got = ex.run(feeds)[resnet20.outputs[0]]
    assert np.max(np.abs(got - ref)) / np.max(np.abs(ref)) < 1e-4


def test_consecutive_ort_nodes_run_as_one_session(resnet20):
    def ort(n):
        return "conv.mlas.ort" if n.op == "Conv" else "gemm.mlas.ort" if n.op == "Gemm" else "op.ort"

    plan = plan_with(resnet20, ort)
    ex = Executor(resnet20, plan)
    assert len(ex.steps) == 1 and ex.steps[0].primitive.startswith("ort.segment")
    unfused = Executor(resnet20, plan, fuse=False)
    assert len(unfused.steps) == len(resnet20.nodes)
    feeds = default_feeds(resnet20, seed=3)
    a, b = ex.run(feeds)[resnet20.outputs[0]], unfused.run(feeds)[resnet20.outputs[0]]
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_liveness_frees_dead_values_and_plans_the_arena(resnet20):
    ex = Executor(resnet20, Plan.builtin("blas", resnet20, 1), check=False)
    freed = [f for s in ex.steps for f in s.free_after]
    assert len(freed) == len(set(freed)) and len(freed) >= len(resnet20.nodes) - 1
    biggest = max(resnet20.values[o].nbytes for n in resnet20.nodes for o in n.outputs)
    total = sum(resnet20.values[o].nbytes for n in resnet20.nodes for o in n.outputs)
    # a residual net needs at least producer + consumer + skip alive, far less than all values at once
    assert 2 * biggest <= ex.peak_activation_bytes < total / 3


def test_memory_report_counts_weights_by_precision(resnet20):
    fp32 = Executor(resnet20, Plan.builtin("blas", resnet20, 1), check=False).memory()
    half = plan_with(resnet20, lambda n: "conv.im2col.numpy.fp16w" if n.op == "Conv" else None)
    fp16 = Executor(resnet20, half).memory()
    params = sum(v.nbytes for v in resnet20.initializers.values())
    assert abs(fp32.weight_bytes - params) / params < 0.05
    assert fp16.weight_bytes_by_precision["fp16w"] < 0.6 * fp32.weight_bytes
    assert fp32.total_bytes == fp32.weight_bytes + fp32.workspace_bytes + fp32.peak_activation_bytes


def test_memory_report_counts_the_shared_workspace_once(resnet20):
    """Every numpy kernel of a plan takes its scratch from the executor's one workspace, sized by the largest
    request and counted once; scratch a kernel keeps itself (torch fp16w's fp32 weights) is added."""
    first = next(n.name for n in resnet20.nodes if n.op == "Conv")
    plan = plan_with(resnet20, lambda n: "conv.onednn.torch.fp16w" if n.name == first else None)
    ex = Executor(resnet20, plan)  # checked against the reference: sharing changes no output
    mem = ex.memory()
    kernels = [k for k, _ in ex.kernels.values()]
    shared = [k.shared_workspace_bytes for k in kernels]
    own = sum(k.workspace_bytes - k.shared_workspace_bytes for k in kernels)
    assert mem.shared_workspace_bytes == ex.workspace.nbytes == max(shared) > 0
    assert sum(shared) > 3 * max(shared)  # many kernels, one arena
    assert own > 0 and mem.workspace_bytes == own + max(shared) < sum(k.workspace_bytes for k in kernels)
    assert mem.largest_workspace_bytes == max(k.workspace_bytes for k in kernels)
    assert mem.resident_bytes == mem.weight_bytes + mem.workspace_bytes  # not measured: as reported
    assert mem.to_dict()["shared_workspace_bytes"] == max(shared)
    other = Executor(resnet20, plan, check=False)
    assert other.workspace is not ex.workspace  # one workspace per executor


def test_plan_json_round_trip_and_wrong_model(tmp_path, resnet20):
    plan = plan_with(resnet20, lambda n: "conv.onednn.torch" if n.op == "Conv" else None)
    path = plan.save(tmp_path / "plan.json")
    loaded = Plan.load(path)
    assert loaded.choices == plan.choices and loaded.graph_signature == plan.graph_signature
    assert json.loads(path.read_text())["edgetune_plan"] == 3
    mnist = load_graph(zoo.build_onnx("mnist_cnn"), name="mnist_cnn")
    with pytest.raises(EdgetuneError, match="made for model 'resnet20_cifar'"):
        Executor(mnist, loaded)


def test_bad_plans_are_refused_with_one_line(tmp_path, resnet20):
    first_conv = next(n for n in resnet20.nodes if n.op == "Conv")
    plan = plan_with(resnet20, lambda n: "conv.does_not_exist" if n is first_conv else None)
    with pytest.raises(EdgetuneError, match="unknown primitive 'conv.does_not_exist'"):
        Executor(resnet20, plan)
    stride2 = next(n for n in resnet20.nodes if n.op == "Conv" and n.attrs["strides"][0] == 2)
    plan = plan_with(resnet20, lambda n: "conv.winograd_f2.numpy" if n is stride2 else None)
    with pytest.raises(EdgetuneError, match="cannot run node") as e:
        Executor(resnet20, plan)
    assert "\n" not in str(e.value)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(EdgetuneError, match="junk.json: not a valid edgetune plan"):
        Plan.load(tmp_path / "junk.json")


class _Wrong(Primitive):
    """A deliberately wrong Conv (outputs scaled by 1.1), to check the executor's compile-time check."""

    name = "conv.test_wrong"
    library = "test"
    op_types = frozenset({"Conv"})

    def supports(self, node, graph):
        return None

    def prepare(self, node, ctx):
        good = registry.get("conv.im2col.numpy").prepare(node, ctx)
        return FunctionKernel(lambda x: [good(x)[0] * 1.1])


def test_plan_over_tolerance_is_refused(resnet20):
    registry.register(_Wrong())
    try:
        last_conv = [n for n in resnet20.nodes if n.op == "Conv"][-1]
        plan = plan_with(resnet20, lambda n: "conv.test_wrong" if n is last_conv else None)
        with pytest.raises(EdgetuneError, match="refused"):
            Executor(resnet20, plan)
    finally:
        registry.unregister("conv.test_wrong")
