"""QDQ variants (edgetune.quant.qdq): they run on ONNX Runtime and OpenVINO close to fp32, ORT fuses every
int8 node, and a subset leaves the other nodes float with only the boundary Q/DQ."""

from __future__ import annotations

import dataclasses
import tempfile
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from edgetune.errors import EdgetuneError
from edgetune.graph import load_graph, to_onnx
from edgetune.quant import Quantizer, calibrate, quantisable_nodes, quantize, sqnr_db
from edgetune.quant.qdq import int8_weights
from edgetune.quant.sensitivity import run_model
from tests.graph_cases import mk, vi

CONVS = ["c1", "c2", "c3", "c4a", "c4b", "c5"]


def small_net(seed: int = 0) -> onnx.ModelProto:
    """Conv+Relu, depthwise Conv+Clip(0, 6), 1x1 Conv, residual Add, MaxPool, two branches Concat'ed,
    GlobalAveragePool, Flatten, Gemm(transB): every kind the quantiser handles."""
    rng = np.random.default_rng(seed)

    def conv_w(co: int, ci: int, k: int) -> np.ndarray:
        return (rng.standard_normal((co, ci, k, k)) * np.sqrt(2.0 / (ci * k * k))).astype(np.float32)

    def bias(n: int) -> np.ndarray:
        return (0.1 * rng.standard_normal(n)).astype(np.float32)

    inits = {"w1": conv_w(8, 3, 3), "b1": bias(8), "w2": conv_w(8, 1, 3), "b2": bias(8), "w3": conv_w(8, 8, 1),
             "b3": bias(8), "w4a": conv_w(8, 8, 1), "b4a": bias(8), "w4b": conv_w(8, 8, 3), "b4b": bias(8),
             "w5": conv_w(16, 16, 1), "b5": bias(16), "wf": (rng.standard_normal((10, 16)) * 0.3).astype(np.float32),
             "bf": bias(10), "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    p1 = [1, 1, 1, 1]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["t1"], name="c1", pads=p1),
        helper.make_node("Relu", ["t1"], ["r1"], name="r1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["t2"], name="c2", pads=p1, group=8),
        helper.make_node("Clip", ["t2", "lo", "hi"], ["r2"], name="clip2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["t3"], name="c3"),
        helper.make_node("Add", ["t3", "r1"], ["a"], name="add"),
        helper.make_node("MaxPool", ["a"], ["m"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["m", "w4a", "b4a"], ["t4a"], name="c4a"),
        helper.make_node("Relu", ["t4a"], ["r4a"], name="r4a"),
        helper.make_node("Conv", ["m", "w4b", "b4b"], ["t4b"], name="c4b", pads=p1),
        helper.make_node("Relu", ["t4b"], ["r4b"], name="r4b"),
        helper.make_node("Concat", ["r4a", "r4b"], ["cat"], name="cat", axis=1),
        helper.make_node("Conv", ["cat", "w5", "b5"], ["t5"], name="c5"),
        helper.make_node("Relu", ["t5"], ["r5"], name="r5"),
        helper.make_node("GlobalAveragePool", ["r5"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="fc", transB=1),
    ]
    return mk(nodes, [vi("x", [1, 3, 16, 16])], [vi("logits", [1, 10])], inits)


def feeds(n: int, seed: int) -> list[dict[str, np.ndarray]]:
    return [{"x": np.random.default_rng(seed + k).standard_normal((1, 3, 16, 16)).astype(np.float32)}
            for k in range(n)]


@pytest.fixture(scope="module")
def net() -> tuple[onnx.ModelProto, object]:
    """The small net as an edgetune Graph exported by to_onnx (activations fused, then re-expanded)."""
    graph = load_graph(small_net(), name="small")
    return to_onnx(graph), graph


@pytest.fixture(scope="module")
def spec(net):
    return calibrate(net[0], feeds(8, 0))


def _logits(outs: list[list[np.ndarray]]) -> list[np.ndarray]:
    return [o[0] for o in outs]


def test_graph_names_are_the_quantisable_nodes(net) -> None:
    model, graph = net
    expected = ["c1", "c2", "c3", "add", "pool", "c4a", "c4b", "cat", "c5", "gap", "fc"]
    assert [n.name for n in graph.nodes if n.name in expected] == expected
    assert quantisable_nodes(graph) == expected == quantisable_nodes(model)


def test_all_int8_runs_on_ort_close_to_fp32_and_fuses(net, spec) -> None:
    model, _ = net
    q = quantize(model, spec)
    onnx.checker.check_model(q)
    test = feeds(4, 100)
    assert sqnr_db(_logits(run_model(model, test)), _logits(run_model(q, test))) > 25.0
    fused = _fused_ops(q)
    assert fused["QLinearConv"] == len(CONVS) and fused["Conv"] == 0
    assert fused["QLinearAdd"] == 1 and fused["QLinearConcat"] == 1 and fused["QLinearGlobalAveragePool"] == 1
    assert fused["QuantizeLinear"] == 1  # the model input; every other tensor stays uint8 between int8 kernels
    assert fused["DequantizeLinear"] == 0  # the Gemm gives its float logits itself (QGemm)


def _fused_ops(model: onnx.ModelProto) -> Counter:
    """Op types of ORT's optimised graph (extended level: the QDQ fusions, no CPU-specific layouts)."""
    with tempfile.TemporaryDirectory() as d:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = f"{d}/opt.onnx"
        ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return Counter(n.op_type for n in onnx.load(f"{d}/opt.onnx").graph.node)


def test_all_int8_runs_on_openvino_close_to_fp32(net, spec) -> None:
    pytest.importorskip("openvino")
    from edgetune.kernels.libraries.openvino.compiled import compile_onnx, cpu_unavailable

    if cpu_unavailable():
        pytest.skip(cpu_unavailable())
    model, _ = net
    compiled = compile_onnx(quantize(model, spec), 1)
    test = feeds(4, 100)
    ov_out = [compiled(f)[0] for f in test]
    assert sqnr_db(_logits(run_model(model, test)), ov_out) > 25.0


def test_a_subset_leaves_the_other_nodes_float(net, spec) -> None:
    model, _ = net
    q = quantize(model, spec, ["c3"])
    assert int8_weights(q) == {"c3"}
    ops = Counter(n.op_type for n in q.graph.node)
    assert ops["QuantizeLinear"] == 2  # c3's input (a float producer) and its output
    assert ops["Conv"] == len(CONVS) and ops["Clip"] == 1 and ops["Relu"] == 4  # c3 has no activation
    inits = {t.name: t for t in q.graph.initializer}
    float_convs = [n for n in q.graph.node if n.op_type == "Conv" and n.name != "c3"]
    assert all(inits[n.input[1]].data_type == onnx.TensorProto.FLOAT for n in float_convs)
    fused = _fused_ops(q)
    assert fused["QLinearConv"] == 1 and fused["Conv"] + fused["FusedConv"] == len(CONVS) - 1
    test = feeds(2, 100)
    assert sqnr_db(_logits(run_model(model, test)), _logits(run_model(q, test))) > 30.0


def test_adjacent_int8_nodes_share_their_quantiser(net, spec) -> None:
    model, _ = net
    q = quantize(model, spec, ["c1", "c2"])
    assert int8_weights(q) == {"c1", "c2"}
    # x -> Q -> c1 (Relu folded) -> Q -> c2 (Clip folded) -> Q: one Q per tensor, the folded activations gone
    ops = Counter(n.op_type for n in q.graph.node)
    assert ops["QuantizeLinear"] == 3 and ops["Clip"] == 0 and ops["Relu"] == 3
    assert _fused_ops(q)["QLinearConv"] == 2


def test_folded_clip_range_stays_inside_the_clip(net, spec) -> None:
    model, _ = net
    qz = Quantizer(model, spec)
    scale, zp = qz.qparams("r2")  # c2's fused Clip(0, 6) output, as to_onnx names it
    assert zp == 0 and scale * 255 <= 6.0 + 1e-6


def test_reduce_range_weights_are_7_bit(net, spec) -> None:
    model, _ = net
    for rr, bound in ((True, 63), (False, 127)):
        q = quantize(model, dataclasses.replace(spec, reduce_range=rr))
        w8 = [onnx.numpy_helper.to_array(t) for t in q.graph.initializer if t.data_type == onnx.TensorProto.INT8]
        assert w8 and max(int(np.abs(w).max()) for w in w8) == bound


def test_bad_node_names_are_one_line_errors(net, spec) -> None:
    model, _ = net
    with pytest.raises(EdgetuneError, match="'nope' is not a node"):
        quantize(model, spec, ["nope"])
    with pytest.raises(EdgetuneError, match="'flat' is not quantisable"):
        quantize(model, spec, ["flat"])


def test_variants_are_independent_of_build_order(net, spec) -> None:
    model, _ = net
    q = Quantizer(model, spec)
    first = q.build(["c5"]).SerializeToString()
    q.build(None)
    q.build(["c1", "fc"])
    assert q.build(["c5"]).SerializeToString() == first
    assert Quantizer(model, spec).build(["c5"]).SerializeToString() == first


def test_a_segment_subgraph_quantises_with_the_whole_models_spec(net, spec) -> None:
    model, graph = net
    inner = run_model(_with(model, ["cat", "f"]), feeds(2, 100))
    for nodes, inputs in ((["c5", "gap", "flat", "fc"], "cat"), (["fc"], "f")):
        sub = to_onnx(graph, nodes)
        k = 1 if inputs == "cat" else 2
        test = [{inputs: o[k]} for o in inner]
        q = quantize(sub, spec)
        assert int8_weights(q) == ({"c5", "fc"} if inputs == "cat" else {"fc"})
        assert sqnr_db(_logits(run_model(sub, test)), _logits(run_model(q, test))) > 25.0


def _with(model: onnx.ModelProto, tensors: list[str]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.output.extend(helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in tensors)
    return out
