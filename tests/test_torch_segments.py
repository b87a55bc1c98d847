"""torch as a segment backend: each lowered op against the reference on random inputs (asymmetric pads,
grouped convolution, ceil_mode pooling, broadcasting), whole zoo models as one TorchScript module, what it
refuses and why, plans mixing torch and ONNX Runtime segments saved, loaded and run, and the profiler's
rule for torch's blocks (measured only where its whole graph came close to the fastest other backend's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgetune.graph.ir import Activation, Graph, Node, Value
from edgetune.graph.reference import default_feeds, run_graph, run_node
from edgetune.kernels import registry
from edgetune.kernels.base import PrepareContext
from edgetune.kernels.library import SegmentVariant
from edgetune.kernels.segments import fusable_primitive, segment_kernel, segment_signature
from edgetune.kernels.verify import verify
from edgetune.measure.db import ProfileDB, node_signature
from edgetune.measure.profiler import keyed_segment_candidates
from edgetune.measure.segment_candidates import PROBE_FACTOR, promising, segment_candidates
from edgetune.measure.tasks import segment_key
from edgetune.measure.timing import Timing
from edgetune.planning.candidates import whole_graph_candidates
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import NodeChoice, Plan, PlanSegment
from edgetune.search.space import DesignSpace, Option
from tests.conv_cases import LAYER_CASES, conv_case, rel_err
from tests.test_plan_segments import _graph

pytest.importorskip("torch", reason="torch is not installed (optional on ARMv8.0 boards)")

CONV, GEMM, OP = "conv.jit.torch", "gemm.jit.torch", "op.jit.torch"
rng = np.random.default_rng(11)


def randn(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def one_node(op: str, inputs: dict, attrs: dict | None = None, act: Activation | None = None,
             consts: dict | None = None, n_out: int = 1) -> tuple[Graph, Node, list[np.ndarray]]:
    """(graph, node, dynamic input arrays) for one node, its output shapes from the reference."""
    consts = consts or {}
    names = list(inputs) + list(consts)
    outs = ["y"] if n_out == 1 else [f"y{i}" for i in range(n_out)]
    node = Node("n", op, names, outs, dict(attrs or {}), act, opset=17)
    ref = run_node(node, [inputs.get(v, consts.get(v)) for v in names])
    values = {v: Value(v, a.shape) for v, a in inputs.items()}
    values |= {o: Value(o, r.shape) for o, r in zip(outs, ref, strict=True)}
    g = Graph("t", [node], list(inputs), outs, values, {k: np.asarray(v) for k, v in consts.items()})
    return g, node, list(inputs.values())


def check(g: Graph, node: Node, xs: list[np.ndarray], tol: float = 1e-4) -> None:
    """The node's torch segment and its one-node primitive both match the reference within `tol`."""
    assert registry.get(fusable_primitive(node, "torch")).supports(node, g) is None
    kernel, ins, outs = segment_kernel(g, [node], 1, "stop", library="torch")
    feeds = dict(zip(g.inputs, xs, strict=True))
    ref = run_node(node, [feeds.get(v, g.initializers.get(v)) if v else None for v in node.inputs])
    got = kernel(*[feeds[v] for v in ins])
    assert len(got) == len(ref)
    for y, r in zip(got, ref, strict=True):
        assert y.shape == r.shape and y.dtype == np.float32
        assert rel_err(y, r) < tol


# ---- ops -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", LAYER_CASES)
def test_conv_matches_reference(case):
    g, node, x, _ = conv_case(**LAYER_CASES[case])
    check(g, node, [x])


