"""Graph passes: BN folding, activation fusion (incl. Swish), identity removal, Pad-into-Conv; every
rewrite checked against the original model in ONNX Runtime, and graph output names preserved."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from edgetune.graph import load_graph, to_onnx
from tests.graph_cases import mk, run, vi

RNG = np.random.default_rng(1)


def w(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def bn_params(c: int, prefix: str = "bn") -> dict[str, np.ndarray]:
    return {f"{prefix}_s": RNG.uniform(0.5, 1.5, c).astype(np.float32), f"{prefix}_b": w(c),
            f"{prefix}_m": w(c), f"{prefix}_v": RNG.uniform(0.5, 2.0, c).astype(np.float32)}


def bn_node(x: str, y: str, prefix: str = "bn") -> onnx.NodeProto:
    return helper.make_node("BatchNormalization", [x] + [f"{prefix}_{k}" for k in "sbmv"], [y], name=prefix,
                            epsilon=1e-3)


def check(model: onnx.ModelProto, **kw):
    """Load (optimised), export, and compare with the original in ONNX Runtime; returns the graph."""
    g = load_graph(model, **kw)
    feeds = {i.name: w(*g.shape(i.name)) for i in model.graph.input if i.name in g.inputs}
    exported = to_onnx(g)
    onnx.checker.check_model(exported)
    # ORT's own graph optimisations off: the reference must be the model as written
    for ref, got in zip(run(model, feeds, optimize=False), run(exported, feeds, optimize=False), strict=True):
        assert np.abs(ref - got).max() <= 1e-5 * max(np.abs(ref).max(), 1e-6)
    assert g.outputs == [o.name for o in model.graph.output]
    return g


def ops(g) -> list[tuple[str, str | None]]:
    return [(n.op, n.activation.op if n.activation else None) for n in g.nodes]


# ---- BatchNorm folding ---------------------------------------------------------------------------

@pytest.mark.parametrize("bias, group", [(True, 1), (False, 1), (True, 4)])
def test_bn_folds_into_conv(bias: bool, group: int) -> None:
    inits = {"W": w(8, 4 // group, 3, 3), **bn_params(8)}
    ins = ["x", "W"]
    if bias:
        inits["B"] = w(8)
        ins.append("B")
    m = mk([helper.make_node("Conv", ins, ["c"], name="conv", group=group, pads=[1, 1, 1, 1]),
            bn_node("c", "y")], [vi("x", [1, 4, 6, 6])], [vi("y", None)], inits)
    w_before = inits["W"].copy()
    g = check(m)
    assert ops(g) == [("Conv", None)]
    conv = g.nodes[0]
    assert conv.outputs == ["y"] and len(conv.inputs) == 3
    np.testing.assert_array_equal(inits["W"], w_before)  # the original weights were not touched
    scale = inits["bn_s"] / np.sqrt(inits["bn_v"] + 1e-3)
    expected = inits["W"] * scale[:, None, None, None]
    np.testing.assert_allclose(g.initializers[conv.inputs[1]], expected, rtol=1e-6)


@pytest.mark.parametrize("trans_b", [0, 1])
def test_bn_folds_into_gemm_and_matmul(trans_b: int) -> None:
    gw = w(6, 10) if trans_b else w(10, 6)
    nodes = [helper.make_node("Gemm", ["x", "G", "C"], ["g"], name="gemm", transB=trans_b, alpha=0.5,
                              beta=2.0),
             bn_node("g", "g2", "bn1"),
             helper.make_node("MatMul", ["g2", "M"], ["mm"], name="mm"),
             bn_node("mm", "y", "bn2")]
    m = mk(nodes, [vi("x", [3, 10])], [vi("y", None)],
           {"G": gw, "C": w(6), "M": w(6, 5), **bn_params(6, "bn1"), **bn_params(5, "bn2")})
    g = check(m)
    assert ops(g) == [("Gemm", None), ("Gemm", None)]
    assert g.node("mm").attrs == {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}


def test_standalone_bn_stays() -> None:
    nodes = [bn_node("x", "b0", "bn0"),
             helper.make_node("Conv", ["b0", "W"], ["c"], name="conv"),
             bn_node("c", "b1", "bn1"),
             helper.make_node("Add", ["c", "b1"], ["y"], name="add")]  # conv output read twice: no fold
    m = mk(nodes, [vi("x", [1, 4, 5, 5])], [vi("y", None)], {"W": w(4, 4, 1, 1), **bn_params(4, "bn0"),
                                                               **bn_params(4, "bn1")})
    g = check(m)
    assert [n.op for n in g.nodes] == ["BatchNormalization", "Conv", "BatchNormalization", "Add"]


# ---- activation fusion ---------------------------------------------------------------------------

ACTS = [
    ("Relu", {}, {}),
    ("LeakyRelu", {"alpha": 0.1}, {"alpha": 0.1}),
    ("Sigmoid", {}, {}),
    ("HardSigmoid", {"alpha": 0.25, "beta": 0.375}, {"alpha": 0.25, "beta": 0.375}),
    ("HardSwish", {}, {}),
    ("Tanh", {}, {}),
    ("Clip", None, {"min": 0.0, "max": 6.0}),
]


@pytest.mark.parametrize("op, attrs, params", ACTS, ids=[a[0] for a in ACTS])
@pytest.mark.parametrize("host", ["Conv", "Gemm", "MatMul", "Add"])
def test_activation_fused(op: str, attrs: dict | None, params: dict, host: str) -> None:
    inits: dict = {}
    if host == "Conv":
        x, hnode = vi("x", [1, 3, 5, 5]), helper.make_node("Conv", ["x", "W"], ["h"], name="host")
        inits["W"] = w(4, 3, 3, 3)
    elif host in ("Gemm", "MatMul"):
        x, hnode = vi("x", [2, 7]), helper.make_node(host, ["x", "W"], ["h"], name="host")
        inits["W"] = w(7, 4)
    else:
        x, hnode = vi("x", [2, 4, 3]), helper.make_node("Add", ["x", "W"], ["h"], name="host")
        inits["W"] = w(4, 1)
    if attrs is None:  # Clip: bounds as inputs
        inits.update(lo=np.array(0.0, np.float32), hi=np.array(6.0, np.float32))
        act = helper.make_node("Clip", ["h", "lo", "hi"], ["y"], name="act")
    else:
        act = helper.make_node(op, ["h"], ["y"], name="act", **attrs)
    g = check(mk([hnode, act], [x], [vi("y", None)], inits))
    assert ops(g) == [(host, op)]
    assert g.nodes[0].activation.params == pytest.approx(params)
    assert g.nodes[0].outputs == ["y"] and set(g.values) == {"x", "y"}


def test_activation_not_fused_when_value_is_shared() -> None:
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Add", ["c", "r"], ["a"], name="add"),
             helper.make_node("Relu", ["a"], ["y"], name="relu2")]
    g = check(mk(nodes, [vi("x", [1, 2, 4, 4])], [vi("y", None)], {"W": w(2, 2, 1, 1)}))
    assert ops(g) == [("Conv", None), ("Relu", None), ("Add", "Relu")]


@pytest.mark.parametrize("order", ["a_s", "s_a"])
def test_swish_fused(order: str) -> None:
    mul_in = ["c", "s"] if order == "a_s" else ["s", "c"]
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["c"], ["s"], name="sig"),
             helper.make_node("Mul", mul_in, ["y"], name="mul")]
    g = check(mk(nodes, [vi("x", [1, 3, 6, 6])], [vi("y", None)], {"W": w(5, 3, 3, 3)}))
    assert ops(g) == [("Conv", "Swish")]
    assert g.nodes[0].outputs == ["y"]


def test_swish_without_host_stays() -> None:
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"], name="sig"),
             helper.make_node("Mul", ["x", "s"], ["y"], name="mul")]
    g = check(mk(nodes, [vi("x", [1, 3, 6, 6])], [vi("y", None)]))
    assert ops(g) == [("Sigmoid", None), ("Mul", None)]


def test_bn_then_swish_after_conv() -> None:
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv"),
             bn_node("c", "b"),
             helper.make_node("Sigmoid", ["b"], ["s"], name="sig"),
             helper.make_node("Mul", ["b", "s"], ["y"], name="mul")]
    g = check(mk(nodes, [vi("x", [1, 3, 6, 6])], [vi("y", None)], {"W": w(4, 3, 3, 3), **bn_params(4)}))
    assert ops(g) == [("Conv", "Swish")]


# ---- identities and outputs ------------------------------------------------------------------------

def test_identity_and_noop_reshape_at_the_output_keep_output_names() -> None:
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv"),
             helper.make_node("Dropout", ["c"], ["d"], name="drop"),
             helper.make_node("Reshape", ["d", "shape"], ["r"], name="reshape"),
             helper.make_node("Identity", ["r"], ["out"], name="ident")]
    m = mk(nodes, [vi("x", [1, 3, 4, 4])], [vi("out", None)],
           {"W": w(2, 3, 1, 1), "shape": np.array([1, 2, 4, 4], np.int64)})
    g = check(m)
    assert ops(g) == [("Conv", None)]
    assert g.nodes[0].outputs == ["out"] and g.outputs == ["out"]


def test_identity_from_input_to_output_stays() -> None:
    m = mk([helper.make_node("Identity", ["x"], ["y"], name="ident"),
            helper.make_node("Relu", ["x"], ["z"], name="relu")],
           [vi("x", [2, 3])], [vi("y", None), vi("z", None)])
    g = check(m)
    assert g.outputs == ["y", "z"] and ops(g) == [("Identity", None), ("Relu", None)]


def test_two_outputs_fused_chain() -> None:
    """A fused value that is also a graph output must not be fused away."""
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    m = mk(nodes, [vi("x", [1, 3, 4, 4])], [vi("c", None), vi("y", None)], {"W": w(2, 3, 1, 1)})
    g = check(m)
    assert ops(g) == [("Conv", None), ("Relu", None)]


def test_pad_merged_into_conv() -> None:
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
             helper.make_node("Conv", ["p", "W"], ["y"], name="conv", pads=[1, 0, 0, 1], strides=[2, 2])]
    m = mk(nodes, [vi("x", [1, 3, 7, 7])], [vi("y", None)],
           {"W": w(4, 3, 3, 3), "pads": np.array([0, 0, 0, 1, 0, 0, 1, 0], np.int64)})
    g = check(m)
    assert ops(g) == [("Conv", None)] and g.nodes[0].attrs["pads"] == [1, 1, 1, 1]
    assert g.nodes[0].inputs[0] == "x"
