"""LiteRT/XNNPACK as a kernel library: the ONNX -> TFLite converter per op kind against the reference, the
NHWC edges, padding and depthwise cases, whole models as one segment, the executor merging its runs, the
thread count, what it refuses, and the library's descriptor (listed, or unavailable with the reason)."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from onnx import helper

from edgetune.graph import load_graph
from edgetune.graph.ir import Activation, Graph, Node, Value
from edgetune.graph.reference import default_feeds, run_graph, run_node
from edgetune.kernels import registry
from edgetune.kernels.base import FP32, FP32_NHWC, PrepareContext
from edgetune.kernels.library import SegmentVariant
from edgetune.kernels.segments import fusable_primitive, segment_kernel
from edgetune.kernels.verify import verify
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import NodeChoice, Plan
from edgetune.user_model import load_model
from tests.conv_cases import LAYER_CASES as CASES
from tests.conv_cases import conv_case, rel_err
from tests.graph_cases import mk, vi

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (pip install edgetune[litert])")
pytest.importorskip("tflite", reason="tflite (the TFLite schema's builders) is not installed")
if "conv.xnnpack.litert" in registry.unavailable():
    pytest.skip(f"LiteRT is unusable here: {registry.unavailable()['conv.xnnpack.litert']}", allow_module_level=True)

import tflite  # noqa: E402 - after the skip

from edgetune.kernels.libraries.litert import convert as convert_module  # noqa: E402
from edgetune.kernels.libraries.litert import runner  # noqa: E402
from edgetune.kernels.libraries.litert.convert import ConversionError  # noqa: E402

CONV, GEMM, OP = "conv.xnnpack.litert", "gemm.xnnpack.litert", "op.xnnpack.litert"
CONV_NCHW = "conv.xnnpack_nchw.litert"


def to_nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def from_nhwc(y):
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y


def ops_of(kernel) -> list[str]:
    """The TFLite operators of a kernel's model (XNNPACK's DELEGATE nodes left out)."""
    return [op["op_name"] for op in kernel.interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]


def one_node(op, inputs, attrs=None, act=None, consts=None):
    """(graph, node, dynamic input arrays) for one node; `inputs` name -> array (dynamic), `consts` name -> array."""
    consts = consts or {}
    names = list(inputs) + list(consts)
    node = Node("n", op, names, ["y"], dict(attrs or {}), act)
    ref = run_node(node, [inputs.get(v, consts.get(v)) for v in names])[0]
    values = {v: Value(v, a.shape) for v, a in inputs.items()} | {"y": Value("y", ref.shape)}
    g = Graph("t", [node], list(inputs), ["y"], values, {k: np.asarray(v) for k, v in consts.items()})
    return g, node, list(inputs.values())


def check(prim_name, g, node, xs, threads=1):
    """The primitive verified (XNNPACK took every operator, or prepare refuses) and its own output, from NHWC
    edges back to NCHW, within 1e-4 of the reference."""
    prim = registry.get(prim_name)
    assert prim.supports(node, g) is None
    result = verify(prim, node, g, threads=threads)
    assert result.ok, result.reason
    k = prim.prepare(node, PrepareContext(g, threads=threads))
    nhwc = prim.layout == "NHWC"
    y = k(*[to_nhwc(x) if nhwc else x for x in xs])[0]
    ref = run_node(node, [None if not i else g.initializers.get(i) if i in g.initializers
                          else xs[g.dynamic_inputs(node).index(i)] for i in node.inputs])[0]
    y = from_nhwc(y) if nhwc else y
    assert y.shape == ref.shape and y.dtype == np.float32
    assert rel_err(y, ref) < 1e-4
    assert runner.undelegated(k.interpreter) == []
    return k


rng = np.random.default_rng(7)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---- Conv ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_conv_matches_reference(case):
    g, node, x, _ = conv_case(**CASES[case])
    check(CONV, g, node, [x])


@pytest.mark.parametrize("case", ["3x3", "depthwise", "asym"])
def test_conv_with_nchw_edges_matches_reference(case):
    g, node, x, _ = conv_case(**CASES[case])
    k = check(CONV_NCHW, g, node, [x], threads=2)
    assert ops_of(k)[0] == "TRANSPOSE" and ops_of(k)[-1] == "TRANSPOSE"


@pytest.mark.parametrize("act", [Activation("Relu"), Activation("Clip", {"min": 0.0, "max": 6.0}),
                                 Activation("Clip", {"min": 0.0, "max": 0.5}), Activation("LeakyRelu", {"alpha": 0.1}),
                                 Activation("HardSwish"), Activation("Sigmoid"), Activation("Swish"),
                                 Activation("HardSigmoid", {"alpha": 0.2, "beta": 0.5}), Activation("Tanh")],
                         ids=lambda a: f"{a.op}{a.params.get('max', '')}")
def test_fused_activation_is_applied(act):
    g, node, x, ref = conv_case(**CASES["3x3"], act=act)
    k = check(CONV, g, node, [x])
    plain = check(CONV, *conv_case(**CASES["3x3"])[:2], [x])
    assert rel_err(from_nhwc(plain(to_nhwc(x))[0]), ref) > 1e-2  # the activation changed the numbers
    fused = act.op == "Relu" or act.params.get("max") == 6.0  # TFLite fuses these into the conv
    assert (ops_of(k) == ["CONV_2D"]) == fused and len(ops_of(k)) >= 2 - fused


def test_depthwise_becomes_depthwise_conv_with_its_multiplier():
    g, node, x, _ = conv_case(n=1, c=6, h=9, w=9, co=12, k=3, group=6)
    assert ops_of(check(CONV, g, node, [x])) == ["DEPTHWISE_CONV_2D"]
    g, node, x, _ = conv_case(**CASES["depthwise"])
    assert ops_of(check(CONV, g, node, [x])) == ["DEPTHWISE_CONV_2D"]
    g, node, x, _ = conv_case(**CASES["groups2"])
    assert ops_of(check(CONV, g, node, [x])) == ["CONV_2D"]


@pytest.mark.parametrize("h,stride,pads,explicit", [
    (12, 1, [1, 1, 1, 1], False),  # SAME
    (12, 2, [0, 0, 1, 1], False),  # SAME with stride 2 on an even size: the extra pad at the end
    (12, 2, [1, 1, 1, 1], True),  # PyTorch's symmetric pad: not SAME, explicit PAD
    (13, 2, [1, 1, 1, 1], False),  # SAME on an odd size
    (12, 1, [0, 0, 0, 0], False),  # VALID
    (12, 1, [2, 0, 1, 1], True),  # asymmetric
])
def test_padding_is_same_valid_or_an_explicit_pad(h, stride, pads, explicit):
    for group in (1, 8):
        g, node, x, _ = conv_case(n=1, c=8, h=h, w=h, co=8, k=3, stride=stride, pads=pads, group=group)
        assert ("PAD" in ops_of(check(CONV, g, node, [x]))) == explicit


# ---- Gemm / MatMul ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("trans_b,c_shape", [(0, (12,)), (1, (12,)), (1, (1, 12)), (1, None), (1, (1,))])
def test_gemm(trans_b, c_shape):
    a = randn(3, 20)
    consts = {"b": randn(12, 20) if trans_b else randn(20, 12)} | ({"c": randn(*c_shape)} if c_shape else {})
    g, node, xs = one_node("Gemm", {"a": a}, {"transB": trans_b, "alpha": 0.5, "beta": 2.0}, Activation("Relu"),
                           consts)
    assert ops_of(check(GEMM, g, node, xs)) == ["FULLY_CONNECTED"]


@pytest.mark.parametrize("a_shape,b_shape,b_const", [((3, 20), (20, 12), True), ((2, 5, 20), (20, 12), True),
                                                     ((2, 5, 20), (2, 20, 4), False), ((3, 4, 8), (3, 8, 5), True)])
def test_matmul(a_shape, b_shape, b_const):
    inputs, consts = {"a": randn(*a_shape)}, {}
    (consts if b_const else inputs)["b"] = randn(*b_shape)
    g, node, xs = one_node("MatMul", inputs, consts=consts)
    want = "FULLY_CONNECTED" if b_const and len(b_shape) == 2 else "BATCH_MATMUL"
    assert ops_of(check(GEMM, g, node, xs)) == [want]


# ---- elementwise, with broadcasting ---------------------------------------------------------------------

@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("shapes", [
    ((1, 4, 6, 6), (1, 4, 6, 6), None),
    ((1, 4, 6, 6), None, (4, 1, 1)),  # a per-channel constant
    ((1, 4, 6, 6), (1, 4, 1, 1), None),  # SE-style gate
    ((2, 10), None, (10,)),
    ((2, 3, 8), (2, 3, 8), None),
    ((1, 4, 6, 6), None, (6,)),  # broadcast over W
], ids=lambda s: "x".join(map(str, s[0])) + ("_" + "x".join(map(str, s[1] or s[2]))))
def test_binary(op, shapes):
    a_shape, b_dyn, b_const = shapes
    inputs = {"a": randn(*a_shape)} | ({"b": randn(*b_dyn)} if b_dyn else {})
    consts = {"b": np.abs(randn(*b_const)) + 0.5} if b_const else {}
    if op == "Div" and b_dyn:
        inputs["b"] = np.abs(inputs["b"]) + 0.5
    act = Activation("Relu") if op == "Add" else None
    g, node, xs = one_node(op, inputs, act=act, consts=consts)
    assert ops_of(check(OP, g, node, xs)) == [op.upper()]


def test_mul_reading_one_value_twice():
    x = randn(1, 4, 6, 6)
    node = Node("n", "Mul", ["x", "x"], ["y"])
    g = Graph("t", [node], ["x"], ["y"], {"x": Value("x", x.shape), "y": Value("y", x.shape)}, {})
    check(OP, g, node, [x, x])


@pytest.mark.parametrize("op,attrs", [("Relu", {}), ("Sigmoid", {}), ("HardSwish", {}), ("Tanh", {}),
                                      ("LeakyRelu", {"alpha": 0.2}), ("HardSigmoid", {"alpha": 0.25, "beta": 0.4}),
                                      ("Clip", {"min": 0.0, "max": 6.0}), ("Clip", {"min": -0.5, "max": 0.7}),
                                      ("Clip", {"min": 0.1})])
def test_unary(op, attrs):
    x = 3 * randn(1, 4, 6, 6)
    g, node, xs = one_node(op, {"x": x}, attrs)
    check(OP, g, node, xs)
    check(OP, *one_node(op, {"x": randn(3, 7)}, attrs))


# ---- pooling ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op,attrs,h", [
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, 12),  # ResNet's stem
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 0, 0, 0], "ceil_mode": 1}, 11),  # SqueezeNet
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 0, 0]}, 12),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1]}, 9),  # SAME
    ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}, 12),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1]}, 9),  # SAME, pads excluded
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}, 12),
])
def test_pools(op, attrs, h):
    x = randn(1, 4, h, h) - 2.0  # mostly negative: a zero pad would win a max
    check(OP, *one_node(op, {"x": x}, attrs))


def test_global_average_pool_is_a_mean():
    k = check(OP, *one_node("GlobalAveragePool", {"x": randn(2, 5, 7, 6)}))
    assert ops_of(k) == ["MEAN"]


def test_refused_pooling_geometry():
    x = randn(1, 4, 12, 12)
    g, node, _ = one_node("AveragePool", {"x": x}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]})
    assert "AveragePool" in registry.get(OP).supports(node, g)
    g, node, _ = one_node("AveragePool", {"x": x}, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1})
    assert "overhang" in registry.get(OP).supports(node, g)


# ---- layout-sensitive ops: concat, reshape, flatten, transpose, softmax, pad ---------------------------------

def test_concat_over_channels_and_over_a_3d_axis():
    check(OP, *one_node("Concat", {"a": randn(1, 3, 5, 5), "b": randn(1, 4, 5, 5)}, {"axis": 1}))
    check(OP, *one_node("Concat", {"a": randn(1, 3, 5, 5), "b": randn(1, 3, 5, 5)}, {"axis": -1}))
    check(OP, *one_node("Concat", {"a": randn(1, 6, 8), "b": randn(1, 2, 8)}, {"axis": 1}))


@pytest.mark.parametrize("op,attrs,shape", [("Flatten", {"axis": 1}, (1, 4, 3, 5)),
                                            ("Flatten", {"axis": 1}, (1, 8, 1, 1)),
                                            ("Reshape", {"shape": [1, 4, 15]}, (1, 4, 3, 5)),
                                            ("Squeeze", {"axes": [2, 3]}, (1, 8, 1, 1)),
                                            ("Unsqueeze", {"axes": [1]}, (2, 6)),
                                            ("Transpose", {"perm": [0, 2, 3, 1]}, (1, 4, 3, 5)),
                                            ("Transpose", {"perm": [0, 2, 1]}, (2, 3, 5))])
def test_shape_ops_keep_the_onnx_order(op, attrs, shape):
    check(OP, *one_node(op, {"x": randn(*shape)}, attrs))


def test_flatten_of_a_spatial_map_transposes_back_but_not_of_a_1x1_map():
    assert ops_of(check(OP, *one_node("Flatten", {"x": randn(1, 4, 3, 5)}, {"axis": 1}))) == ["TRANSPOSE", "RESHAPE"]
    assert ops_of(check(OP, *one_node("Flatten", {"x": randn(1, 8, 1, 1)}, {"axis": 1}))) == ["RESHAPE"]


@pytest.mark.parametrize("shape,axis", [((2, 10), -1), ((1, 6, 4, 4), 1), ((2, 3, 7), 2)])
def test_softmax(shape, axis):
    check(OP, *one_node("Softmax", {"x": randn(*shape)}, {"axis": axis}))


def test_pad():
    check(OP, *one_node("Pad", {"x": randn(1, 3, 5, 5)}, {"mode": "constant", "pads": [0, 1, 2, 0, 0, 2, 1, 3],
                                                             "value": 0.0}))


@pytest.mark.parametrize("shape,attrs", [
    ((1, 16, 9, 9), {"starts": [0, 0], "ends": [9, 9], "axes": [2, 3], "steps": [2, 2]}),  # option-A shortcut, odd
    ((1, 16, 8, 8), {"starts": [0, 1], "ends": [8, 8], "axes": [2, 3], "steps": [2, 2]}),
    ((1, 16, 8, 8), {"starts": [4], "ends": [12], "axes": [1], "steps": [1]}),
    ((1, 16, 8, 8), {"starts": [1], "ends": [16], "axes": [1], "steps": [3]}),
    ((2, 30, 7), {"starts": [3, 1], "ends": [20, 7], "axes": [1, 2], "steps": [1, 2]}),
])
def test_slice_with_and_without_steps(shape, attrs):
    k = check(OP, *one_node("Slice", {"x": randn(*shape)}, attrs))
    assert "STRIDED_SLICE" not in ops_of(k)


@pytest.mark.parametrize("shape,axis,sizes", [((1, 10, 4, 4), 1, [3, 7]), ((1, 30, 9), -1, [4, 5]),
                                              ((1, 6, 4, 4), 2, [2, 2])])
def test_split_into_slices(shape, axis, sizes):
    x = randn(*shape)
    node = Node("n", "Split", ["x", "s"], [f"y{i}" for i in range(len(sizes))], {"axis": axis}, opset=13)
    split = np.array(sizes, np.int64)
    refs = run_node(node, [x, split])
    values = {"x": Value("x", x.shape)} | {f"y{i}": Value(f"y{i}", r.shape) for i, r in enumerate(refs)}
    g = Graph("t", [node], ["x"], list(values)[1:], values, {"s": split})
    prim = registry.get(OP)
    assert prim.supports(node, g) is None and verify(prim, node, g).ok
    got = prim.prepare(node, PrepareContext(g))(to_nhwc(x))
    for y, r in zip(got, refs, strict=True):
        assert rel_err(from_nhwc(y), r) < 1e-6


def resize_case(h, out, attrs, by_scales=False):
    x = randn(1, 3, h, h)
    consts = {"scales": np.array([1, 1, out / h, out / h], np.float32)} if by_scales else \
        {"sizes": np.array([1, 3, out, out], np.int64)}
    inputs = ["x", "", "scales"] if by_scales else ["x", "", "", "sizes"]
    node = Node("n", "Resize", inputs, ["y"], attrs, opset=13)
    ref = run_node(node, [x, None, *consts.values()] if by_scales else [x, None, None, *consts.values()])[0]
    g = Graph("t", [node], ["x"], ["y"], {"x": Value("x", x.shape), "y": Value("y", ref.shape)}, consts)
    return g, node, [x]


@pytest.mark.parametrize("attrs,h,out,by_scales", [
    ({"mode": "linear", "coordinate_transformation_mode": "half_pixel"}, 8, 16, False),
    ({"mode": "linear", "coordinate_transformation_mode": "half_pixel"}, 12, 5, False),  # down
    ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, 5, 11, False),
    ({"mode": "linear", "coordinate_transformation_mode": "asymmetric"}, 6, 12, True),
    ({"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}, 6, 9, False),
    ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}, 5, 10, True),
    ({"mode": "nearest", "coordinate_transformation_mode": "half_pixel"}, 4, 12, False),
])
def test_resize(attrs, h, out, by_scales):
    k = check(OP, *resize_case(h, out, attrs, by_scales))
    assert "RESIZE_NEAREST_NEIGHBOR" not in ops_of(k)


@pytest.mark.parametrize("attrs,h,out,why", [
    ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric"}, 5, 10, "rounding"),
    ({"mode": "nearest", "coordinate_transformation_mode": "half_pixel"}, 4, 6, "non-integer"),
    ({"mode": "cubic"}, 4, 8, "cubic"),
])
def test_refused_resize(attrs, h, out, why):
    g, node, _ = resize_case(h, out, attrs)
    assert why in registry.get(OP).supports(node, g)


@pytest.mark.parametrize("k,stride,pads,bias,act", [(2, 2, [0, 0, 0, 0], True, None),
                                                    (3, 2, [1, 1, 1, 1], True, Activation("Relu")),
                                                    (4, 2, [1, 0, 2, 1], False, None),
                                                    (3, 1, [0, 0, 0, 0], True, None)])
def test_conv_transpose(k, stride, pads, bias, act):
    consts = {"w": randn(6, 4, k, k) * 0.3} | ({"b": randn(4)} if bias else {})
    attrs = {"kernel_shape": [k, k], "strides": [stride] * 2, "pads": pads, "dilations": [1, 1], "group": 1}
    check(OP, *one_node("ConvTranspose", {"x": randn(1, 6, 5, 5)}, attrs, act, consts))


def test_exp():
    check(OP, *one_node("Exp", {"x": randn(1, 30, 2)}))


# ---- what it refuses -------------------------------------------------------------------------------------

def test_unsupported_nodes_are_not_candidates_and_say_why():
    prims = [p for p in registry.primitives() if p.library == "litert"]
    assert not any(p.runs(op) for p in prims for op in ("Erf", "LayerNormalization", "Gather", "Einsum", "TopK"))
    g, node, _, _ = conv_case(**CASES["3x3"])
    g.values["w"] = Value("w", g.initializers.pop("w").shape)
    assert "constant" in registry.get(CONV).supports(node, g)
    g, node, _ = one_node("Gemm", {"a": randn(20, 3)}, {"transA": 1}, consts={"b": randn(20, 4)})
    assert "transA" in registry.get(GEMM).supports(node, g)
    x1 = Value("x", (1, 4, 10))
    n1 = Node("c", "Conv", ["x", "w"], ["y"], {"kernel_shape": [3], "pads": [1, 1]})
    g1 = Graph("t", [n1], ["x"], ["y"], {"x": x1, "y": Value("y", (1, 4, 10))}, {"w": np.ones((4, 4, 3), np.float32)})
    assert "4-D" in registry.get(CONV).supports(n1, g1)
    ints = Node("n", "Add", ["i", "j"], ["k"])
    gi = Graph("t", [ints], ["i", "j"], ["k"], {v: Value(v, (4,), "int64") for v in "ijk"}, {})
    assert "float32" in registry.get(OP).supports(ints, gi)


def test_a_segment_with_an_unconvertible_node_is_refused_not_crashed():
    erf = Node("e", "Erf", ["x"], ["y"])
    relu = Node("r", "Relu", ["y"], ["z"])
    g = Graph("t", [erf, relu], ["x"], ["z"], {v: Value(v, (1, 4)) for v in "xyz"}, {})
    with pytest.raises(ConversionError, match="Erf is not converted"):
        segment_kernel(g, g.nodes, 1, "stop", library="litert")
    with pytest.raises(ValueError, match="no fusable primitive for Erf"):
        fusable_primitive(erf, "litert")


# ---- formats, threads, kernels ---------------------------------------------------------------------------

def test_edges_are_nhwc_for_4d_values_and_plain_otherwise():
    g, node, _ = one_node("Flatten", {"x": randn(1, 4, 3, 5)}, {"axis": 1})
    prim = registry.get(OP)
    assert prim.input_formats(node, g) == [FP32_NHWC] and prim.output_format(node, g) == FP32
    g, node, x, _ = conv_case(**CASES["3x3"])
    assert registry.get(CONV).input_formats(node, g) == [FP32_NHWC]
    assert registry.get(CONV_NCHW).input_formats(node, g) == [FP32]


def test_the_interpreter_is_created_with_the_thread_count(monkeypatch):
    made = []

    class Recording(runner.Interpreter):
        def __init__(self, *a, **kw):
            made.append(kw.get("num_threads"))
            super().__init__(*a, **kw)

    monkeypatch.setattr(runner, "Interpreter", Recording)
    g, node, x, _ = conv_case(**CASES["batch2"])
    for threads in (1, 2):
        k = registry.get(CONV).prepare(node, PrepareContext(g, threads=threads))
        assert made[-1] == threads and k.threads == threads and runner.describe(k)["threads"] == threads


def test_outputs_are_fresh_arrays_and_inputs_untouched():
    g, node, x, ref = conv_case(**CASES["3x3"])
    k = registry.get(CONV).prepare(node, PrepareContext(g))
    xn = to_nhwc(x)
    before = xn.copy()
    a, b = k(xn)[0], k(xn)[0]
    assert not np.shares_memory(a, b) and rel_err(from_nhwc(a), ref) < 1e-4
    np.testing.assert_array_equal(xn, before)
    assert k.weight_bytes >= sum(v.nbytes for v in g.initializers.values())


def test_switch_probe_runs_on_nchw_arrays():
    from edgetune.measure.switching import _probe_graph  # the probe's own graph (measure is above kernels)

    g, node, x = _probe_graph()
    probe = registry.pool_of("litert").probe
    k = registry.get(probe).prepare(node, PrepareContext(g, threads=2))
    assert rel_err(k(x)[0], run_node(node, [x, g.initializers["w"]])[0]) < 1e-4


# ---- segments, whole models and the executor -------------------------------------------------------------

def _zoo(name: str):
    """A zoo model (its builders are torch modules: on an ARMv8.0 board without torch these tests skip)."""
    pytest.importorskip("torch", reason="torch is not installed (optional on ARMv8.0 boards): zoo models need it")
    return load_model(name)


@pytest.fixture(scope="module")
def mnist():
    return _zoo("mnist_cnn")


@pytest.mark.parametrize("model", ["mnist_cnn", "ds_cnn_kws", "resnet20_cifar", "unet_small"])
def test_a_whole_small_cnn_is_one_model_fully_delegated(model):
    g = _zoo(model)
    feeds = default_feeds(g, seed=1)
    kernel, ins, outs = segment_kernel(g, g.nodes, 2, "on", library="litert")
    assert ins == g.inputs and outs == g.outputs
    ref = run_graph(g, feeds)
    got = kernel(*[feeds[v] for v in ins])
    assert rel_err(got[0], ref[outs[0]]) < 1e-4
    assert runner.undelegated(kernel.interpreter) == []


def test_a_handmade_conv_bn_relu_dw_add_gap_fc_graph_matches_the_reference():
    """BN folded by the importer, an inverted-residual-like block with a residual Add, pooled and classified."""
    c = 8
    inits = {"w1": randn(c, 3, 3, 3) * 0.3, "s": np.abs(randn(c)) + 0.5, "bb": randn(c), "m": randn(c) * 0.1,
             "v": np.abs(randn(c)) + 0.5, "wd": randn(c, 1, 3, 3) * 0.3, "bd": randn(c), "wp": randn(c, c, 1, 1) * 0.3,
             "fw": randn(c, 5) * 0.3, "fb": randn(5)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("BatchNormalization", ["c1", "s", "bb", "m", "v"], ["b1"]),
             helper.make_node("Relu", ["b1"], ["r1"]),
             helper.make_node("Conv", ["r1", "wd", "bd"], ["d1"], pads=[1, 1, 1, 1], group=c),
             helper.make_node("Clip", ["d1", "lo", "hi"], ["d2"]),
             helper.make_node("Conv", ["d2", "wp"], ["p1"]),
             helper.make_node("Add", ["p1", "r1"], ["a1"]),
             helper.make_node("GlobalAveragePool", ["a1"], ["gp"]),
             helper.make_node("Flatten", ["gp"], ["fl"]),
             helper.make_node("MatMul", ["fl", "fw"], ["mm"]),
             helper.make_node("Add", ["mm", "fb"], ["y"])]
    inits |= {"lo": np.float32(0.0), "hi": np.float32(6.0)}
    model = mk(nodes, [vi("x", [1, 3, 16, 16])], [vi("y", [1, 5])], inits)
    g = load_graph(model)
    assert "BatchNormalization" not in [n.op for n in g.nodes]
    feeds = default_feeds(g, seed=4)
    kernel, ins, outs = segment_kernel(g, g.nodes, 1, "stop", library="litert")
    assert rel_err(kernel(*[feeds[v] for v in ins])[0], run_graph(g, feeds)[outs[0]]) < 1e-4
    for n in g.nodes:  # and node by node, each verified
        prim = registry.get(fusable_primitive(n, "litert"))
        assert verify(prim, n, g).ok, n.name


def test_a_segment_variant_beyond_fp32_is_refused(mnist):
    for variant in (SegmentVariant(precision="bf16"), SegmentVariant(rewrite=lambda m: m)):
        with pytest.raises(ValueError, match="fp32 only"):
            segment_kernel(mnist, mnist.nodes, 1, "stop", library="litert", variant=variant)


def test_a_run_of_nodes_is_one_model(mnist):
    ref = run_graph(mnist, default_feeds(mnist), keep=True)
    nodes = mnist.nodes[1:5]  # conv2+relu, maxpool, flatten, fc1+relu
    kernel, ins, outs = segment_kernel(mnist, nodes, 2, "stop", library="litert")
    assert ins == [mnist.nodes[0].outputs[0]] and outs == [nodes[-1].outputs[0]]
    got = kernel(*[ref[v] for v in ins])
    assert len(got) == 1 and rel_err(got[0], ref[outs[0]]) < 1e-4


def test_a_plan_all_on_litert_runs_as_one_step(mnist):
    plan = Plan.for_graph(mnist, {n.name: NodeChoice(fusable_primitive(n, "litert"), 2) for n in mnist.nodes})
    ex = Executor(mnist, plan)  # checks its outputs against the reference at compile time
    assert len(ex.steps) == 1 and ex.steps[0].primitive == f"litert.segment[{len(mnist.nodes)}]"
    assert ex.libraries == {"litert"} and ex.max_error < 1e-4
    unfused = Executor(mnist, plan, fuse=False, check=False)  # node by node, NHWC edges between them
    kinds = [s.kind for s in unfused.steps]
    assert kinds.count("convert") == 1 and len(kinds) == len(mnist.nodes) + 1  # only the input to NHWC
    feeds = default_feeds(mnist, seed=3)
    out = mnist.outputs[0]
    np.testing.assert_allclose(ex.run(feeds)[out], unfused.run(feeds)[out], rtol=1e-4, atol=1e-5)


def test_a_plan_mixing_litert_and_numpy_converts_layouts_between_them(mnist):
    choices = {n.name: NodeChoice(fusable_primitive(n, "litert" if i % 2 else "onnxruntime"), 1)
               for i, n in enumerate(mnist.nodes)}
    ex = Executor(mnist, Plan.for_graph(mnist, choices))  # checks its outputs against the reference
    assert ex.libraries == {"litert", "onnxruntime"} and ex.max_error < 1e-4


# ---- the library's descriptor ------------------------------------------------------------------------------

def test_the_registry_lists_the_library_its_pool_and_primitives():
    lib = registry.library("litert")
    assert lib in registry.installed_libraries() and lib.requires == ("ai_edge_litert", "tflite", "flatbuffers")
    assert lib.describe() == {"library": "litert", "pool": "litert", "requires": list(lib.requires), "segments": True}
    pool = registry.pool_of("litert")
    assert pool in registry.pools() and pool.set_threads is None and pool.probe == CONV_NCHW
    prims = {p.name: p for p in registry.primitives() if p.library == "litert"}
    assert sorted(prims) == sorted([CONV, GEMM, OP, CONV_NCHW])
    assert {n for n, p in prims.items() if p.fuses} == {CONV, GEMM, OP}
    assert {n for n, p in prims.items() if p.measure_last} == {CONV_NCHW}
    pool.warm_up(1)


def test_fusable_primitive_per_op():
    assert [fusable_primitive(Node("n", op, ["x"], ["y"]), "litert") for op in ("Conv", "MatMul", "Gemm", "Add")] \
        == [CONV, GEMM, GEMM, OP]


@pytest.mark.parametrize("missing", ["ai_edge_litert", "tflite"])
def test_a_missing_package_makes_the_library_unavailable_with_the_reason(monkeypatch, missing):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == missing else real_find_spec(n, *a))
    lib = dataclasses.replace(registry.library("litert"), name="litert-simulated-missing")
    try:
        registry._load_library("edgetune.kernels.libraries.litert", lib)
        assert registry.unavailable()["litert-simulated-missing"] == f"library not installed: {missing}"
    finally:
        registry.unregister("litert-simulated-missing")


def test_the_package_imports_no_litert_at_package_level():
    code = ("import sys, edgetune.kernels.libraries.litert as m; m.fusable_primitive; "
            "print(any(k.split('.')[0] in ('ai_edge_litert', 'tflite', 'flatbuffers') for k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_convert_module_writes_a_model_readable_by_the_schema():
    g, node, x, _ = conv_case(**CASES["3x3"])
    model = convert_module.convert(g, [node], ["x"], ["y"], io_nhwc=False)
    m = tflite.Model.GetRootAs(model.content, 0)
    sub = m.Subgraphs(0)
    assert m.Version() == 3 and sub.InputsLength() == 1 and sub.OutputsLength() == 1
    assert sub.Tensors(sub.Inputs(0)).ShapeAsNumpy().tolist() == [1, 16, 12, 12]
    weights = sum(v.nbytes for v in g.initializers.values())
    assert weights <= model.weight_bytes <= weights + 2 * 16  # + the two boundary transposes' permutations