@pytest.mark.parametrize("act", [Activation("Relu"), Activation("Clip", {"min": 0.0, "max": 6.0}),
                                 Activation("LeakyRelu", {"alpha": 0.1}), Activation("Sigmoid"),
                                 Activation("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), Activation("HardSwish"),
                                 Activation("Tanh"), Activation("Swish")], ids=lambda a: a.op)
def test_fused_activation_is_applied(act):
    g, node, x, _ = conv_case(**LAYER_CASES["groups2"], act=act)
    check(g, node, [x])


def test_asymmetric_pads_of_a_grouped_dilated_conv():
    g, node, x, _ = conv_case(n=1, c=8, h=11, w=10, co=12, k=3, group=4, dil=2, pads=[2, 0, 1, 3], stride=2)
    check(g, node, [x])


@pytest.mark.parametrize("trans_a, trans_b, alpha, beta, c_shape", [
    (0, 1, 1.0, 1.0, (5,)), (0, 0, 0.5, 2.0, (1, 5)), (1, 1, 1.0, 0.5, (3, 5)), (0, 1, 2.0, 1.0, None),
    (0, 0, 1.0, 1.0, ())])
def test_gemm(trans_a, trans_b, alpha, beta, c_shape):
    a = randn(4, 3) if trans_a else randn(3, 4)
    consts = {"b": randn(5, 4) if trans_b else randn(4, 5)} | ({"c": randn(*c_shape)} if c_shape is not None else {})
    check(*one_node("Gemm", {"a": a}, {"transA": trans_a, "transB": trans_b, "alpha": alpha, "beta": beta},
                    consts=consts))


def test_gemm_with_a_dynamic_b():
    check(*one_node("Gemm", {"a": randn(3, 4), "b": randn(5, 4)}, {"transB": 1, "alpha": 0.5}))


@pytest.mark.parametrize("a_shape, b_shape, b_const", [((3, 4), (4, 6), True), ((2, 3, 4), (4, 6), True),
                                                       ((2, 3, 4), (2, 4, 5), False), ((4,), (4, 3), True)])
def test_matmul(a_shape, b_shape, b_const):
    b = {"b": randn(*b_shape)}
    check(*one_node("MatMul", {"a": randn(*a_shape), **({} if b_const else b)}, consts=b if b_const else None))


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("shapes", [((1, 4, 5, 5), (1, 4, 1, 1)), ((5,), (2, 4, 3, 5)), ((1, 4, 5, 5), ())],
                         ids=["channel", "row", "scalar"])
def test_binary_broadcasts(op, shapes):
    a, b = randn(*shapes[0]), randn(*shapes[1]) + (3.0 if op == "Div" else 0.0)
    check(*one_node(op, {"a": a, "b": b}))
    check(*one_node(op, {"a": a}, consts={"b": b}))  # a constant operand held by the module


def test_pow_and_a_node_reading_one_value_twice():
    check(*one_node("Pow", {"a": np.abs(randn(2, 3)) + 0.1}, consts={"b": np.float32(1.5)}))
    node, x = Node("n", "Mul", ["x", "x"], ["y"]), randn(2, 6)
    g = Graph("t", [node], ["x"], ["y"], {"x": Value("x", x.shape), "y": Value("y", x.shape)}, {})
    prim = registry.get(OP)
    k = prim.prepare(node, PrepareContext(g))
    np.testing.assert_allclose(k(x, x)[0], x * x, rtol=1e-6)
    assert verify(prim, node, g).ok


@pytest.mark.parametrize("op, attrs", [("Relu", {}), ("Clip", {"min": -0.5, "max": 0.5}), ("Clip", {"max": 0.2}),
                                       ("LeakyRelu", {"alpha": 0.2}), ("Sigmoid", {}),
                                       ("HardSigmoid", {"alpha": 0.25, "beta": 0.45}), ("HardSwish", {}),
                                       ("Tanh", {}), ("Exp", {}), ("Erf", {}), ("Neg", {}), ("Abs", {}),
                                       ("Gelu", {}), ("Gelu", {"approximate": "tanh"})])
def test_unary(op, attrs):
    check(*one_node(op, {"x": randn(2, 3, 4) * 3}, attrs))


def test_sqrt():
    check(*one_node("Sqrt", {"x": np.abs(randn(2, 7)) + 0.01}))


POOLS = [
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 0, 0, 0], "ceil_mode": 1}, 14),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}, 13),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 1, 2, 0]}, 12),
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [1, 1], "dilations": [2, 2], "pads": [1, 1, 1, 1]}, 9),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}, 12),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, 12),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, 14),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 1, 1], "ceil_mode": 1,
                     "count_include_pad": 1}, 11),
    ("AveragePool", {"kernel_shape": [2, 3], "strides": [2, 1], "pads": [0, 2, 1, 0]}, 10),
    # asymmetric pads and a ceil_mode overhang past them: padded explicitly, the overhang never counted
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 0, 0], "ceil_mode": 1,
                     "count_include_pad": 1}, 11),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 0, 0], "ceil_mode": 1}, 11),
]


