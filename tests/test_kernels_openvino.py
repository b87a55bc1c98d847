"""OpenVINO as a kernel library: every primitive against the reference, segments, the executor's merging of
a second library's runs, and the library's descriptor (listed, or unavailable with the reason)."""

from __future__ import annotations

import dataclasses
import gc
import importlib.util

import numpy as np
import pytest

from edgetune import zoo
from edgetune.graph import load_graph
from edgetune.graph.ir import Activation, Graph, Node, Value
from edgetune.graph.reference import default_feeds, run_graph, run_node
from edgetune.kernels import registry
from edgetune.kernels.base import PrepareContext
from edgetune.kernels.library import Library, ThreadPool
from edgetune.kernels.segments import fusable_primitive, segment_kernel
from edgetune.kernels.verify import verify
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import NodeChoice, Plan
from edgetune.user_model import load_model
from tests.conv_cases import LAYER_CASES as CASES
from tests.conv_cases import conv_case, rel_err

pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino): its library is unavailable")
if "conv.cpu.openvino" in registry.unavailable():
    pytest.skip(f"OpenVINO is unusable here: {registry.unavailable()['conv.cpu.openvino']}", allow_module_level=True)

PRIMS = ["conv.cpu.openvino", "gemm.cpu.openvino", "op.openvino"]


def run(name, g, node, *xs, threads=1):
    prim = registry.get(name)
    assert prim.supports(node, g) is None
    k = prim.prepare(node, PrepareContext(g, threads=threads))
    out = k(*xs)
    assert len(out) == len([o for o in node.outputs if o])
    return out[0], k


def reference(g, node, xs):
    """The reference executor's outputs of `node` fed `xs` (its dynamic inputs, node order)."""
    it = iter(xs)
    inputs = [None if not i else g.initializers[i] if i in g.initializers else next(it) for i in node.inputs]
    return run_node(node, inputs)


# ---- Conv ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_conv_matches_reference(case):
    g, node, x, ref = conv_case(**CASES[case])
    y, k = run("conv.cpu.openvino", g, node, x)
    assert y.shape == ref.shape and y.dtype == np.float32
    assert rel_err(y, ref) < 1e-4
    assert rel_err(y, reference(g, node, [x])[0]) < 1e-4
    assert k.weight_bytes == sum(a.nbytes for a in g.initializers.values())


@pytest.mark.parametrize("act", [Activation("Relu"), Activation("Clip", {"min": 0.0, "max": 0.5}),
                                 Activation("LeakyRelu", {"alpha": 0.1}), Activation("HardSwish"),
                                 Activation("Swish")], ids=lambda a: a.op)
def test_fused_activation_is_applied(act):
    g, node, x, ref = conv_case(**CASES["3x3"], act=act)
    y, _ = run("conv.cpu.openvino", g, node, x)
    plain, _ = run("conv.cpu.openvino", *conv_case(**CASES["3x3"])[:2], x)
    assert rel_err(y, ref) < 1e-4 and rel_err(plain, ref) > 1e-2  # the activation changed the numbers


