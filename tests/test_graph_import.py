"""ONNX import: bad files, unsupported ops, external data, symbolic dims, constant folding of exporter
noise, attribute resolution, shape inference (cross-checked with onnx.shape_inference)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgetune.errors import EdgetuneError, UnsupportedModelError
from edgetune.graph import load_graph, to_onnx
from edgetune.graph.constant_ops import eval_constant_node
from edgetune.graph.ir import Node
from tests.graph_cases import mk, run, vi

RNG = np.random.default_rng(0)


def w(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def assert_shapes_like_onnx(model: onnx.ModelProto, graph, min_checked: int) -> None:
    """Every value whose shape onnx.shape_inference also knows has the same shape in the graph."""
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    known = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
             for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    checked = 0
    for name, v in graph.values.items():
        if name in known and known[name] and all(known[name]):
            assert v.shape == known[name], name
            checked += 1
    assert checked >= min_checked


def assert_same(original: onnx.ModelProto, graph, feeds: dict) -> None:
    exported = to_onnx(graph)
    onnx.checker.check_model(exported)
    for ref, got in zip(run(original, feeds), run(exported, feeds), strict=True):
        assert ref.shape == got.shape
        assert np.abs(ref - got).max() <= 1e-5 * max(np.abs(ref).max(), 1e-6)


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


# ---- bad input ------------------------------------------------------------------------------------

def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EdgetuneError) as e:
        load_graph(tmp_path / "nope.onnx")
    assert "nope.onnx" in one_line_error(e)


def test_not_onnx(tmp_path: Path) -> None:
    p = tmp_path / "text.onnx"
    p.write_bytes(b"this is not a protobuf, just some text\n" * 20)
    with pytest.raises(EdgetuneError) as e:
        load_graph(p)
    assert "text.onnx" in one_line_error(e)


def _conv_model(opset: int = 17) -> onnx.ModelProto:
    return mk([helper.make_node("Conv", ["x", "W", "B"], ["y"], name="conv", pads=[1, 1, 1, 1])],
              [vi("x", [1, 8, 8, 8])], [vi("y", [1, 16, 8, 8])], {"W": w(16, 8, 3, 3), "B": w(16)}, opset)


def test_truncated_file(tmp_path: Path) -> None:
    data = _conv_model().SerializeToString()
    for cut in (len(data) // 2, len(data) - 3):
        p = tmp_path / f"cut{cut}.onnx"
        p.write_bytes(data[:cut])
        with pytest.raises(EdgetuneError) as e:
            load_graph(p)
        assert p.name in one_line_error(e)


def test_non_standard_ops_all_listed(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("FancyOp", ["x"], ["a"], name="fancy_1"),
        helper.make_node("Relu", ["x"], ["r"], name="relu_5"),
        helper.make_node("FancyOp", ["r"], ["b"], name="fancy_7"),
        helper.make_node("Boxes", ["x"], ["c"], name="boxes_2", domain="com.example"),
    ]
    m = mk(nodes, [vi("x", [1, 10])], [vi("a", [1, 10]), vi("b", [1, 10]), vi("c", [1, 10])])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    p = tmp_path / "model.onnx"
    onnx.save(m, p)
    with pytest.raises(UnsupportedModelError) as e:
        load_graph(p)
    assert one_line_error(e) == f"unsupported ops in {p}: FancyOp (fancy_1, fancy_7), com.example.Boxes (boxes_2)"


def test_data_dependent_shapes_come_from_one_run() -> None:
    """TopK's and NonMaxSuppression's outputs: inference leaves NMS symbolic, so the node runs once."""
    nodes = [helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["sel"], name="nms_1"),
             helper.make_node("TopK", ["x", "k"], ["v1", "i1"], name="topk_3")]
    m = mk(nodes, [vi("x", [1, 10]), vi("boxes", [1, 4, 4]), vi("scores", [1, 1, 4])],
           [vi("sel", [None, 3], TensorProto.INT64), vi("v1", [1, 3]), vi("i1", [1, 3], TensorProto.INT64)],
           {"k": np.array([3], np.int64)})
    g = load_graph(m)
    assert g.shape("v1") == (1, 3) and g.dtype("i1") == "int64"
    assert g.shape("sel")[1] == 3 and g.dtype("sel") == "int64"


def test_op_on_runtime_data_is_a_generic_node() -> None:
    """Gather and a real Cast on runtime data stay nodes (with their ONNX inputs) and compute what ORT does."""
    m = mk([helper.make_node("Gather", ["x", "idx"], ["y"], name="gather_dyn", axis=1),
            helper.make_node("Relu", ["y"], ["z"], name="relu"),
            helper.make_node("Cast", ["z"], ["zi"], name="to_int", to=TensorProto.INT64)],
           [vi("x", [1, 10])], [vi("zi", [1, 2], TensorProto.INT64)], {"idx": np.array([1, 3], np.int64)})
    g = load_graph(m, name="gm")
    assert [n.op for n in g.nodes] == ["Gather", "Relu", "Cast"] and g.dtype("zi") == "int64"
    x = (w(1, 10) * 10).astype(np.float32)
    from edgetune.graph.reference import run_graph
    np.testing.assert_array_equal(run_graph(g, {"x": x})["zi"], run(m, {"x": x})[0])


def test_old_opset_is_upgraded_and_matches_ort() -> None:
    """Opset 7 and 9 models (Upsample, Sum, BatchNormalization with its opset-7 attributes) are
    upgraded by ONNX's version converter and compute what ORT computes on the original file."""
    for opset in (7, 9):
        nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                 helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], name="bn"),
                 helper.make_node("Relu", ["bn"], ["r"], name="relu"),
                 helper.make_node("Sum", ["r", "bn", "r"], ["sm"], name="sum"),
                 helper.make_node("Upsample", ["sm"], ["y"], name="up", mode="nearest", scales=[1.0, 1.0, 2.0, 2.0])
                 if opset == 7 else
                 helper.make_node("Upsample", ["sm", "sc"], ["y"], name="up", mode="nearest")]
        inits = {"W": w(4, 3, 3, 3), "s": w(4), "b": w(4), "m": w(4), "v": np.abs(w(4)) + 0.5}
        if opset == 9:
            inits["sc"] = np.array([1, 1, 2, 2], np.float32)
        weights_as_inputs = [vi(k, list(v.shape)) for k, v in inits.items()]  # IR 3: initializers are inputs
        m = mk(nodes, [vi("x", [1, 3, 6, 6]), *weights_as_inputs], [vi("y", [1, 4, 12, 12])], inits, opset=opset)
        m.ir_version = 3
        g = load_graph(m, name=f"old{opset}")
        assert g.upgraded_from == opset and g.opset == 13
        assert "BatchNormalization" not in [n.op for n in g.nodes]  # still folded after the upgrade
        x = w(1, 3, 6, 6)
        from edgetune.graph.reference import run_graph
        got, want = run_graph(g, {"x": x})["y"], run(m, {"x": x})[0]
        assert got.shape == want.shape == (1, 4, 12, 12)
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_opset_out_of_range_and_failed_upgrade() -> None:
    with pytest.raises(UnsupportedModelError) as e:
        load_graph(_conv_model(opset=6), name="ancient")
    assert "opset 6" in one_line_error(e)
    # Einsum does not exist at opset 9: the converter fails, and the message names the op
    m = mk([helper.make_node("Einsum", ["x", "x"], ["y"], equation="ij,jk->ik")], [vi("x", [2, 2])],
           [vi("y", [2, 2])], opset=9)
    with pytest.raises(UnsupportedModelError) as e:
        load_graph(m, name="bad9")
    assert one_line_error(e).startswith("bad9: upgrading from opset 9 to 13 failed at op Einsum")


