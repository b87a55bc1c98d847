"""Data-free quantisation helpers (Nagel et al. 2019, "Data-Free Quantization Through Weight
Equalization and Bias Correction"): cross-layer equalisation of the float model, and bias correction of
the int8 nodes.

Why: BN folding leaves convolutions (depthwise ones above all) whose output channels' weight ranges differ
by 10x or more; per-tensor int8 then rounds the small channels to nothing. CLE rescales each channel i of
a Conv -> (Relu) -> Conv pair, W1[i] /= s_i and W2[:, i] *= s_i with s_i = sqrt(r1_i / r2_i), so both
layers' per-channel ranges become sqrt(r1_i r2_i): the same function (a positive scale commutes with Relu),
better conditioned for int8. Clip(0, 6) does not commute with a per-channel scale; `clip_as_relu=True`
replaces it by Relu on equalised pairs as AIMET does (the float function then changes: verify it).

Bias correction: quantising W adds eps = W_q - W, whose mean effect on the output is conv(E[x], eps) per
output channel (E[x] the per-position mean input over the calibration feeds, zero padding included); an
int8 node subtracts it from its bias (`QuantSpec.bias_corrections`, applied by `Quantizer` to int8 nodes
only, so float nodes of a mixed variant keep their bias).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgetune.kernels.libraries.onnxruntime.session import session
from edgetune.quant import maths
from edgetune.quant.calibrate import with_outputs
from edgetune.quant.model_index import ModelIndex, Unit
from edgetune.quant.spec import QuantSpec


@dataclasses.dataclass(frozen=True)
class _Pair:
    first: int  # node index of the conv whose output channels are scaled down
    act: int | None  # the Relu (or Clip) between them
    second: int  # the conv whose input channels are scaled up


def _attrs(n: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in n.attribute}


def _only_user(idx: ModelIndex, tensor: str) -> int | None:
    cons = idx.consumers.get(tensor, [])
    if len(cons) != 1 or tensor in idx.outputs or cons[0][1] != 0:
        return None
    return cons[0][0]


def _weights_private(idx: ModelIndex, j: int) -> bool:
    """The node's weight and bias are constants no other node reads (CLE changes them in place)."""
    n = idx.nodes[j]
    return all(t in idx.initializers and len(idx.consumers.get(t, [])) == 1 for t in n.input[1:] if t)


def equalisable_pairs(idx: ModelIndex, clip_as_relu: bool = False) -> list[_Pair]:
    """Conv -> [Relu | Clip(0, x) with clip_as_relu] -> Conv, each link the only consumer of its input,
    the second conv's groups aligned with the first conv's channels (regular or depthwise)."""
    pairs = []
    for i, n in enumerate(idx.nodes):
        if n.op_type != "Conv" or i not in _conv_units(idx) or not _weights_private(idx, i):
            continue
        j = _only_user(idx, n.output[0])
        act = None
        if j is not None and idx.nodes[j].op_type in ("Relu", "Clip"):
            if idx.nodes[j].op_type == "Clip" and not (clip_as_relu and _clip_min_zero(idx, idx.nodes[j])):
                continue
            act, j = j, _only_user(idx, idx.nodes[j].output[0])
        if j is None or idx.nodes[j].op_type != "Conv" or j not in _conv_units(idx) or not _weights_private(idx, j):
            continue
        w2 = idx.initializers[idx.nodes[j].input[1]]
        groups = int(_attrs(idx.nodes[j]).get("group", 1))
        if w2.shape[1] * groups != idx.initializers[n.input[1]].shape[0]:
            continue
        pairs.append(_Pair(i, act, j))
    return pairs


def _conv_units(idx: ModelIndex) -> set[int]:
    return {u.index for u in idx.units.values() if u.kind == "conv"}


def _clip_min_zero(idx: ModelIndex, clip: onnx.NodeProto) -> bool:
    lo = _attrs(clip).get("min", None)
    if len(clip.input) > 1 and clip.input[1]:
        c = idx.constant(clip.input[1])
        lo = float(c) if c is not None and c.size == 1 else None
    return lo == 0.0


def _input_channel_ranges(w2: np.ndarray, groups: int) -> np.ndarray:
    """max |W2| per input channel of a grouped conv (channel c of the input = group c // cig, column c % cig)."""
    co, cig = w2.shape[0], w2.shape[1]
    cog = co // groups
    per = np.abs(w2).reshape(groups, cog, cig, -1).max(axis=(1, 3))  # (groups, cig)
    return per.reshape(-1)