def test_compiled_for_fp32_at_the_thread_count_with_fresh_outputs():
    g, node, x, ref = conv_case(**CASES["batch2"])
    _, k = run("conv.cpu.openvino", g, node, x, threads=2)
    cm = k.compiled_model
    assert str(cm.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
    assert cm.get_property("INFERENCE_NUM_THREADS") == 2 and cm.get_property("NUM_STREAMS") == 1
    a, b = k(x)[0], k(x)[0]
    assert not np.shares_memory(a, b) and rel_err(a, ref) < 1e-4


def test_inputs_are_neither_modified_nor_kept():
    """Inputs are shared with OpenVINO during the call only: untouched, and a freed input is no hazard;
    inputs it cannot share (read-only, not C-contiguous) are copied."""
    g, node, x, ref = conv_case(**CASES["3x3"])
    _, k = run("conv.cpu.openvino", g, node, x)
    before = x.copy()
    k(x)
    np.testing.assert_array_equal(x, before)
    read_only = x.copy()
    read_only.flags.writeable = False
    strided = np.swapaxes(np.ascontiguousarray(np.swapaxes(x, 2, 3)), 2, 3)
    assert not strided.flags.c_contiguous
    for odd in (read_only, strided):
        assert rel_err(k(odd)[0], ref) < 1e-4
    for _ in range(3):
        tmp = x.copy()
        y = k(tmp)[0]
        del tmp
        gc.collect()
    assert rel_err(y, ref) < 1e-4


def test_declines_what_it_cannot_run():
    g, node, _, _ = conv_case(**CASES["3x3"])
    g.values["w"] = Value("w", g.initializers.pop("w").shape)
    assert "constant" in registry.get("conv.cpu.openvino").supports(node, g)
    x1 = Value("x", (1, 4, 10))
    n1 = Node("c", "Conv", ["x", "w"], ["y"], {"kernel_shape": [3], "pads": [1, 1]})
    g1 = Graph("t", [n1], ["x"], ["y"], {"x": x1, "y": Value("y", (1, 4, 10))}, {"w": np.ones((4, 4, 3), np.float32)})
    assert "4-D" in registry.get("conv.cpu.openvino").supports(n1, g1)


def test_switch_probe_runs():
    """The pool's probe prices thread-pool switches on a 3x3 depthwise conv, 64 channels at 28x28."""
    from edgetune.measure.switching import _probe_graph  # the probe's own graph (measure is above kernels)

    g, node, x = _probe_graph()
    y, _ = run(registry.pool_of("openvino").probe, g, node, x, threads=2)
    assert rel_err(y, reference(g, node, [x])[0]) < 1e-4


# ---- Gemm / MatMul ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("op,trans_b", [("Gemm", 0), ("Gemm", 1), ("MatMul", 0)])
def test_gemm(op, trans_b):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 20)).astype(np.float32)
    bmat = rng.standard_normal((12, 20) if trans_b else (20, 12)).astype(np.float32)
    c = rng.standard_normal(12).astype(np.float32)
    act = Activation("Relu")
    if op == "Gemm":
        node = Node("g", op, ["a", "b", "c"], ["y"], {"transB": trans_b, "alpha": 0.5, "beta": 2.0}, act)
        inits = {"b": bmat, "c": c}
    else:
        node, inits = Node("g", op, ["a", "b"], ["y"], {}, act), {"b": bmat}
    g = Graph("t", [node], ["a"], ["y"], {"a": Value("a", a.shape), "y": Value("y", (3, 12))}, inits)
    y, k = run("gemm.cpu.openvino", g, node, a)
    ref = reference(g, node, [a])[0]
    assert rel_err(y, ref) < 1e-4 and ref.min() == 0 and k.weight_bytes > 0


# ---- any other op ---------------------------------------------------------------------------------------


def other_ops():
    rng = np.random.default_rng(3)
    x, z = (rng.standard_normal((1, 4, 6, 6)).astype(np.float32) for _ in range(2))
    sm = rng.standard_normal((2, 10)).astype(np.float32)
    return {
        "relu": (Node("n", "Relu", ["x"], ["y"]), [x], {}, x.shape),
        "add_relu": (Node("n", "Add", ["x", "z"], ["y"], {}, Activation("Relu")), [x, z], {}, x.shape),
        "square": (Node("n", "Mul", ["x", "x"], ["y"]), [x, x], {}, x.shape),
        "maxpool": (Node("n", "MaxPool", ["x"], ["y"], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                        "pads": [1, 1, 1, 1]}), [x], {}, (1, 4, 3, 3)),
        "gap": (Node("n", "GlobalAveragePool", ["x"], ["y"]), [x], {}, (1, 4, 1, 1)),
        "softmax": (Node("n", "Softmax", ["x"], ["y"], {"axis": 1}), [sm], {}, sm.shape),
        "reshape": (Node("n", "Reshape", ["x"], ["y"], {"shape": [1, 144]}), [x], {}, (1, 144)),
        "split": (Node("n", "Split", ["x", "s"], ["y", "y2"], {"axis": 1}, opset=13), [x],
                  {"s": np.array([1, 3], np.int64)}, (1, 1, 6, 6)),
    }