def test_symbolic_dims(tmp_path: Path) -> None:
    m = _conv_model()
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    g = load_graph(m, batch=3)
    assert g.shape("x") == (3, 8, 8, 8) and g.shape("y") == (3, 16, 8, 8)
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    with pytest.raises(UnsupportedModelError) as e:
        load_graph(m, name="sym")
    msg = one_line_error(e)
    assert "'x'" in msg and "'height'" in msg and "--input-shape x=1x8x1x8" in msg
    g = load_graph(m, input_shapes={"x": (2, 8, 5, 8)})
    assert g.shape("y") == (2, 16, 5, 8)
    for bad, needle in (({"x": (1, 7, 5, 8)}, "does not match the declared shape Nx8xheightx8"),
                        ({"z": (1, 8, 5, 8)}, "unknown input(s) z")):
        with pytest.raises(EdgetuneError) as e:
            load_graph(m, input_shapes=bad)
        assert needle in one_line_error(e)


def test_external_data(tmp_path: Path) -> None:
    m = _conv_model()
    p = tmp_path / "ext.onnx"
    onnx.save_model(onnx.load_from_string(m.SerializeToString()), p, save_as_external_data=True,
                    all_tensors_to_one_file=True, location="ext.onnx.data", size_threshold=0)
    assert (tmp_path / "ext.onnx.data").stat().st_size > 16 * 8 * 9 * 4
    g = load_graph(p)
    assert g.name == "ext"
    np.testing.assert_array_equal(g.initializers["W"], numpy_helper.to_array(m.graph.initializer[0]))
    x = w(1, 8, 8, 8)
    assert_same(m, g, {"x": x})
    (tmp_path / "ext.onnx.data").unlink()
    with pytest.raises(EdgetuneError) as e:
        load_graph(p)
    assert "ext.onnx" in one_line_error(e)


