"""int8 on the edges: quantisation parameters on `Format`, the converters that bind them, and ONNX Runtime's
QLinearConv reading and writing uint8 so that consecutive int8 convolutions stay int8 (issue 12, item 1)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from edgetune import zoo
from edgetune.graph import load_graph
from edgetune.graph.reference import default_feeds, reference_samples, run_graph
from edgetune.kernels import int8_calib as cal
from edgetune.kernels import registry
from edgetune.kernels.base import FP32, Format
from edgetune.kernels.verify import verify
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import NodeChoice, Plan
from tests.isa import U8S8_CONDITION, U8S8_SATURATES

EDGES = "conv.qlinear_u8s8_edges.ort"


@pytest.fixture(scope="module")
def resnet20():
    return load_graph(zoo.build_onnx("resnet20_cifar"), name="resnet20_cifar")


def test_a_quantised_format_key_round_trips_and_names_its_family():
    q = Format("NCHW", "uint8", 0.0235294118, 3)
    assert q.key == "NCHW/uint8/q0.0235294118,3" and q.quantised and q.family == "NCHW/uint8"
    assert Format.from_key(q.key) == q and Format.from_key(FP32.key) == FP32 and not FP32.quantised


def test_quantise_and_dequantise_bind_the_edge_parameters_and_match_onnx():
    q = Format("NCHW", "uint8", 0.05, 3)
    (quant,) = registry.converter_route(FP32, q)
    (dequant,) = registry.converter_route(q, FP32)
    assert (quant.name, quant.dst.key, dequant.name, dequant.src.key) == \
        ("quantize_u8.numpy", q.key, "dequantize_u8.numpy", q.key)
    x = np.array([-1.0, -0.15, 0.0, 0.025, 0.075, 1.0, 12.6, 20.0], np.float32)
    y = quant.prepare(x.shape)(x)
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    model = helper.make_model(helper.make_graph(
        [node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [8])],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [0.05]), helper.make_tensor("z", TensorProto.UINT8, [], [3])]),
        opset_imports=[helper.make_opsetid("", 13)])
    assert y.dtype == np.uint8 and y.tolist() == ReferenceEvaluator(model).run(None, {"x": x})[0].tolist()
    assert y.tolist() == [0, 0, 3, 3, 5, 23, 255, 255]  # saturates, rounds half to even (0.5 -> 0, 1.5 -> 2)
    assert np.allclose(dequant.prepare(x.shape)(y), (y.astype(np.float32) - 3) * 0.05)


def test_two_parameter_sets_convert_through_float():
    a, b = Format("NCHW", "uint8", 0.05, 3), Format("NCHW", "uint8", 0.04, 0)
    assert [(c.name, c.src.key, c.dst.key) for c in registry.converter_route(a, b)] == \
        [("dequantize_u8.numpy", a.key, FP32.key), ("quantize_u8.numpy", FP32.key, b.key)]


def test_producer_and_consumer_of_a_value_declare_the_same_uint8_format(resnet20):
    prim = registry.get(EDGES)
    a, b = resnet20.node("/layer1/layer1.0/conv1/Conv"), resnet20.node("/layer1/layer1.0/conv2/Conv")
    assert a.outputs[0] == b.inputs[0]
    out, into = prim.output_format(a, resnet20), prim.input_formats(b, resnet20)[0]
    assert out.key == into.key and out.dtype == "uint8" and out.zero_point == 0  # after a ReLU: zero at 0


def test_the_int8_edge_convolution_verifies_like_the_float_edged_one(resnet20):
    node = resnet20.node("/layer1/layer1.0/conv1/Conv")
    samples = reference_samples(resnet20)  # the activations both calibrate on
    edges = verify(registry.get(EDGES), node, resnet20, samples=samples)
    plain = verify(registry.get("conv.qlinear_u8s8.ort"), node, resnet20, samples=samples)
    assert edges.ok and plain.ok
    if not U8S8_SATURATES:  # the same 8-bit weights and activations: the same error
        assert edges.rel_error == pytest.approx(plain.rel_error, rel=1e-3), U8S8_CONDITION
    else:  # 7-bit weights here (one bit of weight resolution less): within twice the plain one's error
        assert edges.rel_error < 2 * plain.rel_error, U8S8_CONDITION


@pytest.mark.parametrize("saturates", [True, False])
def test_edge_weights_are_7_bit_exactly_where_u8s8_would_saturate(monkeypatch, saturates):
    monkeypatch.setattr(cal, "u8s8_saturates", lambda fp=None: saturates)
    assert registry.get(EDGES).weight_qmax() == (cal.INT8_MAX_REDUCED if saturates else 127)
    assert registry.get("conv.qlinear_u8u8_edges.ort").weight_qmax() == 127  # uint8 weights never saturate


def test_a_plan_keeps_consecutive_int8_convolutions_int8_and_matches_the_reference(resnet20):
    plan = Plan.builtin("blas", resnet20, threads=1)
    for n in resnet20.nodes:
        if n.op == "Conv":
            plan.choices[n.name] = NodeChoice(EDGES, 1)
    ex = Executor(resnet20, plan, check=False)
    kinds = [(s.kind, s.primitive) for s in ex.steps]
    first = kinds.index(("node", EDGES))
    assert kinds[first:first + 3] == [("node", EDGES)] * 3  # conv1 -> layer1.0.conv1 -> conv2: no Q/DQ between
    assert {p for k, p in kinds if k == "convert"} == {"quantize_u8.numpy", "dequantize_u8.numpy"}
    feeds = default_feeds(resnet20)
    out = resnet20.outputs[0]
    y, ref = np.asarray(ex.run(feeds)[out]), run_graph(resnet20, feeds)[out]
    assert float(np.abs(y - ref).max() / np.abs(ref).max()) < 0.05
    mem, blas = ex.memory(), Executor(resnet20, Plan.builtin("blas", resnet20, threads=1), check=False).memory()
    assert mem.weight_bytes_by_precision["int8"] > 0 and mem.weight_bytes < 0.3 * blas.weight_bytes  # int8 at its size


def test_a_plan_s_calibration_sets_the_edge_parameters(resnet20):
    value = resnet20.node("/layer1/layer1.0/conv1/Conv").outputs[0]
    plan = Plan.builtin("blas", resnet20, threads=1)
    plan.quantization = {"edgetune_quant_spec": 1, "percentile": 99.99, "samples": 1,
                         "tensors": {value: {"lo": 0.0, "hi": 2.55, "method": "minmax"}}}
    plan.choices[resnet20.node("/layer1/layer1.0/conv1/Conv").name] = NodeChoice(EDGES, 1)
    ex = Executor(resnet20, plan, check=False)
    assert ex.graph is not resnet20 and resnet20.activation_qparams is None
    assert cal.edge_qparams(ex.graph, value) == pytest.approx((0.01, 0))
    assert cal.edge_qparams(resnet20, value) != pytest.approx((0.01, 0))  # the caller's graph: stand-in ranges


ADD = "add.qlinear_u8_edges.ort"


def test_the_int8_residual_sum_verifies_and_refuses_what_it_cannot_add(resnet20):
    add = resnet20.node("/layer1/layer1.0/Add")
    prim = registry.get(ADD)
    assert prim.supports(add, resnet20) is None and prim.graph_calibrated
    assert [f.dtype for f in prim.input_formats(add, resnet20)] == ["uint8", "uint8"]
    assert prim.output_format(add, resnet20).zero_point == 0  # the fused ReLU: the sum's range starts at 0
    result = verify(prim, add, resnet20, samples=reference_samples(resnet20))
    assert result.ok and result.rel_error < 0.02
    a, _ = add.inputs
    assert "same value" in prim.supports(dataclasses.replace(add, inputs=[a, a]), resnet20)
    bias = resnet20.node("/conv1/Conv").inputs[2]
    assert "constant" in prim.supports(dataclasses.replace(add, inputs=[a, bias]), resnet20)


def test_a_residual_block_all_int8_has_no_quantiser_inside_and_matches_the_reference(resnet20):
    plan = Plan.builtin("blas", resnet20, threads=1)
    block = ["/layer1/layer1.0/conv1/Conv", "/layer1/layer1.0/conv2/Conv", "/layer1/layer1.0/Add"]
    for name in ["/conv1/Conv", *block[:2]]:
        plan.choices[name] = NodeChoice(EDGES, 1)
    plan.choices[block[2]] = NodeChoice(ADD, 1)
    ex = Executor(resnet20, plan, check=False)
    kinds = [(s.kind, s.primitive) for s in ex.steps]
    start = kinds.index(("node", EDGES))
    # conv1 -> block conv1 -> block conv2 -> add (which also reads conv1's uint8 output): no Q/DQ among them
    assert kinds[start:start + 4] == [("node", EDGES)] * 3 + [("node", ADD)]
    feeds = default_feeds(resnet20)
    out = resnet20.outputs[0]
    y, ref = np.asarray(ex.run(feeds)[out]), run_graph(resnet20, feeds)[out]
    assert float(np.abs(y - ref).max() / np.abs(ref).max()) < 0.05