@pytest.mark.parametrize("op, attrs, h", POOLS)
def test_pools(op, attrs, h):
    check(*one_node(op, {"x": randn(1, 3, h, h + 1)}, attrs))


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pools(op):
    check(*one_node(op, {"x": randn(2, 5, 6, 7)}))


def test_normalisations():
    c = 6
    x = randn(2, c, 5, 5)
    check(*one_node("BatchNormalization", {"x": x}, {"epsilon": 1e-3},
                    consts={"s": randn(c), "b": randn(c), "m": randn(c), "v": np.abs(randn(c)) + 0.5}))
    check(*one_node("LayerNormalization", {"x": randn(2, 7, 12)}, {"axis": -1, "epsilon": 1e-5},
                    consts={"s": randn(12), "b": randn(12)}))
    check(*one_node("LRN", {"x": x}, {"size": 3, "alpha": 1e-2, "beta": 0.75, "bias": 1.0}))
    check(*one_node("PRelu", {"x": x}, consts={"slope": randn(c, 1, 1)}))


@pytest.mark.parametrize("op, attrs, shape", [
    ("Flatten", {"axis": 1}, (2, 3, 4, 5)), ("Reshape", {"shape": [2, -1, 5]}, (2, 3, 4, 5)),
    ("Squeeze", {"axes": [1]}, (2, 1, 4)), ("Unsqueeze", {"axes": [0, 3]}, (2, 4, 5)),
    ("Transpose", {"perm": [0, 2, 3, 1]}, (2, 3, 4, 5)), ("Transpose", {}, (2, 3, 4)),
    ("Softmax", {"axis": 1}, (2, 5, 3)), ("Softmax", {}, (2, 5, 3)),
    ("ReduceMean", {"axes": [1], "keepdims": 0}, (2, 5, 3)), ("ReduceMean", {"axes": [-1, 1]}, (2, 5, 3)),
    ("ReduceSum", {"axes": [2]}, (2, 5, 3)), ("ReduceMax", {"keepdims": 0}, (2, 5, 3)),
    ("Pad", {"pads": [0, 0, 1, 2, 0, 1, 0, 3], "mode": "constant", "value": 0.5}, (1, 2, 4, 4)),
    ("Pad", {"pads": [0, 0, -1, 1, 0, 0, 2, -1], "mode": "constant"}, (1, 2, 4, 4)),
    ("Slice", {"starts": [0], "ends": [32], "axes": [2], "steps": [2]}, (1, 2, 9, 4)),
    ("Slice", {"starts": [1, -3], "ends": [2**62, -1], "axes": [1, 3]}, (1, 4, 3, 6)),
    ("Gather", None, (3, 5, 4)),
])
def test_data_movement(op, attrs, shape):
    if op == "Gather":
        check(*one_node(op, {"x": randn(*shape)}, {"axis": 1}, consts={"i": np.array([[4, -1], [0, 2]])}))
        check(*one_node(op, {"x": randn(*shape)}, {"axis": 0}, consts={"i": np.array(-2)}))
        return
    check(*one_node(op, {"x": randn(*shape)}, attrs))


