"""QDQ variants of a float ONNX model where a chosen set of nodes computes in int8.

Why our own QDQ insertion rather than `onnxruntime.quantization.quantize_static(nodes_to_exclude=...)`:
quantize_static re-runs calibration, writes files and takes seconds per call, while the search builds
many variants of one model from ONE calibration; here a `Quantizer` quantises each weight once and a
variant is a list of protobuf nodes assembled in a few milliseconds.

The form (what ONNX Runtime's QDQ fusions and OpenVINO's low-precision transformations both expect):
- weights of Conv/Gemm/MatMul: per-channel symmetric int8 initializers + DequantizeLinear (axis per
  `model_index`), int32 biases in units of input scale x weight scale;
- activations: per-tensor asymmetric uint8 (no S8->U8 rewrite needed on x86, so the one-consumer rule of
  ORT's `QDQS8ToU8Transformer` never applies), ONE QuantizeLinear per tensor and one DequantizeLinear
  read by all its consumers (ORT duplicates a shared DQ per consumer itself);
- an int8 node's output is quantised where it is produced (the producer's output is renamed `<t>__f`,
  then Q -> `<t>__q` -> DQ -> `<t>`), so ORT fuses Conv+Q into QLinearConv; a folded Relu/Clip(0, x) is
  dropped (the quantiser clamps exactly there). Gemm/MatMul without a folded activation keep a float
  output unless an int8 node reads it (ORT then runs MatMulIntegerToFloat / QGemm with float output);
- a float producer read by an int8 node: Q/DQ after the producer (`<t>__q`, `<t>__dq`), only the int8
  consumers rewired; float consumers of an int8 producer read its DQ output. So the model holds exactly
  the Q/DQ of the int8/fp32 transitions, and a quantised tensor is quantised once;
- Reshape/Flatten/Transpose/Squeeze/Unsqueeze/MaxPool between int8 nodes get a Q/DQ with their input's
  qparams (lossless: both runtimes drop it and move uint8 data).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgetune.errors import EdgetuneError
from edgetune.quant import maths
from edgetune.quant.model_index import PASSTHROUGH, ModelIndex, Unit
from edgetune.quant.spec import QuantSpec

_INT8_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


class Quantizer:
    """Builds int8/fp32 variants of one float model from one `QuantSpec`; weights are quantised once."""

    def __init__(self, model: onnx.ModelProto, spec: QuantSpec, index: ModelIndex | None = None) -> None:
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        if opset < 13:
            raise EdgetuneError(f"model {model.graph.name!r}: opset {opset} < 13 cannot hold per-channel "
                                "DequantizeLinear; export it at opset 13 or later")
        self.model, self.spec = model, spec
        self.index = index or ModelIndex(model)
        self._inits = {t.name: t for t in model.graph.initializer}
        self._generated: dict[str, onnx.TensorProto] = {}
        self._dq_nodes: dict[str, onnx.NodeProto] = {}  # per constant (weight, bias, operand): its DQ node
        self._taken = set(self.index.producer) | set(self._inits) | set(self.index.inputs) | set(self.index.names)
        self._names: dict[tuple[str, str], str] = {}
        self._unit_constants: dict[str, tuple[list[onnx.NodeProto], dict[int, str]]] = {}
        self._weight_scale_of: dict[str, np.ndarray] = {}
        self._bounds = {u.output: u.output_bounds for u in self.index.units.values() if u.folded is not None}

    # -- public ------------------------------------------------------------------------------------------

    @property
    def units(self) -> list[str]:
        return list(self.index.units)

    def qparams(self, tensor: str) -> tuple[float, int]:
        """(scale, zero point) of `tensor`: its source's calibrated range, clamped to a folded activation."""
        src = self.index.source(tensor)
        r = self.spec.range_of(src)
        lo, hi = r.lo, r.hi
        bounds = self._bounds.get(src)
        if bounds is not None:
            lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
        return maths.affine_qparams(lo, hi)

    def q_output_name(self, tensor: str) -> str | None:
        """The name the uint8 output of `tensor`'s QuantizeLinear has in every variant that quantises it
        (None before any variant did)."""
        return self._names.get((tensor, "q"))

    def build(self, int8_nodes: Iterable[str] | None = None) -> onnx.ModelProto:
        """The QDQ model where the units named in `int8_nodes` (None: all) compute in int8."""
        units = self._select(int8_nodes)
        needs = {t for u in units for _, t in u.activations}
        produced_q = {u.output for u in units if self._quantises_output(u, needs)}
        inherited: set[str] = set()
        consumer_q: set[str] = set()
        for t in sorted(needs):
            if t not in produced_q and not self._inherits(t, produced_q, inherited, {u.index for u in units}):
                consumer_q.add(t)
        quantised = produced_q | inherited
        return self._assemble(units, quantised, consumer_q)

    # -- selection ---------------------------------------------------------------------------------------

    def _select(self, int8_nodes: Iterable[str] | None) -> list[Unit]:
        if int8_nodes is None:
            return list(self.index.units.values())
        chosen = set(int8_nodes)
        for name in sorted(chosen):
            if name not in self.index.units:
                what = "is not quantisable" if name in self.index.names else "is not a node of the model"
                raise EdgetuneError(f"int8 node {name!r} {what}")
        return [u for u in self.index.units.values() if u.name in chosen]

    def _quantises_output(self, u: Unit, needs: set[str]) -> bool:
        """Every int8 unit ends in a Q (its int8 kernel needs one), but a GEMM without a folded activation
        only when an int8 node reads its output (ORT and OpenVINO both give it a float output)."""
        if u.kind not in ("gemm", "matmul") or u.folded is not None:
            return True
        return self._feeds_int8(u.output, needs)

    def _feeds_int8(self, tensor: str, needs: set[str]) -> bool:
        if tensor in needs:
            return True
        for j, slot in self.index.consumers.get(tensor, []):
            n = self.index.nodes[j]
            preserving = n.op_type in PASSTHROUGH or n.op_type == "MaxPool"
            if slot == 0 and preserving and self._feeds_int8(n.output[0], needs):
                return True
        return False

    def _inherits(self, t: str, quantised: set[str], inherited: set[str], int8: set[int]) -> bool:
        """True (and `t` added to `inherited`) when `t` is a value-preserving op's output whose input is
        quantised: it then gets its input's qparams, losslessly."""
        if t in quantised or t in inherited:
            return True
        j = self.index.producer.get(t)
        if j is None or j in int8:
            return False
        n = self.index.nodes[j]
        if (n.op_type not in PASSTHROUGH and n.op_type != "MaxPool") or n.output[0] != t:
            return False
        if self._inherits(n.input[0], quantised, inherited, int8):
            inherited.add(t)
            return True
        return False

    # -- assembly ----------------------------------------------------------------------------------------

    def _assemble(self, units: list[Unit], quantised: set[str], consumer_q: set[str]) -> onnx.ModelProto:
        idx = self.index
        by_index = {u.index: u for u in units}
        skipped = {u.folded for u in units if u.folded is not None}
        nodes: list[onnx.NodeProto] = []
        for u in units:
            nodes += self._constant_dqs(u)[0]
        for t in idx.inputs:
            if t in consumer_q:
                nodes += self._qdq(t, self._name(t, "q"), self._name(t, "dq"))
        for i, n in enumerate(idx.nodes):
            if i in skipped:
                continue
            u = by_index.get(i)
            node = self._rewired(i, n, u, consumer_q)
            out = u.output if u is not None else n.output[0] if n.output else ""
            if out in quantised and (u is not None or n.output[0] == out):
                pre = self._name(out, "f")
                node.output[0] = pre
                nodes += [node] + self._qdq(pre, self._name(out, "q"), out, source=out)
            else:
                nodes.append(node)
            for o in ([out] if u is not None else list(n.output)):
                if o in consumer_q:
                    nodes += self._qdq(o, self._name(o, "q"), self._name(o, "dq"))
        return self._model(nodes)

    def _rewired(self, i: int, n: onnx.NodeProto, u: Unit | None, consumer_q: set[str]) -> onnx.NodeProto:
        node = onnx.NodeProto()
        node.CopyFrom(n)
        node.name = self.index.names[i]
        if u is None:
            return node
        inputs = list(n.input)
        inputs += [""] * (3 - len(inputs)) if u.weight is not None else []
        for slot, t in u.activations:
            if t in consumer_q:
                inputs[slot] = self._name(t, "dq")
        for slot, name in self._constant_dqs(u)[1].items():
            inputs[slot] = name
        while inputs and not inputs[-1]:
            inputs.pop()
        if u.folded is not None:
            node.output[0] = self.index.nodes[u.folded].output[0]
        del node.input[:]
        node.input.extend(inputs)
        return node

    def _qdq(self, src: str, q: str, dst: str, source: str | None = None) -> list[onnx.NodeProto]:
        """Q(src) -> q -> DQ -> dst with the qparams of `source` (default src)."""
        scale, zp = self._qparam_inits(source or src)
        return [helper.make_node("QuantizeLinear", [src, scale, zp], [q], name=self._name(q, "QuantizeLinear")),
                helper.make_node("DequantizeLinear", [q, scale, zp], [dst], name=self._name(dst, "DequantizeLinear"))]

    def _qparam_inits(self, tensor: str) -> tuple[str, str]:
        src = self.index.source(tensor)
        s_name, z_name = self._name(src, "scale"), self._name(src, "zero_point")
        if s_name not in self._generated:
            scale, zp = self.qparams(src)
            self._generated[s_name] = numpy_helper.from_array(np.array(scale, np.float32), s_name)
            self._generated[z_name] = numpy_helper.from_array(np.array(zp, np.uint8), z_name)
        return s_name, z_name

    def _constant_dqs(self, u: Unit) -> tuple[list[onnx.NodeProto], dict[int, str]]:
        """The DequantizeLinear nodes of a unit's constants and the input slot each one feeds (built once
        per Quantizer, reused by every variant)."""
        cached = self._unit_constants.get(u.name)
        if cached is None:
            nodes, slots = [], {}
            for slot, c in u.constants:
                nodes.append(self._const_operand(c))
                slots[slot] = nodes[-1].output[0]
            if u.weight is not None:
                scales = self._weight_scales(u)
                nodes.append(self._weight(u, scales))
                slots[u.weight.slot] = nodes[-1].output[0]
                bias = self._bias_values(u)
                if bias is not None:
                    nodes.append(self._bias(u, bias, scales))
                    slots[2] = nodes[-1].output[0]  # Conv's B, Gemm's C (added when the node had none)
            cached = self._unit_constants[u.name] = (nodes, slots)
        return cached

    def _const_operand(self, c: str) -> onnx.NodeProto:
        key = self._name(c, "dq")
        if key not in self._dq_nodes:
            arr = self.index.initializers[c].astype(np.float32)
            scale, zp = maths.affine_qparams(float(arr.min()), float(arr.max()))
            codes = maths.quantize_affine(arr, scale, zp)
            self._dq_nodes[key] = self._dq_node(c, key, codes, np.array(scale, np.float32), np.array(zp, np.uint8))
        return self._dq_nodes[key]

    def _weight_scales(self, u: Unit) -> np.ndarray:
        """Per-channel weight scales, raised where the unit's int32 bias would overflow."""
        assert u.weight is not None
        w = self.index.initializers[u.weight.name]
        scales = maths.weight_scales(w, u.weight.axis, self.spec.weight_qmax, self.spec.per_channel)
        bias = self._bias_values(u)
        if bias is not None:
            x_scale, _ = self.qparams(u.activations[0][1])
            scales = maths.widen_for_bias(bias, x_scale, scales)
        return scales

    def _bias_values(self, u: Unit) -> np.ndarray | None:
        """The unit's int8 bias in float: its own (or zeros) minus its bias correction, if any."""
        correction = self.spec.bias_corrections.get(u.name) if u.kind in ("conv", "gemm") else None
        if u.bias is None and correction is None:
            return None
        assert u.weight is not None
        n_out = self.index.initializers[u.weight.name].shape[u.weight.axis]
        b = np.zeros(n_out) if u.bias is None else self.index.initializers[u.bias[1]].astype(np.float64).reshape(-1)
        if correction is not None:
            if len(correction) != n_out:
                raise EdgetuneError(f"quantisation spec: bias correction of {u.name!r} has {len(correction)} "
                                    f"values, the node has {n_out} output channels")
            b = b - np.asarray(correction, np.float64)
        return b

    def _weight(self, u: Unit, scales: np.ndarray) -> onnx.NodeProto:
        """The weight's DQ node, shared by the units that read one weight with equal scales."""
        assert u.weight is not None
        w, axis = u.weight.name, u.weight.axis
        key = self._name(w, f"dq{axis}")
        if key in self._dq_nodes and not np.array_equal(self._weight_scale_of[key], scales):
            key = self._name(f"{w}__{u.name}", f"dq{axis}")
        if key not in self._dq_nodes:
            codes = maths.quantize_weights(self.index.initializers[w], scales, axis, self.spec.weight_qmax)
            self._dq_nodes[key] = self._dq_node(key, key, codes, scales, np.zeros(scales.shape, np.int8), axis)
            self._weight_scale_of[key] = scales
        return self._dq_nodes[key]

    def _bias(self, u: Unit, b: np.ndarray, w_scales: np.ndarray) -> onnx.NodeProto:
        key = self._name(u.name, "bias_dq")
        if key not in self._dq_nodes:
            x_scale, _ = self.qparams(u.activations[0][1])
            codes, scales = maths.quantize_bias(b, x_scale, w_scales)
            self._dq_nodes[key] = self._dq_node(key, key, codes, scales, np.zeros(codes.shape, np.int32), 0)
        return self._dq_nodes[key]

    def _dq_node(self, base: str, out: str, codes: np.ndarray, scale: np.ndarray, zp: np.ndarray,
                 axis: int | None = None) -> onnx.NodeProto:
        names = [self._name(base, "quantized"), self._name(base, "dq_scale"), self._name(base, "dq_zero_point")]
        for name, arr in zip(names, (codes, scale, zp), strict=True):
            self._generated[name] = numpy_helper.from_array(np.ascontiguousarray(arr), name)
        attrs = {} if axis is None or scale.ndim == 0 else {"axis": axis}
        return helper.make_node("DequantizeLinear", names, [out], name=self._name(out, "DequantizeLinear"), **attrs)

    def _model(self, nodes: list[onnx.NodeProto]) -> onnx.ModelProto:
        used = {t for n in nodes for t in n.input if t}
        src = self.model
        out = onnx.ModelProto()
        out.ir_version = src.ir_version
        out.producer_name = "edgetune.quant"
        out.opset_import.extend(src.opset_import)
        g = out.graph
        g.name = src.graph.name
        g.node.extend(nodes)
        g.initializer.extend(t for name, t in self._inits.items() if name in used)
        g.initializer.extend(t for name, t in self._generated.items() if name in used)
        g.input.extend(i for i in src.graph.input if i.name not in self._inits or i.name in used)
        g.output.extend(src.graph.output)
        return out

    def _name(self, base: str, role: str) -> str:
        """A fresh tensor/node name `<base>__<role>`, the same for every variant of this Quantizer."""
        key = (base, role)
        name = self._names.get(key)
        if name is None:
            name, k = f"{base}__{role}", 1
            while name in self._taken:
                name, k = f"{base}__{role}_{k}", k + 1
            self._taken.add(name)
            self._names[key] = name
        return name


def quantize(model: onnx.ModelProto, spec: QuantSpec, int8_nodes: Iterable[str] | None = None) -> onnx.ModelProto:
    """The QDQ model of `model` where `int8_nodes` (ONNX node names = edgetune Graph node names for a
    `to_onnx` model; None: every quantisable node) compute in int8 and every other node stays float.
    For many variants of one model, build a `Quantizer` once and call its `build`."""
    return Quantizer(model, spec).build(int8_nodes)


def int8_weights(model: onnx.ModelProto) -> set[str]:
    """Names of the nodes of a QDQ model that read a DequantizeLinear'd int8 weight (for checks)."""
    dq_int8 = set()
    inits = {t.name: t for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits \
                and inits[n.input[0]].data_type == onnx.TensorProto.INT8:
            dq_int8.add(n.output[0])
    return {n.name for n in model.graph.node if n.op_type not in _INT8_OPS and any(i in dq_int8 for i in n.input)}