def test_shape_errors_name_the_node() -> None:
    m = mk([helper.make_node("Add", ["a", "b"], ["y"], name="add_bad")], [vi("a", [1, 3]), vi("b", [1, 4])],
           [vi("y", [1, 4])])
    with pytest.raises(EdgetuneError) as e:
        load_graph(m)
    msg = one_line_error(e)
    assert "add_bad" in msg and "(1, 3)" in msg and "(1, 4)" in msg
    m = mk([helper.make_node("Conv", ["x", "W"], ["y"], name="conv_bad")], [vi("x", [1, 4, 8, 8])],
           [vi("y", [1, 16, 6, 6])], {"W": w(16, 8, 3, 3)})
    with pytest.raises(EdgetuneError) as e:
        load_graph(m)
    assert "conv_bad" in one_line_error(e) and "channel" in str(e.value)


# ---- attribute resolution -------------------------------------------------------------------------

@pytest.mark.parametrize("auto_pad, pads", [("SAME_UPPER", [1, 0, 1, 1]), ("SAME_LOWER", [1, 1, 1, 0]),
                                            ("VALID", [0, 0, 0, 0])])
def test_auto_pad_resolved(auto_pad: str, pads: list[int]) -> None:
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv", auto_pad=auto_pad, strides=[2, 2]),
             helper.make_node("MaxPool", ["c"], ["y"], name="pool", auto_pad=auto_pad, kernel_shape=[3, 3],
                              strides=[2, 2])]
    m = mk(nodes, [vi("x", [1, 2, 7, 8])], [vi("y", None)], {"W": w(4, 2, 3, 3)})
    g = load_graph(m)
    conv = g.node("conv")
    assert conv.attrs["pads"] == pads and "auto_pad" not in conv.attrs
    assert conv.attrs["strides"] == [2, 2] and conv.attrs["dilations"] == [1, 1] and conv.attrs["group"] == 1
    assert conv.attrs["kernel_shape"] == [3, 3]
    assert g.shape("c") == ((1, 4, 4, 4) if auto_pad != "VALID" else (1, 4, 3, 3))
    assert "auto_pad" not in g.node("pool").attrs
    assert_shapes_like_onnx(m, g, 2)
    assert_same(m, g, {"x": w(1, 2, 7, 8)})