def test_concat_with_a_constant_and_split():
    check(*one_node("Concat", {"a": randn(1, 3, 4), "b": randn(1, 2, 4)}, {"axis": 1}, consts={"c": randn(1, 1, 4)}))
    check(*one_node("Split", {"x": randn(2, 9, 3)}, {"axis": 1}, consts={"s": np.array([2, 3, 4])}, n_out=3))


@pytest.mark.parametrize("attrs, out", [
    ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}, (10, 12)),
    ({"mode": "nearest", "coordinate_transformation_mode": "half_pixel"}, (15, 18)),
    ({"mode": "linear", "coordinate_transformation_mode": "half_pixel"}, (9, 13)),
    ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, (10, 7))])
def test_resize(attrs, out):
    x = randn(1, 2, 5, 6)
    sizes = np.array([1, 2, *out], np.int64)
    check(*one_node("Resize", {"x": x}, attrs, consts={"roi": np.zeros(0, np.float32),
                                                       "scales": np.zeros(0, np.float32), "sizes": sizes}))


@pytest.mark.parametrize("pads, extra", [([1, 1, 1, 1], [0, 0]), ([0, 1, 2, 0], [1, 0])])
def test_conv_transpose(pads, extra):
    check(*one_node("ConvTranspose", {"x": randn(1, 4, 5, 6)},
                    {"strides": [2, 2], "pads": pads, "output_padding": extra, "kernel_shape": [3, 3]},
                    consts={"w": randn(4, 3, 3, 3), "b": randn(3)}))


# ---- what it refuses ----------------------------------------------------------------------------------

def test_unsupported_nodes_say_why_and_are_listed_as_declined():
    g, node, _ = one_node("Einsum", {"a": randn(2, 3), "b": randn(3, 4)}, {"equation": "ij,jk->ik"})
    declined = {p.name: why for p, why in registry.candidates(node, g)}  # what `edgetune primitives` shows
    assert declined[OP] == "Einsum is not lowered to torch"
    with pytest.raises(ValueError, match="no fusable primitive for Einsum"):
        fusable_primitive(node, "torch")
    g, node, _ = one_node("Pad", {"x": randn(1, 2, 4, 4)}, {"pads": [0, 0, 1, 1, 0, 0, 1, 1], "mode": "reflect"})
    assert registry.get(OP).supports(node, g) == "Pad mode reflect is not lowered (constant only)"
    g, node, _ = one_node("Resize", {"x": randn(1, 2, 4, 4)}, {"mode": "cubic"},
                          consts={"roi": np.zeros(0, np.float32), "scales": np.array([1, 1, 2, 2], np.float32)})
    assert registry.get(OP).supports(node, g) == "Resize mode cubic is not lowered"
    ints = Node("n", "Add", ["i", "j"], ["k"])
    gi = Graph("t", [ints], ["i", "j"], ["k"], {v: Value(v, (4,), "int64") for v in "ijk"}, {})
    assert "float32 only" in registry.get(OP).supports(ints, gi)


def test_a_non_plain_variant_is_refused():
    g, node, _, _ = conv_case(**LAYER_CASES["3x3"])
    for variant in (SegmentVariant(precision="bf16"), SegmentVariant(rewrite=lambda m: m)):
        with pytest.raises(ValueError, match="fp32 only"):
            segment_kernel(g, [node], 1, "stop", library="torch", variant=variant)


