"""IR -> ONNX export (whole graph, subgraphs, single nodes, opsets) and layer statistics."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edgetune.errors import EdgetuneError
from edgetune.graph import (
    infer_shapes,
    layer_table,
    layer_totals,
    load_graph,
    node_macs,
    node_params,
    optimize,
    to_onnx,
)
from tests.graph_cases import mk, run, vi

RNG = np.random.default_rng(2)


def w(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.abs(a - b).max() <= 1e-5 * max(np.abs(a).max(), 1e-6)


def _model() -> onnx.ModelProto:
    """conv+relu6 -> depthwise+swish -> (hardswish conv) -> add residual -> pool -> flatten -> gemm."""
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Clip", ["c1", "lo", "hi"], ["r1"], name="relu6"),
        helper.make_node("Conv", ["r1", "W2"], ["c2"], name="dw", pads=[1, 1, 1, 1], group=8),
        helper.make_node("Sigmoid", ["c2"], ["s2"], name="sig"),
        helper.make_node("Mul", ["c2", "s2"], ["sw"], name="swish"),
        helper.make_node("Conv", ["sw", "W3"], ["c3"], name="pw"),
        helper.make_node("HardSwish", ["c3"], ["h3"], name="hswish"),
        helper.make_node("Add", ["h3", "r1"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["ar"], name="relu"),
        helper.make_node("MaxPool", ["ar"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "G", "GB"], ["y"], name="fc", transB=1),
    ]
    inits = {"W1": w(8, 3, 3, 3), "B1": w(8), "lo": np.array(0, np.float32), "hi": np.array(6, np.float32),
             "W2": w(8, 1, 3, 3), "W3": w(8, 8, 1, 1), "G": w(10, 8 * 4 * 4), "GB": w(10)}
    return mk(nodes, [vi("x", [1, 3, 16, 16])], [vi("y", [1, 10])], inits)


@pytest.fixture(scope="module")
def model_and_graph():
    m = _model()
    return m, load_graph(m, name="small")


def test_whole_graph_roundtrip(model_and_graph) -> None:
    m, g = model_and_graph
    assert [(n.op, n.activation.op if n.activation else None) for n in g.nodes] == [
        ("Conv", "Clip"), ("Conv", "Swish"), ("Conv", "HardSwish"), ("Add", "Relu"), ("MaxPool", None),
        ("Flatten", None), ("Gemm", None)]
    exported = to_onnx(g)
    onnx.checker.check_model(exported, full_check=True)
    op_types = [n.op_type for n in exported.graph.node]
    assert op_types.count("Sigmoid") == 1 and op_types.count("Mul") == 1 and op_types.count("Clip") == 1
    clip = next(n for n in exported.graph.node if n.op_type == "Clip")
    inits = {t.name: numpy_helper.to_array(t) for t in exported.graph.initializer}
    assert [float(inits[i]) for i in clip.input[1:]] == [0.0, 6.0]
    x = w(1, 3, 16, 16)
    assert close(run(m, {"x": x})[0], run(exported, {"x": x})[0])


@pytest.mark.parametrize("opset", [11, 13, 21])
def test_export_opsets(model_and_graph, opset: int) -> None:
    m, g = model_and_graph
    exported = to_onnx(g, opset=opset)
    onnx.checker.check_model(exported)
    assert exported.opset_import[0].version == opset
    if opset < 14:
        assert "HardSwish" not in [n.op_type for n in exported.graph.node]
    x = w(1, 3, 16, 16)
    assert close(run(m, {"x": x})[0], run(exported, {"x": x})[0])


def test_subgraphs_and_single_nodes(model_and_graph) -> None:
    m, g = model_and_graph
    x = w(1, 3, 16, 16)
    every = [v for v in g.values if v != "x"]
    full = to_onnx(g, outputs=every)
    vals = dict(zip(every, run(full, {"x": x}), strict=True))
    vals["x"] = x
    # a run of nodes: inputs/outputs inferred from the boundary (r1 also feeds the Add outside)
    sub_nodes = g.nodes[1:4]
    sub = to_onnx(g, nodes=sub_nodes)
    onnx.checker.check_model(sub)
    assert [i.name for i in sub.graph.input] == [g.nodes[1].inputs[0]]
    assert [o.name for o in sub.graph.output] == [g.nodes[3].outputs[0]]
    assert {t.name for t in sub.graph.initializer} >= {g.nodes[1].inputs[1], g.nodes[2].inputs[1]}
    out = run(sub, {g.nodes[1].inputs[0]: vals[g.nodes[1].inputs[0]]})[0]
    assert close(vals[g.nodes[3].outputs[0]], out)
    # every single node, by name
    for node in g.nodes:
        one = to_onnx(g, nodes=[node.name])
        onnx.checker.check_model(one)
        feeds = {i.name: vals[i.name] for i in one.graph.input}
        assert feeds.keys() == set(g.dynamic_inputs(node))
        assert close(vals[node.outputs[0]], run(one, feeds)[0]), node.name


def test_export_errors(model_and_graph) -> None:
    _, g = model_and_graph
    with pytest.raises(EdgetuneError):
        to_onnx(g, nodes=[])


def test_stats_numbers(model_and_graph) -> None:
    _, g = model_and_graph
    by = {n.name: n for n in g.nodes}
    assert node_macs(by["conv1"], g) == 8 * 8 * 8 * 3 * 3 * 3
    assert node_macs(by["dw"], g) == 8 * 8 * 8 * 9
    assert node_macs(by["pw"], g) == 8 * 8 * 8 * 8
    assert node_macs(by["add"], g) == 8 * 8 * 8
    assert node_macs(by["pool"], g) == 8 * 4 * 4 * 4
    assert node_macs(by["flatten"], g) == 0
    assert node_macs(by["fc"], g) == 10 * 128
    assert node_params(by["conv1"], g) == 8 * 27 + 8
    assert node_params(by["fc"], g) == 10 * 128 + 10
    rows = layer_table(g)
    assert rows[0] == {"name": "conv1", "op": "Conv", "input_shapes": [[1, 3, 16, 16]],
                       "output_shape": [1, 8, 8, 8], "macs": 13824, "params": 224,
                       "activation_bytes": 8 * 8 * 8 * 4, "activation": "Clip"}
    assert rows[3]["input_shapes"] == [[1, 8, 8, 8], [1, 8, 8, 8]] and rows[3]["activation"] == "Relu"
    tot = layer_totals(rows)
    assert tot == {"nodes": 7, "macs": sum(r["macs"] for r in rows), "params": 224 + 72 + 64 + 1290,
                   "activation_bytes": 4 * (512 * 4 + 128 + 128 + 10)}


def test_reinference_and_late_optimize_are_stable(model_and_graph) -> None:
    m, g = model_and_graph
    before = {k: v.shape for k, v in g.values.items()}
    infer_shapes(g)
    assert {k: v.shape for k, v in g.values.items()} == before
    late = optimize(load_graph(m, optimize=False))
    assert [(n.name, n.op, n.activation, n.outputs) for n in late.nodes] == \
        [(n.name, n.op, n.activation, n.outputs) for n in g.nodes]
    assert all(a.flags.writeable for a in late.initializers.values())


def test_matmul_macs() -> None:
    m = mk([helper.make_node("MatMul", ["x", "M"], ["y"], name="mm")], [vi("x", [2, 5, 7])], [vi("y", None)],
           {"M": w(7, 3)})
    g = load_graph(m)
    assert node_macs(g.nodes[0], g) == 2 * 5 * 3 * 7 and node_params(g.nodes[0], g) == 21


def test_slice_and_channel_pad_export_and_stats() -> None:
    """Option-A shortcut (x[:, :, ::2, ::2], zero channels): whole graph and single nodes in ONNX Runtime
    equal the original, no MACs or parameters, and re-inference keeps the normalised attributes."""
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    nodes = [
        helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["h"], name="sub"),
        helper.make_node("Pad", ["h", "p"], ["y"], name="pad"),
    ]
    m = mk(nodes, [vi("x", [1, 4, 8, 7])], [vi("y", [1, 8, 4, 4])],
           {"s": i64(0, 0), "e": i64(2**62, 2**62), "a": i64(2, 3), "t": i64(2, 2),
            "p": i64(0, 2, 0, 0, 0, 2, 0, 0)}, opset=13)
    g = load_graph(m)
    sl, pad = g.nodes
    assert sl.attrs == {"starts": [0, 0], "ends": [8, 7], "axes": [2, 3], "steps": [2, 2]}
    x = w(1, 4, 8, 7)
    want = run(m, {"x": x})[0]
    assert np.array_equal(run(to_onnx(g), {"x": x})[0], want)
    assert np.array_equal(run(to_onnx(g, nodes=[sl]), {"x": x})[0], x[:, :, ::2, ::2])
    assert np.array_equal(run(to_onnx(g, nodes=["pad"]), {"h": x[:, :, ::2, ::2].copy()})[0], want)
    assert [node_macs(n, g) for n in g.nodes] == [0, 0] and [node_params(n, g) for n in g.nodes] == [0, 0]
    rows = layer_table(g)
    assert [(r["op"], r["input_shapes"], r["output_shape"], r["activation_bytes"]) for r in rows] == \
        [("Slice", [[1, 4, 8, 7]], [1, 4, 4, 4], 256), ("Pad", [[1, 4, 4, 4]], [1, 8, 4, 4], 512)]
    before = (dict(sl.attrs), {k: v.shape for k, v in g.values.items()})
    infer_shapes(g)
    assert (sl.attrs, {k: v.shape for k, v in g.values.items()}) == before