@pytest.mark.parametrize("case", list(other_ops()))
def test_other_ops_match_reference(case):
    node, xs, inits, y_shape = other_ops()[case]
    dyn = [i for i in node.inputs if i and i not in inits]
    values = {v: Value(v, a.shape) for v, a in zip(dyn, xs, strict=True)} | {"y": Value("y", y_shape)}
    if "y2" in node.outputs:
        values["y2"] = Value("y2", (1, 3, 6, 6))
    g = Graph("t", [node], list(dict.fromkeys(dyn)), [o for o in node.outputs], values, inits)
    prim = registry.get("op.openvino")
    k = prim.prepare(node, PrepareContext(g, threads=1))
    got, ref = k(*xs), reference(g, node, xs)
    assert len(got) == len(ref)
    for a, b in zip(got, ref, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert verify(prim, node, g).ok


def test_op_openvino_is_a_candidate_for_every_op_but_the_dedicated_ones():
    prim = registry.get("op.openvino")
    assert all(prim.runs(op) for op in ("Relu", "Softmax", "Einsum", "TopK", "LayerNormalization"))
    assert not any(prim.runs(op) for op in ("Conv", "Gemm", "MatMul"))
    assert registry.get("gemm.cpu.openvino").runs("MatMul") and not registry.get("conv.cpu.openvino").runs("Relu")


# ---- segments and the executor ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist():
    return load_model("mnist_cnn")


@pytest.fixture(scope="module")
def resnet20():
    return load_graph(zoo.build_onnx("resnet20_cifar"), name="resnet20_cifar")


def test_a_run_of_nodes_is_one_compiled_model(mnist):
    feeds = default_feeds(mnist)
    ref = run_graph(mnist, feeds, keep=True)
    nodes = mnist.nodes[1:5]  # conv2+relu, maxpool, flatten, fc1+relu
    kernel, ins, outs = segment_kernel(mnist, nodes, 2, "stop", library="openvino")
    assert ins == [mnist.nodes[0].outputs[0]] and outs == [nodes[-1].outputs[0]]
    got = kernel(*[ref[v] for v in ins])
    assert len(got) == 1 and rel_err(got[0], ref[outs[0]]) < 1e-4
    assert kernel.weight_bytes == sum(mnist.initializers[i].nbytes for n in nodes for i in n.inputs
                                      if i in mnist.initializers)


def test_the_whole_graph_as_one_segment_matches_the_reference(resnet20):
    feeds = default_feeds(resnet20, seed=2)
    kernel, ins, outs = segment_kernel(resnet20, resnet20.nodes, 1, "on", library="openvino")
    assert ins == resnet20.inputs and outs == resnet20.outputs
    ref = run_graph(resnet20, feeds)
    got = kernel(*[feeds[v] for v in ins])
    assert rel_err(got[0], ref[outs[0]]) < 1e-4


def test_a_plan_all_on_openvino_runs_as_one_step(resnet20):
    """Segment merging works for a second library with no change to the executor."""
    plan = Plan.for_graph(resnet20, {n.name: NodeChoice(fusable_primitive(n, "openvino"), 2) for n in resnet20.nodes})
    ex = Executor(resnet20, plan)  # checks its outputs against the reference at compile time
    assert len(ex.steps) == 1 and ex.steps[0].primitive == f"openvino.segment[{len(resnet20.nodes)}]"
    assert ex.libraries == {"openvino"} and ex.max_error < 1e-4
    unfused = Executor(resnet20, plan, fuse=False, check=False)
    assert len(unfused.steps) == len(resnet20.nodes)
    feeds = default_feeds(resnet20, seed=3)
    out = resnet20.outputs[0]
    np.testing.assert_allclose(ex.run(feeds)[out], unfused.run(feeds)[out], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ex.run(feeds)[out], run_graph(resnet20, feeds)[out], rtol=1e-4, atol=1e-4)


# ---- the library's descriptor ------------------------------------------------------------------------------


def test_the_registry_lists_the_library_its_pool_and_primitives():
    lib = registry.library("openvino")
    assert lib in registry.installed_libraries() and lib.requires == ("openvino",)
    assert lib.describe() == {"library": "openvino", "pool": "openvino", "requires": ["openvino"], "segments": True}
    pool = registry.pool_of("openvino")
    assert pool in registry.pools() and pool.set_threads is None and pool.probe == "conv.cpu.openvino"
    prims = [p for p in registry.primitives() if p.library == "openvino"]
    assert sorted(p.name for p in prims) == sorted(PRIMS)
    assert all(p.fuses and p.precision == "fp32" and not p.measure_last for p in prims)
    pool.warm_up(1)


def test_fusable_primitive_per_op():
    assert [fusable_primitive(Node("n", op, ["x"], ["y"]), "openvino") for op in ("Conv", "MatMul", "Gemm", "Add")] \
        == ["conv.cpu.openvino", "gemm.cpu.openvino", "gemm.cpu.openvino", "op.openvino"]


def test_missing_openvino_makes_the_library_unavailable_with_the_reason(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "openvino" else real_find_spec(n, *a))
    lib = dataclasses.replace(registry.library("openvino"), name="openvino-simulated-missing")
    try:
        registry._load_library("edgetune.kernels.libraries.openvino", lib)
        assert registry.unavailable()["openvino-simulated-missing"] == "library not installed: openvino"
    finally:
        registry.unregister("openvino-simulated-missing")
    fake = Library("fake-ov", ("prims",), ThreadPool("fake-ov"), requires=("openvino_not_installed_xyz",))
    try:
        registry._load_library("edgetune_no_such_package", fake)
        assert registry.unavailable()["fake-ov"] == "library not installed: openvino_not_installed_xyz"
    finally:
        registry.unregister("fake-ov")