def test_the_package_imports_no_torch_at_package_level():
    code = ("import sys, edgetune.kernels.libraries.torch as m; m.fusable_primitive; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- kernels, whole models, plans ------------------------------------------------------------------------

def test_outputs_never_alias_the_inputs_which_stay_untouched():
    g = _graph([("a", "Relu", ["x"]), ("b", "Flatten", ["a"])])
    g.values["b"] = Value("b", (1, 256))
    reshape_only, ins, _ = segment_kernel(g, g.nodes[1:], 1, "stop", library="torch")
    x = randn(1, 4, 8, 8)
    before = x.copy()
    (y,) = reshape_only(x)
    assert not np.may_share_memory(x, y) and np.array_equal(y, x.reshape(1, -1))
    whole, _, _ = segment_kernel(g, g.nodes, 1, "stop", library="torch")
    whole(x)
    np.testing.assert_array_equal(x, before)


def _zoo(name: str) -> Graph:
    from edgetune.user_model import load_model

    return load_model(name)


@pytest.fixture(scope="module")
def resnet20() -> Graph:
    return _zoo("resnet20_cifar")


@pytest.mark.parametrize("model", ["resnet20_cifar", "squeezenet1_1"])
def test_a_whole_zoo_model_is_one_module(model, resnet20):
    g = resnet20 if model == "resnet20_cifar" else _zoo(model)
    feeds = default_feeds(g, seed=2)
    kernel, ins, outs = segment_kernel(g, g.nodes, 2, "on", library="torch")
    assert ins == g.inputs and outs == g.outputs
    assert kernel.weight_bytes == sum(a.nbytes for a in g.initializers.values())
    assert "mkldnn" in str(kernel.module.graph)  # optimised for oneDNN, not the frozen fallback
    assert rel_err(kernel(*[feeds[v] for v in ins])[0], run_graph(g, feeds)[outs[0]]) < 1e-4


def test_a_plan_with_torch_and_ort_segments_saves_loads_and_runs(resnet20, tmp_path: Path):
    g, half = resnet20, len(resnet20.nodes) // 2
    first, second = [n.name for n in g.nodes[:half]], [n.name for n in g.nodes[half:]]
    choices = {n.name: NodeChoice(fusable_primitive(n, "torch" if i < half else "onnxruntime"), 1)
               for i, n in enumerate(g.nodes)}
    plan = Plan.for_graph(g, choices, segments=[PlanSegment("torch", 1, first), PlanSegment("onnxruntime", 1, second)])
    loaded = Plan.load(plan.save(tmp_path / "plan.json"))
    assert [(s.library, s.nodes) for s in loaded.segments] == [("torch", first), ("onnxruntime", second)]
    ex = Executor(g, loaded)  # checks its outputs against the reference at compile time
    assert [s.primitive for s in ex.steps] == [f"torch.segment[{half}]", f"ort.segment[{len(g.nodes) - half}]"]
    assert ex.libraries == {"torch", "onnxruntime"} and ex.max_error < 1e-4
    feeds = default_feeds(g, seed=5)
    out = g.outputs[0]
    assert rel_err(ex.run(feeds)[out], run_graph(g, feeds)[out]) < 1e-4


def test_the_library_descriptor():
    lib = registry.library("torch")
    assert lib.describe() == {"library": "torch", "pool": "torch", "requires": ["torch"], "segments": True}
    assert lib.probe_first and not registry.library("onnxruntime").probe_first
    prims = {p.name: p for p in registry.primitives() if p.name in (CONV, GEMM, OP)}
    assert all(p.library == "torch" and p.fuses and p.measure_last for p in prims.values()) and len(prims) == 3
    assert [fusable_primitive(Node("n", op, ["x"], ["y"]), "torch") for op in ("Conv", "MatMul", "Gemm", "Add")] \
        == [CONV, GEMM, GEMM, OP]


# ---- which torch segments the profiler measures ------------------------------------------------------------

def test_a_probe_first_library_gets_its_blocks_only_when_wanted():
    g = _graph([("a1", "Relu", ["x"]), ("b1", "Sigmoid", ["a1"]), ("c1", "Add", ["x", "b1"]),
                ("a2", "Relu", ["c1"]), ("b2", "Sigmoid", ["a2"]), ("c2", "Add", ["c1", "b2"])])
    every = segment_candidates(g, ["torch"], [1, 2], lambda lib, n: True)
    probed = segment_candidates(g, ["torch"], [1, 2], lambda lib, n: True, blocks_wanted=lambda lib, t: t == 2)
    assert {c.kind for c in every} == {"whole graph", "blocks"}
    assert {(c.kind, c.threads) for c in probed} == {("whole graph", 1), ("whole graph", 2), ("blocks", 2)}
    not_b2 = segment_candidates(g, ["torch"], [1], lambda lib, n: n.name != "b2", blocks_wanted=lambda lib, t: False)
    assert [(c.kind, c.nodes) for c in not_b2] == [("run", ("a1", "b1", "c1", "a2"))]  # its maximal runs
    assert promising(1.4, [1.0, 3.0]) and not promising(1.6, [1.0]) and promising(9.0, []) \
        and not promising(None, [1.0]) and PROBE_FACTOR == 1.5


def _ms(ms: float) -> Timing:
    return Timing(median_ms=ms, p10_ms=ms, p90_ms=ms, min_ms=ms, spread=0.0, runs=5, foreign_cores=0.0,
                  disturbed=False, ci_rel=0.01)


@pytest.mark.parametrize("torch_ms, blocks", [(None, False), (1.6, False), (1.4, True)])
def test_torch_blocks_are_candidates_once_its_whole_graph_came_close(tmp_path, torch_ms, blocks):
    g = _graph([("a1", "Relu", ["x"]), ("b1", "Sigmoid", ["a1"]), ("c1", "Add", ["x", "b1"]),
                ("a2", "Relu", ["c1"]), ("b2", "Sigmoid", ["a2"]), ("c2", "Add", ["c1", "b2"])])
    sigs = {n.name: node_signature(n, g) for n in g.nodes}
    with ProfileDB(tmp_path / "p.sqlite", device_id="d", versions_id="v") as db:
        for n in g.nodes:
            for lib in ("torch", "onnxruntime"):
                db.put_verification(sigs[n.name], fusable_primitive(n, lib), True, 0.0)
        whole = segment_signature(g, g.nodes, sigs)
        db.put_converter(segment_key("onnxruntime", whole, True), (), 1, _ms(1.0))
        if torch_ms is not None:
            db.put_converter(segment_key("torch", whole, True), (), 1, _ms(torch_ms))
        cands = [c for c, _ in keyed_segment_candidates(g, db, [1], sigs)]
    kinds = {lib: {c.kind for c in cands if c.library == lib} for lib in ("torch", "onnxruntime")}
    assert kinds["onnxruntime"] == {"whole graph", "blocks"}
    assert kinds["torch"] == ({"whole graph", "blocks"} if blocks else {"whole graph"})


@pytest.mark.parametrize("torch_ms, measured", [(1.4, True), (1.6, False)])
def test_whole_graph_on_torch_is_measured_end_to_end_only_where_it_came_close(torch_ms, measured):
    def whole(lib: str, threads: int, ms: float, sid: int) -> Option:
        return Option(f"segment{sid}:{lib}@{threads}", ms / 2, group=sid,
                      meta={"library": lib, "threads": threads, "segment_kind": "whole graph", "segment_ms": ms})

    opts = [[whole("onnxruntime", 2, 0.8, 0), whole("onnxruntime", 1, 1.0, 1), whole("torch", 1, torch_ms, 2)]
            for _ in range(2)]
    space = DesignSpace(nodes=["a", "b"], options=opts, edges=[(0, 1)], edge_cost=[np.zeros((3, 3))])
    names = [name for name, _ in whole_graph_candidates(space)]
    # ORT at all cores is the peer's own candidate; ORT at 1 thread always; torch only within PROBE_FACTOR
    assert names == ["whole graph on onnxruntime, 1 thread", *(["whole graph on torch, 1 thread"] if measured else [])]