def test_opset11_attributes_and_removed_ops() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1], group=2),
        helper.make_node("Clip", ["c", "lo", "hi"], ["r6"], name="clip"),
        helper.make_node("Dropout", ["r6"], ["d"], name="drop"),
        helper.make_node("LRN", ["d"], ["l"], name="lrn", size=3),
        helper.make_node("AveragePool", ["l"], ["p"], name="avg", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[2, 2], count_include_pad=1),
        helper.make_node("Identity", ["p"], ["p2"], name="ident"),
        helper.make_node("Pad", ["p2", "pads"], ["pp"], name="pad", mode="constant"),
        helper.make_node("LeakyRelu", ["pp"], ["lr"], name="leaky", alpha=0.2),
        helper.make_node("Transpose", ["lr"], ["t"], name="tr", perm=[0, 2, 3, 1]),
        helper.make_node("Unsqueeze", ["t"], ["u"], name="unsq", axes=[0]),
        helper.make_node("Squeeze", ["u"], ["s"], name="sq", axes=[0]),
        helper.make_node("Flatten", ["s"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "G"], ["g"], name="gemm", transB=1),
        helper.make_node("Softmax", ["g"], ["y"], name="softmax"),
    ]
    inits = {"W": w(4, 1, 3, 3), "lo": np.array(0, np.float32), "hi": np.array(6, np.float32),
             "pads": np.array([0, 0, 0, 1, 0, 0, 1, 0], np.int64), "G": w(5, 100)}
    m = mk(nodes, [vi("x", [1, 2, 8, 8])], [vi("y", [1, 5])], inits, opset=11)
    g = load_graph(m, optimize=False)
    ops = [n.op for n in g.nodes]
    assert "Dropout" not in ops and "Identity" not in ops
    assert g.node("clip").attrs == {"min": 0.0, "max": 6.0} and g.node("clip").inputs == ["c"]
    assert g.node("pad").attrs == {"pads": [0, 0, 0, 1, 0, 0, 1, 0], "mode": "constant", "value": 0.0}
    assert g.node("avg").attrs["count_include_pad"] == 1 and g.node("avg").attrs["pads"] == [1, 1, 1, 1]
    assert g.node("softmax").attrs["axis"] == 1
    assert g.node("gemm").attrs == {"transB": 1, "transA": 0, "alpha": 1.0, "beta": 1.0}
    assert g.shape("p") == (1, 4, 4, 4) and g.shape("pp") == (1, 4, 5, 5) and g.shape("y") == (1, 5)
    assert_shapes_like_onnx(m, g, 11)
    assert_same(m, g, {"x": w(1, 2, 8, 8)})


def test_opset21_inputs_become_attributes() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", auto_pad="SAME_UPPER"),
        helper.make_node("HardSwish", ["c"], ["h"], name="hswish"),
        helper.make_node("Pad", ["h", "pads", "cv", "axes"], ["p"], name="pad"),
        helper.make_node("ReduceMean", ["p", "raxes"], ["m"], name="mean", keepdims=0),
        helper.make_node("Unsqueeze", ["m", "uax"], ["u"], name="unsq"),
        helper.make_node("Squeeze", ["u", "uax"], ["s"], name="sq"),
        helper.make_node("Cast", ["s"], ["sc"], name="cast_noop", to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["sc", "M"], ["mm"], name="mm"),
        helper.make_node("Shape", ["mm"], ["shp"], name="shape"),
        helper.make_node("Reshape", ["mm", "shp"], ["y"], name="reshape_noop"),
    ]
    inits = {"W": w(6, 3, 3, 3), "B": w(6), "pads": np.array([1, 2, 0, 1], np.int64),
             "cv": np.array(0.5, np.float32), "axes": np.array([2, 3], np.int64),
             "raxes": np.array([-1, -2], np.int64), "uax": np.array([-1], np.int64), "M": w(6, 4)}
    m = mk(nodes, [vi("x", [2, 3, 9, 9])], [vi("y", [2, 4])], inits, opset=21)
    g = load_graph(m, optimize=False)
    assert g.opset == 21
    assert g.node("pad").attrs["pads"] == [0, 0, 1, 2, 0, 0, 0, 1] and g.node("pad").attrs["value"] == 0.5
    assert [n.op for n in g.nodes if n.name.startswith("mean")] == ["GlobalAveragePool", "Flatten"]
    assert g.node("unsq").attrs["axes"] == [2] and g.node("unsq").inputs == ["m"]
    assert g.node("reshape_noop").attrs == {"shape": [2, 4]}
    assert_shapes_like_onnx(m, g, 7)
    assert_same(m, g, {"x": w(2, 3, 9, 9)})
    g2 = load_graph(m)
    assert "Reshape" not in [n.op for n in g2.nodes] and g2.outputs == ["y"]
    assert_same(m, g2, {"x": w(2, 3, 9, 9)})


# ---- torch exports with exporter noise ------------------------------------------------------------

def _torch_model():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding="same")
            self.bn1 = nn.BatchNorm2d(8)
            self.dw = nn.Conv2d(8, 8, 3, stride=2, groups=8, padding=1)
            self.c3 = nn.Conv2d(8, 16, 1, bias=False)
            self.fc = nn.Linear(16 * 5 * 5, 10)
            self.bn_fc = nn.BatchNorm1d(10)

        def forward(self, x):
            x = F.relu6(self.bn1(self.c1(x)))
            y = self.dw(x)
            x = y * torch.sigmoid(y)
            x = F.pad(x, (0, 1, 0, 1))
            x = F.max_pool2d(self.c3(x), 2, ceil_mode=True)
            x = x.reshape(x.shape[0], -1)
            return torch.softmax(self.bn_fc(self.fc(x)), dim=-1)

    torch.manual_seed(0)
    net = Net().eval()
    for bn in (net.bn1, net.bn_fc):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
    return net


