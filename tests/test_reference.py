"""The reference executor against onnxruntime, op by op and on a small graph; and the ref.* primitives."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgetune.errors import EdgetuneError, UnsupportedModelError
from edgetune.graph.ir import Activation, Graph, Node, Value
from edgetune.graph.reference import run_graph, run_node
from edgetune.graph.shapes import infer_shapes
from edgetune.kernels.base import PrepareContext
from edgetune.kernels.registry import get
from tests.isa import requires_torch

RNG = np.random.default_rng(0)

# Every op the architecture says survives import (docs/architecture.md, "Ops that survive import").
ARCH_OPS = ("Conv Gemm MatMul Relu LeakyRelu Clip Sigmoid HardSigmoid HardSwish Tanh Mul Add Sub Div Concat "
            "MaxPool AveragePool GlobalAveragePool Flatten Reshape Squeeze Unsqueeze Transpose Softmax Pad "
            "Slice LRN BatchNormalization").split()


def rnd(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def ort_run(op: str, dyn: dict[str, np.ndarray], consts: dict[str, np.ndarray], order: list[str],
            attrs: dict[str, Any], opset: int = 17, n_out: int = 1) -> list[np.ndarray]:
    """Outputs of a one-node ONNX model in onnxruntime (inputs named in `order`, '' = omitted)."""
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, order, outs, **attrs)
    ins = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in dyn.items()]
    out_info = [helper.make_empty_tensor_value_info(o) for o in outs]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    graph = helper.make_graph([node], "t", ins, out_info, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, dyn)


def check(op: str, dyn: dict[str, np.ndarray], attrs: dict[str, Any] | None = None,
          consts: dict[str, np.ndarray] | None = None, order: list[str] | None = None,
          node_attrs: dict[str, Any] | None = None, opset: int = 17, tol: float = 1e-5) -> np.ndarray:
    """run_node equals onnxruntime within tol (max abs error / max abs output); returns run_node's output.
    `node_attrs` is the edgetune form of the attributes when it differs from the ONNX one."""
    attrs, consts = attrs or {}, consts or {}
    order = order if order is not None else list(dyn) + list(consts)
    want = ort_run(op, dyn, consts, order, attrs, opset)[0]
    node = Node("n", op, order, ["y"], dict(node_attrs if node_attrs is not None else attrs))
    arrays = {**dyn, **consts}
    got = run_node(node, [arrays[k] if k else None for k in order])[0]
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype
    scale = max(float(np.max(np.abs(want))), 1e-12) if want.size else 1.0
    err = float(np.max(np.abs(got.astype(np.float64) - want))) / scale if want.size else 0.0
    assert err <= tol, f"{op} {attrs}: relative error {err:.3g}"
    return got


# ---- Conv ----------------------------------------------------------------------------------------

CONV_CASES = {
    "plain3x3": dict(c=4, co=6, hw=(9, 9), k=3, attrs={"pads": [1, 1, 1, 1]}),
    "asym_pads": dict(c=3, co=5, hw=(10, 7), k=3, attrs={"pads": [0, 1, 2, 0]}),
    "stride2": dict(c=4, co=4, hw=(11, 12), k=3, attrs={"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "dilation2": dict(c=4, co=3, hw=(12, 11), k=3, attrs={"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
    "groups2": dict(c=6, co=4, hw=(8, 8), k=3, attrs={"group": 2, "pads": [1, 0, 1, 0]}),
    "depthwise": dict(c=8, co=8, hw=(9, 9), k=3, attrs={"group": 8, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "depthwise_mult2": dict(c=4, co=8, hw=(7, 7), k=3, attrs={"group": 4}),
    "pointwise": dict(c=16, co=8, hw=(5, 6), k=1, attrs={}),
    "rect_kernel": dict(c=2, co=3, hw=(8, 9), k=(1, 5), attrs={"pads": [0, 2, 0, 2]}),
    "same_upper": dict(c=3, co=2, hw=(7, 8), k=3, attrs={"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    "no_bias_batch2": dict(c=3, co=4, hw=(6, 6), k=3, attrs={"pads": [1, 1, 1, 1]}, n=2, bias=False),
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv(case: str) -> None:
    p = CONV_CASES[case]
    k = p["k"] if isinstance(p["k"], tuple) else (p["k"], p["k"])
    g = p["attrs"].get("group", 1)
    x = rnd(p.get("n", 1), p["c"], *p["hw"])
    consts = {"w": rnd(p["co"], p["c"] // g, *k, scale=0.3)}
    if p.get("bias", True):
        consts["b"] = rnd(p["co"])
    check("Conv", {"x": x}, p["attrs"], consts)


# ---- Gemm / MatMul / BatchNormalization ---------------------------------------------------------

@pytest.mark.parametrize("attrs,a_shape,b_shape,c_shape", [
    ({}, (3, 5), (5, 4), (4,)),
    ({"transB": 1}, (2, 6), (4, 6), (1, 4)),
    ({"transA": 1, "alpha": 0.5, "beta": 2.0}, (6, 3), (6, 4), (3, 4)),
    ({"transA": 1, "transB": 1, "alpha": -1.5}, (5, 2), (3, 5), None),
])
def test_gemm(attrs: dict, a_shape: tuple, b_shape: tuple, c_shape: tuple | None) -> None:
    consts = {"b": rnd(*b_shape)} | ({"c": rnd(*c_shape)} if c_shape else {})
    check("Gemm", {"a": rnd(*a_shape)}, attrs, consts)


def test_matmul_batched_and_vector() -> None:
    check("MatMul", {"a": rnd(2, 3, 4, 5)}, consts={"b": rnd(5, 6)})
    check("MatMul", {"a": rnd(2, 1, 4, 5), "b": rnd(3, 5, 2)})
    check("MatMul", {"a": rnd(7), "b": rnd(7, 3)})


def test_batchnorm() -> None:
    c = 5
    consts = {"s": rnd(c), "bb": rnd(c), "m": rnd(c), "v": np.abs(rnd(c)) + 0.1}
    check("BatchNormalization", {"x": rnd(2, c, 4, 3)}, {"epsilon": 1e-3}, consts)
    check("BatchNormalization", {"x": rnd(1, c, 6, 6)}, {}, consts)


# ---- elementwise ---------------------------------------------------------------------------------

@pytest.mark.parametrize("op,attrs", [
    ("Relu", {}), ("LeakyRelu", {}), ("LeakyRelu", {"alpha": 0.2}), ("Sigmoid", {}), ("HardSigmoid", {}),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("HardSwish", {}), ("Tanh", {}),
])
def test_unary(op: str, attrs: dict) -> None:
    check(op, {"x": rnd(2, 3, 4, 5, scale=4.0)}, attrs)


def test_clip_inputs_and_attrs() -> None:
    x = rnd(1, 4, 5, 5, scale=5.0)
    lo, hi = np.array(-1.0, np.float32), np.array(6.0, np.float32)
    check("Clip", {"x": x}, consts={"lo": lo, "hi": hi}, order=["x", "lo", "hi"])
    check("Clip", {"x": x}, consts={"hi": hi}, order=["x", "", "hi"])
    # the importer's form: bounds lifted into attributes, inputs cut to one
    want = ort_run("Clip", {"x": x}, {"lo": lo, "hi": hi}, ["x", "lo", "hi"], {})[0]
    got = run_node(Node("c", "Clip", ["x"], ["y"], {"min": -1.0, "max": 6.0}), [x])[0]
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(run_node(Node("c", "Clip", ["x"], ["y"]), [x])[0], x)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_binary_broadcast(op: str) -> None:
    x = rnd(2, 4, 5, 6)
    check(op, {"x": x}, consts={"c": np.abs(rnd(1, 4, 1, 1)) + 0.5})
    check(op, {"x": x, "y": np.abs(rnd(6)) + 0.5})
    check(op, {"x": rnd(4, 1, 6), "y": np.abs(rnd(2, 1, 5, 1)) + 0.5})
    check(op, {"x": x}, consts={"s": np.array(1.7, np.float32)})


def test_integer_arithmetic_stays_integer() -> None:
    a, b = np.array([7, -7, 6], np.int64), np.array([2, 2, -4], np.int64)
    for op in ("Add", "Sub", "Mul", "Div"):
        got = check(op, {"a": a, "b": b})
        assert got.dtype == np.int64


# ---- data movement -------------------------------------------------------------------------------

def test_concat() -> None:
    check("Concat", {"a": rnd(1, 2, 3, 3), "b": rnd(1, 5, 3, 3)}, {"axis": 1})
    check("Concat", {"a": rnd(2, 3), "b": rnd(2, 4)}, {"axis": -1})
    check("Concat", {"a": rnd(2, 3)}, {"axis": 0}, consts={"b": rnd(1, 3)})


def test_shape_ops_attr_and_input_forms() -> None:
    x = rnd(2, 3, 4, 5)
    check("Flatten", {"x": x})
    check("Flatten", {"x": x}, {"axis": 2})
    check("Flatten", {"x": x}, {"axis": -1})
    check("Flatten", {"x": x}, {"axis": 0})
    shape = np.array([0, -1, 5], np.int64)
    check("Reshape", {"x": x}, consts={"s": shape})
    got = run_node(Node("r", "Reshape", ["x"], ["y"], {"shape": [2, 12, 5]}), [x])[0]
    assert np.array_equal(got, x.reshape(2, 12, 5))
    s = rnd(1, 3, 1, 4)
    check("Squeeze", {"x": s}, consts={"ax": np.array([0, -2], np.int64)})
    check("Squeeze", {"x": s}, node_attrs={"axes": [0, -2]}, consts={"ax": np.array([0, -2], np.int64)})
    check("Squeeze", {"x": s})
    check("Unsqueeze", {"x": rnd(3, 4)}, consts={"ax": np.array([0, -1], np.int64)})
    got = run_node(Node("u", "Unsqueeze", ["x"], ["y"], {"axes": [0, 3]}), [rnd(3, 4)])[0]
    assert got.shape == (1, 3, 4, 1)
    check("Transpose", {"x": x}, {"perm": [0, 2, 3, 1]})
    check("Transpose", {"x": x})


def test_pad() -> None:
    x = rnd(1, 2, 4, 5)
    pads = np.array([0, 0, 1, 2, 0, 0, 3, 0], np.int64)
    check("Pad", {"x": x}, consts={"p": pads})
    check("Pad", {"x": x}, consts={"p": pads, "v": np.array(1.5, np.float32)})
    check("Pad", {"x": x}, consts={"p": np.array([1, 2, 0, 1], np.int64), "v": np.array(-2.0, np.float32),
                                   "ax": np.array([2, 3], np.int64)}, order=["x", "p", "v", "ax"], opset=18)
    check("Pad", {"x": x}, consts={"p": np.array([0, 0, -1, 1, 0, 0, 0, -2], np.int64)})
    # the importer's attribute form
    got = run_node(Node("p", "Pad", ["x"], ["y"], {"pads": pads.tolist(), "value": 1.5}), [x])[0]
    want = ort_run("Pad", {"x": x}, {"p": pads, "v": np.array(1.5, np.float32)}, ["x", "p", "v"], {})[0]
    np.testing.assert_array_equal(got, want)


SLICE_CASES = [  # (starts, ends, axes, steps) on a (2, 5, 6, 7) input; None = omitted
    ([0, 0], [2**62, 2**62], [2, 3], [2, 2]),           # option-A shortcut x[:, :, ::2, ::2]
    ([0, -4], [-1, 100], None, None),                    # leading axes, negative and huge ends
    ([-1], [-2**62], [-1], [-1]),                        # full reverse
    ([100, -100], [-100, 100], [1, 2], [-2, 3]),          # clamping: start past the end, end before 0
    ([-100], [-2**62], [3], [-1]),                        # start before 0 under a negative step
    ([4, 1], [1, 5], [-2, 1], [-1, 1]),
]


@pytest.mark.parametrize("starts,ends,axes,steps", SLICE_CASES)
def test_slice_input_and_attribute_forms(starts: list, ends: list, axes: list | None, steps: list | None) -> None:
    x = rnd(2, 5, 6, 7)
    consts = {"s": np.array(starts, np.int64), "e": np.array(ends, np.int64)}
    order = ["x", "s", "e"]
    if axes is not None or steps is not None:
        consts["a"] = np.array(axes if axes is not None else list(range(len(starts))), np.int64)
        order.append("a")
    if steps is not None:
        consts["t"] = np.array(steps, np.int64)
        order.append("t")
    want = check("Slice", {"x": x}, consts=consts, order=order, opset=13, tol=0.0)
    # edgetune's attribute form, raw and normalised, and the ref.slice primitive
    attrs = {"starts": starts, "ends": ends, **({"axes": axes} if axes is not None else {}),
             **({"steps": steps} if steps is not None else {})}
    node = Node("sl", "Slice", ["x"], ["y"], attrs)
    np.testing.assert_array_equal(run_node(node, [x])[0], want)
    g = Graph("t", [node], ["x"], ["y"], {"x": Value("x", x.shape)}, {})
    infer_shapes(g)
    assert set(node.attrs) == {"starts", "ends", "axes", "steps"} and g.shape("y") == want.shape
    got = get("ref.slice").prepare(node, PrepareContext(g))(x)[0]
    np.testing.assert_array_equal(got, want)
    assert got.flags.c_contiguous and got.dtype == np.float32


def test_channel_pad_after_slice_attribute_form() -> None:
    """ResNet option-A shortcut: subsample then zero channels on axis 1, as the importer leaves them."""
    x = rnd(1, 4, 8, 8)
    sl = Node("sl", "Slice", ["x"], ["h"], {"starts": [0, 0], "ends": [8, 8], "axes": [2, 3], "steps": [2, 2]})
    pad = Node("pad", "Pad", ["h"], ["y"], {"pads": [0, 2, 0, 0, 0, 2, 0, 0], "mode": "constant", "value": 0.0})
    g = Graph("t", [sl, pad], ["x"], ["y"], {"x": Value("x", x.shape)}, {})
    infer_shapes(g)
    y = run_graph(g, {"x": x})["y"]
    assert y.shape == (1, 8, 4, 4) and g.shape("y") == (1, 8, 4, 4)
    np.testing.assert_array_equal(y[:, 2:6], x[:, :, ::2, ::2])
    assert not y[:, :2].any() and not y[:, 6:].any()
    np.testing.assert_array_equal(get("ref.pad").prepare(pad, PrepareContext(g))(y[:, 2:6].copy())[0], y)


@requires_torch
def test_resnet20_cifar_runtime_slices_match_onnxruntime() -> None:
    from edgetune import zoo
    from edgetune.graph import load_graph

    model = zoo.build_onnx("resnet20_cifar")
    g = load_graph(model, name="resnet20_cifar")
    assert sum(n.op == "Slice" for n in g.nodes) == 4 and sum(n.op == "Pad" for n in g.nodes) == 2
    x = rnd(1, 3, 32, 32)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    want = sess.run(None, {"input": x})[0]
    got = run_graph(g, {"input": x})[g.outputs[0]]
    assert got.shape == want.shape == (1, 10)
    assert float(np.abs(got - want).max()) <= 1e-5 * float(np.abs(want).max())


# ---- pooling, softmax, LRN -----------------------------------------------------------------------

POOL_CASES = [
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 1, 1, 0], "ceil_mode": 1}),
    ("MaxPool", {"kernel_shape": [3, 3], "dilations": [2, 2], "pads": [1, 1, 1, 1]}),
    ("MaxPool", {"kernel_shape": [2, 3], "strides": [1, 2], "dilations": [2, 1]}),
    ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1]}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 0, 1], "ceil_mode": 1}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1,
                     "count_include_pad": 1}),
    ("AveragePool", {"kernel_shape": [5, 5], "strides": [3, 3], "auto_pad": "SAME_UPPER"}),
]


@pytest.mark.parametrize("op,attrs", POOL_CASES)
@pytest.mark.parametrize("hw", [(8, 8), (9, 10)])
def test_pool(op: str, attrs: dict, hw: tuple[int, int]) -> None:
    check(op, {"x": rnd(2, 3, *hw)}, attrs)


def test_average_pool_dilation_opset19() -> None:
    check("AveragePool", {"x": rnd(1, 2, 9, 9)}, {"kernel_shape": [2, 2], "dilations": [2, 2],
                                                 "pads": [1, 1, 1, 1]}, opset=19)


def test_global_pools() -> None:
    check("GlobalAveragePool", {"x": rnd(2, 5, 7, 6)})
    check("GlobalMaxPool", {"x": rnd(2, 5, 7, 6)})


@pytest.mark.parametrize("axis", [None, -1, 1, 0])
def test_softmax(axis: int | None) -> None:
    attrs = {} if axis is None else {"axis": axis}
    check("Softmax", {"x": rnd(2, 4, 3, scale=5.0)}, attrs)


@pytest.mark.parametrize("size,attrs", [(5, {"alpha": 1e-4, "beta": 0.75, "bias": 2.0}), (3, {}),
                                        (1, {"alpha": 0.01, "beta": 0.5})])
def test_lrn(size: int, attrs: dict) -> None:
    check("LRN", {"x": rnd(2, 7, 4, 4, scale=3.0)}, {"size": size, **attrs})


def test_identity_and_dropout_copy() -> None:
    x = rnd(2, 3)
    for op in ("Identity", "Dropout"):
        y = run_node(Node("i", op, ["x"], ["y"]), [x])[0]
        assert np.array_equal(y, x) and not np.shares_memory(y, x)


# ---- fused activations, errors, fallback --------------------------------------------------------

@pytest.mark.parametrize("act,fn", [
    (Activation("Relu"), lambda y: np.maximum(y, 0)),
    (Activation("Clip", {"min": 0.0, "max": 6.0}), lambda y: np.clip(y, 0, 6)),
    (Activation("LeakyRelu", {"alpha": 0.1}), lambda y: np.where(y >= 0, y, 0.1 * y)),
    (Activation("HardSigmoid", {"alpha": 0.25, "beta": 0.5}), lambda y: np.clip(0.25 * y + 0.5, 0, 1)),
    (Activation("HardSwish"), lambda y: y * np.clip(y / 6 + 0.5, 0, 1)),
    (Activation("Sigmoid"), lambda y: 1 / (1 + np.exp(-y))),
    (Activation("Tanh"), np.tanh),
    (Activation("Swish"), lambda y: y / (1 + np.exp(-y))),
])
def test_fused_activation(act: Activation, fn: Any) -> None:
    x, w, b = rnd(1, 3, 6, 6), rnd(4, 3, 3, 3), rnd(4)
    attrs = {"pads": [1, 1, 1, 1], "strides": [1, 1], "dilations": [1, 1], "group": 1}
    plain = run_node(Node("c", "Conv", ["x", "w", "b"], ["y"], attrs), [x, w, b])[0]
    fused = run_node(Node("c", "Conv", ["x", "w", "b"], ["y"], attrs, act), [x, w, b])[0]
    want = fn(plain.astype(np.float64))
    assert fused.dtype == np.float32
    assert np.max(np.abs(fused - want)) <= 1e-5 * max(1.0, float(np.max(np.abs(want))))
    assert not np.array_equal(fused, plain)


def test_fused_activation_does_not_touch_inputs() -> None:
    x = rnd(3, 4)
    before = x.copy()
    run_node(Node("i", "Identity", ["x"], ["y"], activation=Activation("Relu")), [x])
    assert np.array_equal(x, before)


def test_unknown_op_raises_unsupported() -> None:
    with pytest.raises(UnsupportedModelError, match="no reference kernel for NoSuchOp"):
        run_node(Node("z", "NoSuchOp", ["x"], ["y"]), [rnd(2)])


def test_fallback_to_constant_ops() -> None:
    got = run_node(Node("s", "Shape", ["x"], ["y"]), [rnd(2, 3, 4)])[0]
    assert got.dtype == np.int64 and got.tolist() == [2, 3, 4]


def test_numpy_errors_become_one_line_edgetune_errors() -> None:
    with pytest.raises(EdgetuneError, match="node bad"):
        run_node(Node("bad", "Add", ["a", "b"], ["y"]), [rnd(2, 3), rnd(4)])


def test_vgg_sized_conv_matches_a_direct_sum() -> None:
    """A VGG-sized layer (the reference's fast path for large convolutions) against the definition, at a few
    output positions including the padded borders."""
    x, w = rnd(1, 64, 112, 112), rnd(64, 64, 3, 3)
    y = run_node(Node("c", "Conv", ["x", "w"], ["y"], {"pads": [1, 1, 1, 1]}), [x, w])[0]
    assert y.shape == (1, 64, 112, 112)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    for co, i, j in [(0, 0, 0), (17, 55, 56), (63, 111, 111), (5, 0, 111)]:
        want = float(np.sum(xp[0, :, i:i + 3, j:j + 3] * w[co]))
        assert abs(float(y[0, co, i, j]) - want) <= 1e-4 * max(1.0, abs(want))


# ---- run_graph -----------------------------------------------------------------------------------

def small_model() -> tuple[Graph, onnx.ModelProto]:
    """Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm, as an edgetune Graph and as ONNX."""
    w, b, fw, fb = rnd(8, 3, 3, 3, scale=0.3), rnd(8), rnd(5, 8), rnd(5)
    inits = {"w": w, "b": b, "fw": fw, "fb": fb}
    conv_attrs = {"pads": [1, 1, 1, 1], "strides": [2, 2], "dilations": [1, 1], "group": 1, "kernel_shape": [3, 3]}
    nodes = [
        Node("conv", "Conv", ["x", "w", "b"], ["c"], conv_attrs),
        Node("relu", "Relu", ["c"], ["r"]),
        Node("gap", "GlobalAveragePool", ["r"], ["p"]),
        Node("flat", "Flatten", ["p"], ["f"], {"axis": 1}),
        Node("fc", "Gemm", ["f", "fw", "fb"], ["y"], {"transB": 1}),
    ]
    shapes = {"x": (2, 3, 10, 10), "c": (2, 8, 5, 5), "r": (2, 8, 5, 5), "p": (2, 8, 1, 1), "f": (2, 8),
              "y": (2, 5)}
    g = Graph("small", nodes, ["x"], ["y"], {k: Value(k, s) for k, s in shapes.items()}, inits)
    onodes = [helper.make_node(n.op, n.inputs, n.outputs, name=n.name, **n.attrs) for n in nodes]
    og = helper.make_graph(onodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shapes["x"])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, shapes["y"])],
                           [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(og, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return g, model


def test_run_graph_matches_onnxruntime() -> None:
    g, model = small_model()
    x = rnd(2, 3, 10, 10)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = run_graph(g, {"x": x})
    assert list(got) == ["y"] and got["y"].dtype == np.float32
    assert np.max(np.abs(got["y"] - want)) <= 1e-5 * np.max(np.abs(want))
    every = run_graph(g, {"x": x}, keep=True)
    assert {"x", "c", "r", "p", "f", "y"} <= set(every)
    assert np.array_equal(every["y"], got["y"]) and every["r"].min() >= 0


def test_run_graph_fused_activation() -> None:
    g, _ = small_model()
    x = rnd(2, 3, 10, 10)
    want = run_graph(g, {"x": x})["y"]
    g.nodes[0].activation = Activation("Relu")
    g.nodes[0].outputs = ["r"]
    g.nodes = [n for n in g.nodes if n.op != "Relu"]
    assert np.allclose(run_graph(g, {"x": x})["y"], want, rtol=0, atol=1e-6)


def test_run_graph_input_errors() -> None:
    g, _ = small_model()
    with pytest.raises(EdgetuneError, match=r"input 'x': expected shape \(2, 3, 10, 10\), got \(1, 3, 10, 10\)"):
        run_graph(g, {"x": rnd(1, 3, 10, 10)})
    with pytest.raises(EdgetuneError, match="missing input 'x'"):
        run_graph(g, {"image": rnd(2, 3, 10, 10)})
    with pytest.raises(EdgetuneError, match="expected dtype float32, got float64"):
        run_graph(g, {"x": np.zeros((2, 3, 10, 10))})


# ---- the ref.* primitives ------------------------------------------------------------------------

def test_reference_prims_cover_every_architecture_op() -> None:
    for op in ARCH_OPS:
        prim = get(f"ref.{op.lower()}")
        assert op in prim.op_types and prim.library == "numpy-reference" and prim.tolerance == 1e-5


def test_prepared_ref_conv_equals_run_node() -> None:
    g, _ = small_model()
    node = g.node("conv")
    node.activation = Activation("Clip", {"min": 0.0, "max": 0.5})
    prim = get("ref.conv")
    assert prim.supports(node, g) is None
    kernel = prim.prepare(node, PrepareContext(g))
    x = rnd(2, 3, 10, 10)
    got = kernel(x)
    want = run_node(node, [x, g.initializers["w"], g.initializers["b"]])
    assert len(got) == 1 and np.array_equal(got[0], want[0])
    assert kernel.weight_bytes == g.initializers["w"].nbytes + g.initializers["b"].nbytes


def test_prepared_kernel_slots_dynamic_inputs() -> None:
    """A constant first input and a dynamic second one land in their places."""
    c, x = rnd(1, 4, 1, 1), rnd(2, 4, 3, 3)
    node = Node("sub", "Sub", ["c", "x"], ["y"])
    g = Graph("t", [node], ["x"], ["y"], {"x": Value("x", x.shape), "y": Value("y", x.shape)}, {"c": c})
    prim = get("ref.sub")
    assert prim.input_formats(node, g) and len(prim.input_formats(node, g)) == 1
    y = prim.prepare(node, PrepareContext(g))(x)[0]
    np.testing.assert_array_equal(y, (c - x).astype(np.float32))