def _scale_input_channels(w2: np.ndarray, groups: int, s: np.ndarray) -> np.ndarray:
    co, cig = w2.shape[0], w2.shape[1]
    view = w2.reshape(groups, co // groups, cig, -1) * s.reshape(groups, 1, cig, 1)
    return view.reshape(w2.shape)


def equalize(model: onnx.ModelProto, iterations: int = 20, clip_as_relu: bool = False) -> onnx.ModelProto:
    """The float `model` with every equalisable Conv pair's channels rescaled (the same function unless
    `clip_as_relu`); chains (conv -> depthwise -> conv) converge over `iterations` sweeps."""
    idx = ModelIndex(model)
    pairs = equalisable_pairs(idx, clip_as_relu)
    w = {t: idx.initializers[t].astype(np.float64) for p in pairs for j in (p.first, p.second)
         for t in idx.nodes[j].input[1:] if t}
    for _ in range(iterations):
        for p in pairs:
            a, b = idx.nodes[p.first], idx.nodes[p.second]
            w1, w2 = w[a.input[1]], w[b.input[1]]
            groups = int(_attrs(b).get("group", 1))
            r1 = np.abs(w1).reshape(w1.shape[0], -1).max(axis=1)
            r2 = _input_channel_ranges(w2, groups)
            s = np.where((r1 > 0) & (r2 > 0), np.sqrt(r1 / np.where(r2 > 0, r2, 1.0)), 1.0)
            w[a.input[1]] = w1 / s.reshape((-1,) + (1,) * (w1.ndim - 1))
            if len(a.input) > 2 and a.input[2]:
                w[a.input[2]] = w[a.input[2]] / s
            w[b.input[1]] = _scale_input_channels(w2, groups, s)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for t in out.graph.initializer:
        if t.name in w:
            t.CopyFrom(numpy_helper.from_array(w[t.name].astype(idx.initializers[t.name].dtype), t.name))
    for p in pairs:
        if p.act is not None and out.graph.node[p.act].op_type == "Clip":
            clip = out.graph.node[p.act]
            clip.CopyFrom(helper.make_node("Relu", [clip.input[0]], list(clip.output), name=clip.name))
    return out


def _mean_inputs(model: onnx.ModelProto, idx: ModelIndex, units: list[Unit], feeds: Iterable[Mapping[str, np.ndarray]],
                 threads: int) -> dict[str, np.ndarray]:
    """Per-position mean (over feeds and batch) of each unit's activation input."""
    tensors = list(dict.fromkeys(u.activations[0][1] for u in units))
    sess = session(with_outputs(model, [t for t in tensors if t not in idx.inputs]), threads, "basic")
    names = [o.name for o in sess.get_outputs()]
    inputs = {i.name for i in sess.get_inputs()}
    sums: dict[str, np.ndarray] = {}
    n = 0
    for feed in feeds:
        outs = dict(zip(names, sess.run(None, {k: v for k, v in feed.items() if k in inputs}), strict=True))
        outs.update({k: v for k, v in feed.items() if k in tensors})
        for t in tensors:
            m = np.asarray(outs[t], np.float64).mean(axis=0)
            sums[t] = sums.get(t, 0.0) + m
        n += 1
    return {t: s / max(n, 1) for t, s in sums.items()}


def _weight_error(idx: ModelIndex, u: Unit, spec: QuantSpec) -> np.ndarray:
    assert u.weight is not None
    w = idx.initializers[u.weight.name].astype(np.float32)
    scales = maths.weight_scales(w, u.weight.axis, spec.weight_qmax, spec.per_channel)
    q = maths.quantize_weights(w, scales, u.weight.axis, spec.weight_qmax).astype(np.float64)
    shape = [1] * w.ndim
    shape[u.weight.axis] = -1
    return q * scales.reshape(shape).astype(np.float64) - w.astype(np.float64)


def _conv_of_mean(node: onnx.NodeProto, mean: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Per output channel mean over positions of conv(mean input, eps): the output shift eps causes."""
    attrs = {k: v for k, v in _attrs(node).items()}
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, *mean.shape])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], **attrs)], "eps", [x], [y],
                          initializer=[numpy_helper.from_array(eps.astype(np.float32), "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    y_val = session(m, 1, "disable").run(None, {"x": mean[None].astype(np.float32)})[0].astype(np.float64)
    return y_val[0].reshape(y_val.shape[1], -1).mean(axis=1)


def bias_corrections(model: onnx.ModelProto, feeds: Iterable[Mapping[str, np.ndarray]], spec: QuantSpec,
                     nodes: Iterable[str] | None = None, threads: int = 1) -> dict[str, tuple[float, ...]]:
    """Per Conv/Gemm unit (default: all), the mean output shift its int8 weights cause on `feeds`: put
    it in `spec.bias_corrections` (dataclasses.replace) and the Quantizer subtracts it from that node's
    bias whenever the node is int8."""
    idx = ModelIndex(model)
    chosen = set(idx.units) if nodes is None else set(nodes)
    units = [u for u in idx.units.values() if u.name in chosen and u.kind in ("conv", "gemm")]
    if not units:
        return {}
    means = _mean_inputs(model, idx, units, feeds, threads)
    out: dict[str, tuple[float, ...]] = {}
    for u in units:
        eps = _weight_error(idx, u, spec)
        mean = means[u.activations[0][1]]
        if u.kind == "conv":
            shift = _conv_of_mean(idx.nodes[u.index], mean, eps)
        else:
            assert u.weight is not None
            x = mean.reshape(-1)
            shift = eps @ x if u.weight.axis == 0 else x @ eps
        out[u.name] = tuple(float(v) for v in shift)
    return out