@pytest.fixture(scope="module")
def torch_exports() -> dict[int, onnx.ModelProto]:
    import warnings

    torch = pytest.importorskip("torch", reason="torch is not installed (optional on ARMv8.0 boards)")

    net = _torch_model()
    out = {}
    for opset in (11, 13, 17):
        f = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.randn(1, 3, 16, 16),), f, opset_version=opset, dynamo=False,
                              input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
        out[opset] = onnx.load_from_string(f.getvalue())
    return out


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_torch_export_noise_removed(torch_exports: dict, opset: int) -> None:
    m = torch_exports[opset]
    orig_ops = {n.op_type for n in m.graph.node}
    assert {"Shape", "Gather", "Concat", "Constant", "ConstantOfShape", "Slice", "Pad", "Clip",
            "Sigmoid", "BatchNormalization"} <= orig_ops  # the noise is really there
    g = load_graph(m, name="net", batch=2)
    assert [(n.op, n.activation.op if n.activation else None) for n in g.nodes] == [
        ("Conv", "Clip"), ("Conv", "Swish"), ("Conv", None), ("MaxPool", None), ("Reshape", None),
        ("Gemm", None), ("Softmax", None)]
    clip = g.nodes[0].activation
    assert clip.params == {"min": 0.0, "max": 6.0}
    assert g.inputs == ["x"] and g.outputs == ["y"] and g.shape("x") == (2, 3, 16, 16)
    assert g.shape("y") == (2, 10)
    assert not any(v.dtype == np.int64 for v in g.initializers.values())
    assert all(v.flags.writeable for v in g.initializers.values())
    assert_same(m, g, {"x": w(2, 3, 16, 16)})


def test_shapes_match_onnx_shape_inference(torch_exports: dict) -> None:
    m = torch_exports[17]
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    assert_shapes_like_onnx(m, load_graph(m, optimize=False), 5)


# ---- constant ops -------------------------------------------------------------------------------

def _ev(op: str, inputs: list, **attrs) -> list[np.ndarray]:
    out = eval_constant_node(Node("n", op, [f"i{k}" for k in range(len(inputs))], ["o"], attrs), inputs)
    assert out is not None
    return out


def test_constant_ops() -> None:
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    assert _ev("Shape", [x])[0].tolist() == [2, 3, 4]
    assert _ev("Shape", [x], start=1)[0].tolist() == [3, 4]
    assert _ev("Gather", [i64(2, 3, 4), np.array(-1, np.int64)])[0].tolist() == 4
    assert _ev("Slice", [x, i64(-1), i64(-2**63), i64(2), i64(-1)])[0].shape == (2, 3, 4)
    assert _ev("Slice", [x, i64(1), i64(100), i64(1)])[0].shape == (2, 2, 4)
    assert _ev("Div", [i64(-7, 7), i64(2, -2)])[0].tolist() == [-3, -3]
    assert _ev("Reshape", [x, i64(0, -1)])[0].shape == (2, 12)
    assert _ev("Reshape", [x], shape=[4, 0, 2])[0].shape == (4, 3, 2)
    scalars = [np.array(v, np.int64) for v in (1, 7, 2)]
    assert _ev("Range", scalars)[0].tolist() == [1, 3, 5]
    cos = _ev("ConstantOfShape", [i64(2, 2)], value=np.array([7], np.int64))[0]
    assert cos.dtype == np.int64 and cos.tolist() == [[7, 7], [7, 7]]
    assert _ev("Where", [_ev("Equal", [i64(1, 2), i64(1, 3)])[0], i64(5, 5), i64(0, 0)])[0].tolist() == [5, 0]
    assert _ev("Expand", [np.ones((3, 1), np.float32), i64(2, 1, 4)])[0].shape == (2, 3, 4)
    assert _ev("Unsqueeze", [x, i64(0, -1)])[0].shape == (1, 2, 3, 4, 1)
    assert _ev("Unsqueeze", [x], axes=[1])[0].shape == (2, 1, 3, 4)
    assert _ev("Squeeze", [np.ones((1, 3, 1))], axes=[-1])[0].shape == (1, 3)
    assert _ev("ReduceProd", [i64(2, 3, 4)], keepdims=0)[0].tolist() == 24
    assert _ev("Cast", [np.array([1.7, -1.7])], to=TensorProto.INT64)[0].tolist() == [1, -1]
    padded = _ev("Pad", [np.ones((2, 2), np.float32), i64(0, 1, 1, 0), np.array(9, np.float32)])[0]
    assert padded.tolist() == [[9, 1, 1], [9, 1, 1], [9, 9, 9]]
    assert _ev("Pad", [np.ones((3, 3))], pads=[-1, 0, 0, -1], value=0.0)[0].shape == (2, 2)
    assert _ev("Transpose", [x], perm=[2, 0, 1])[0].shape == (4, 2, 3)
    assert _ev("Concat", [i64(1), i64(2, 3)], axis=0)[0].tolist() == [1, 2, 3]
    assert eval_constant_node(Node("n", "Conv", ["a", "b"], ["c"]), [x, x]) is None
    with pytest.raises(EdgetuneError) as e:
        _ev("Reshape", [x, i64(5, -1)])
    assert "node n" in one_line_error(e)


# ---- Slice on runtime data -------------------------------------------------------------------------

BIG = np.iinfo(np.int64).max


def _slice_model() -> onnx.ModelProto:
    """Opset 13: an option-A shortcut (x[:, :, ::2, ::2] then zero channels) plus slices with negative
    starts/ends, omitted axes, negative and out-of-range steps, next to a strided conv path."""
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Slice", ["x", "s0", "e0", "a0", "t0"], ["h"], name="sub_h"),
        helper.make_node("Slice", ["h", "s0", "e0", "a1", "t0"], ["hw"], name="sub_w"),
        helper.make_node("Pad", ["hw", "pads"], ["sc"], name="pad_c"),
        helper.make_node("Add", ["c", "sc"], ["y"], name="add"),
        # axes omitted (leading axes), negative starts/ends, no steps
        helper.make_node("Slice", ["x", "s2", "e2"], ["z"], name="neg"),
        # negative steps, clamped out-of-range starts/ends, negative axes
        helper.make_node("Slice", ["y", "s3", "e3", "a3", "t3"], ["r"], name="rev"),
    ]
    inits = {"W": w(8, 4, 3, 3), "s0": i64(0), "e0": i64(BIG), "a0": i64(2), "a1": i64(3), "t0": i64(2),
             "pads": i64(0, 2, 0, 0, 0, 2, 0, 0),
             "s2": i64(0, -3, -7, 1), "e2": i64(1, -1, BIG, -2),
             "s3": i64(-1, 100, 5), "e3": i64(-BIG, 0, -100), "a3": i64(-1, 1, -2), "t3": i64(-1, -2, -3)}
    return mk(nodes, [vi("x", [1, 4, 10, 9])], [vi("y", [1, 8, 5, 5]), vi("z", None), vi("r", None)], inits,
              opset=13)


def test_runtime_slice_lifted_and_normalised() -> None:
    m = _slice_model()
    g = load_graph(m, name="sl")
    by = {n.name: n for n in g.nodes}
    assert [n.op for n in g.nodes] == ["Conv", "Slice", "Slice", "Pad", "Add", "Slice", "Slice"]
    for n in ("sub_h", "sub_w", "neg", "rev"):
        assert by[n].inputs[:1] == by[n].inputs and len(by[n].inputs) == 1, n
    assert by["sub_h"].attrs == {"starts": [0], "ends": [10], "axes": [2], "steps": [2]}
    assert by["sub_w"].attrs == {"starts": [0], "ends": [9], "axes": [3], "steps": [2]}
    assert by["neg"].attrs == {"starts": [0, 1, 3, 1], "ends": [1, 3, 10, 7], "axes": [0, 1, 2, 3],
                               "steps": [1, 1, 1, 1]}
    # y is (1, 8, 5, 5): axis 1 from 7 down to (excl.) 0 by 2, axis 2 from 4 to the start by 3, axis 3
    # from 4 to the start by 1 (ends past the start become -(dim + 1))
    assert by["rev"].attrs == {"starts": [7, 4, 4], "ends": [0, -6, -6], "axes": [1, 2, 3],
                               "steps": [-2, -3, -1]}
    assert by["pad_c"].attrs["pads"] == [0, 2, 0, 0, 0, 2, 0, 0]
    assert g.shape("h") == (1, 4, 5, 9) and g.shape("hw") == (1, 4, 5, 5) and g.shape("sc") == (1, 8, 5, 5)
    assert g.shape("z") == (1, 2, 7, 6) and g.shape("r") == (1, 4, 2, 5)
    assert_shapes_like_onnx(m, g, min_checked=6)


def test_runtime_slice_exports_and_runs() -> None:
    from edgetune.graph.reference import run_graph

    m = _slice_model()
    g = load_graph(m, name="sl")
    x = w(1, 4, 10, 9)
    want = run(m, {"x": x})
    got_ort = run(to_onnx(g), {"x": x})
    ref = run_graph(g, {"x": x})
    for name, a, b in zip(g.outputs, want, got_ort, strict=True):
        assert a.shape == b.shape and np.array_equal(a, b), name
        scale = max(float(np.abs(a).max()), 1e-12)
        assert ref[name].shape == a.shape and float(np.abs(ref[name] - a).max()) / scale <= 1e-6, name
    # single-node sessions (how ONNX Runtime primitives run a node)
    for n in g.nodes:
        if n.op in ("Slice", "Pad"):
            feed = {"x": x} if n.inputs[0] == "x" else {n.inputs[0]: run_graph(g, {"x": x}, keep=True)[n.inputs[0]]}
            out = run(to_onnx(g, nodes=[n]), feed)[0]
            assert np.array_equal(out, run_graph(g, {"x": x}, keep=True)[n.outputs[0]]), n.name


def test_attribute_form_slice() -> None:
    """The opset < 10 form (starts/ends/axes attributes, no steps) normalises like the input form and
    exports as inputs (opset 13) or as attributes (opset 9)."""
    from edgetune.graph.fold import fold_and_infer
    from edgetune.graph.ir import Graph, Value
    from edgetune.graph.reference import run_graph

    attrs = {"starts": [1, -3], "ends": [-1, 1000], "axes": [3, 1]}
    node = Node("s9", "Slice", ["x"], ["y"], dict(attrs))
    g = Graph("a", [node], ["x"], ["y"], {"x": Value("x", (2, 5, 4, 6))}, {}, opset=13)
    fold_and_infer(g)
    assert node.attrs == {"starts": [2, 1], "ends": [5, 5], "axes": [1, 3], "steps": [1, 1]}
    assert g.shape("y") == (2, 3, 4, 4)
    x = w(2, 5, 4, 6)
    op9 = mk([helper.make_node("Slice", ["x"], ["y"], **attrs)], [vi("x", [2, 5, 4, 6])], [vi("y", None)],
             opset=9)
    want = run(op9, {"x": x})[0]
    assert np.array_equal(want, x[:, 2:5, :, 1:5])
    assert np.abs(run_graph(g, {"x": x})["y"] - want).max() <= 1e-6
    m13, m9 = to_onnx(g), to_onnx(g, opset=9)
    assert len(m13.graph.node[0].input) == 5 and list(m9.graph.node[0].input) == ["x"]
    onnx.checker.check_model(m9)
    assert np.array_equal(run(m13, {"x": x})[0], want) and np.array_equal(run(m9, {"x": x})[0], want)
    with pytest.raises(EdgetuneError, match="steps"):
        node.attrs["steps"] = [1, 2]
        to_onnx(g, opset=9)


def test_slice_errors_name_the_node() -> None:
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    dyn = mk([helper.make_node("Slice", ["x", "s", "e"], ["y"], name="dyn_starts")],
             [vi("x", [1, 4]), vi("s", [1], TensorProto.INT64)], [vi("y", None)], {"e": i64(3)}, opset=13)
    with pytest.raises(UnsupportedModelError, match="dyn_starts .*starts input 's' is not a constant"):
        load_graph(dyn)
    for name, inits, msg in (
        ("zero_step", {"s": i64(0), "e": i64(3), "a": i64(1), "t": i64(0)}, "step 0"),
        ("bad_axis", {"s": i64(0), "e": i64(3), "a": i64(2), "t": i64(1)}, "axis 2 out of range"),
        ("empty", {"s": i64(3), "e": i64(1), "a": i64(1), "t": i64(1)}, "leave nothing"),
    ):
        m = mk([helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"], name=name)], [vi("x", [1, 4])],
               [vi("y", None)], inits, opset=13)
        with pytest.raises(EdgetuneError) as e:
            load_graph(m)
        assert one_line_error(e).startswith(f"node {name} (Slice): ") and msg in one_line_error(e)
