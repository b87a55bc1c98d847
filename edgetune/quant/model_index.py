"""Which nodes of an ONNX model can compute in int8, and what quantising each one touches.

Names: the units are named by their ONNX node names. For a model written by `graph.to_onnx(graph)`, the
ONNX node computing an edgetune Graph node N is named N, and N's fused activation (if any) is a second
ONNX node `N_<act>` (`N_relu`, `N_clip`; Swish: `N_swish_sigmoid` + `N_swish`) reading `<output>__pre`; so
the names in `int8_nodes` are the Graph's node names. A Relu, or a Clip with min 0, that is the only
consumer of a unit's output is *folded*: in int8 it is dropped and the unit's output quantiser takes the
activation's range (lower bound 0 = the zero point: exact), as ONNX Runtime's quantiser does, so ORT
fuses Conv + Q into one QLinearConv and OpenVINO the conv with its FakeQuantize.

Op kinds (what ONNX Runtime and OpenVINO both run in int8 from QDQ form): Conv (per-channel int8 weights,
axis 0, int32 bias), Gemm (B constant, axis 0 with transB else 1), MatMul (constant B per column, or two
activations), Add/Mul, Concat, AveragePool/GlobalAveragePool, and MaxPool, whose output keeps its input's
qparams (ORT runs it on uint8 only then). Reshape/Flatten/Transpose/Squeeze/Unsqueeze never change values:
their outputs inherit their input's qparams, so a Q/DQ around them is dropped by both runtimes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import onnx
from onnx import numpy_helper

from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Graph
from edgetune.graph.onnx_export import to_onnx

KINDS = {
    "Conv": "conv", "Gemm": "gemm", "MatMul": "matmul", "Add": "binary", "Mul": "binary", "Concat": "concat",
    "AveragePool": "pool", "GlobalAveragePool": "pool", "MaxPool": "maxpool",
}
PASSTHROUGH = frozenset({"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze"})
_FLOAT = onnx.TensorProto.FLOAT


@dataclass(frozen=True)
class Weight:
    """A constant weight input quantised per channel along `axis` (int8 symmetric)."""

    slot: int
    name: str
    axis: int


@dataclass(frozen=True)
class Unit:
    """One quantisable node: `activations` are its (input slot, tensor) quantised per-tensor uint8,
    `constants` (slot, initializer) quantised per-tensor uint8 (Add/Mul/Concat operands), `weight` and
    `bias` (slot, initializer) the conv/GEMM parameters, `folded` the index of the activation node folded
    into the output range, `output` the tensor whose quantiser ends the unit."""

    name: str
    index: int
    kind: str
    activations: tuple[tuple[int, str], ...]
    constants: tuple[tuple[int, str], ...] = ()
    weight: Weight | None = None
    bias: tuple[int, str] | None = None
    folded: int | None = None
    output: str = ""
    output_bounds: tuple[float, float] = (-np.inf, np.inf)


class ModelIndex:
    """Edges, constants, tensor types and quantisable units of one float ONNX model (built once)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        g = model.graph
        self.nodes = list(g.node)
        self.names = [n.name or f"{n.op_type}_{i}" for i, n in enumerate(self.nodes)]
        if len(set(self.names)) != len(self.names):
            dup = next(n for n in self.names if self.names.count(n) > 1)
            raise EdgetuneError(f"model {g.name!r}: node name {dup!r} is used twice (quantisation names nodes)")
        self.initializers = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.inputs = [i.name for i in g.input if i.name not in self.initializers]
        self.outputs = [o.name for o in g.output]
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[tuple[int, int]]] = {}
        for i, n in enumerate(self.nodes):
            for o in n.output:
                if o:
                    self.producer[o] = i
            for slot, t in enumerate(n.input):
                if t:
                    self.consumers.setdefault(t, []).append((i, slot))
        self.float_tensors = _float_tensors(model)
        self.units: dict[str, Unit] = {}
        for i, n in enumerate(self.nodes):
            unit = self._unit(i, n)
            if unit is not None:
                self.units[unit.name] = unit

    def is_float(self, tensor: str) -> bool:
        return tensor in self.float_tensors

    def constant(self, tensor: str) -> np.ndarray | None:
        return self.initializers.get(tensor)

    def source(self, tensor: str) -> str:
        """The tensor whose qparams `tensor` shares: up through value-preserving ops (PASSTHROUGH, MaxPool)."""
        while tensor in self.producer:
            n = self.nodes[self.producer[tensor]]
            if n.op_type not in PASSTHROUGH and n.op_type != "MaxPool":
                break
            tensor = n.input[0]
        return tensor

    def calibration_tensors(self) -> list[str]:
        """The tensors whose ranges any variant can need: each unit's activation inputs and output and the
        tensors they inherit qparams from (the tensor itself too: in a segment's subgraph, where it may be
        an input, it has no source to inherit from)."""
        need: dict[str, None] = {}
        for u in self.units.values():
            for t in [t for _, t in u.activations] + [u.output]:
                need[self.source(t)] = None
                need[t] = None
        return [t for t in need if t not in self.initializers]

    # -- units -------------------------------------------------------------------------------------------

    def _unit(self, i: int, n: onnx.NodeProto) -> Unit | None:
        kind = KINDS.get(n.op_type)
        if kind is None or not n.output or not all(self.is_float(o) for o in n.output if o):
            return None
        ins = list(n.input)
        if not ins or not all(self.is_float(t) or t in self.initializers for t in ins if t):
            return None
        name = self.names[i]
        if kind == "conv":
            u = self._conv(name, i, ins)
        elif kind == "gemm":
            u = self._gemm(name, i, n, ins)
        elif kind == "matmul":
            u = self._matmul(name, i, ins)
        elif kind in ("binary", "concat"):
            dynamic = tuple((s, t) for s, t in enumerate(ins) if t and t not in self.initializers)
            consts = tuple((s, t) for s, t in enumerate(ins) if t and t in self.initializers)
            u = Unit(name, i, kind, dynamic, consts) if dynamic and "" not in ins else None
        elif kind == "maxpool":
            u = Unit(name, i, kind, ((0, ins[0]),)) if len(n.output) == 1 and ins[0] not in self.initializers \
                else None
        else:
            u = Unit(name, i, kind, ((0, ins[0]),)) if ins[0] not in self.initializers else None
        return None if u is None else self._with_output(u, n)

    def _conv(self, name: str, i: int, ins: list[str]) -> Unit | None:
        w = self.constant(ins[1]) if len(ins) > 1 else None
        if w is None or w.ndim < 3 or ins[0] in self.initializers:
            return None
        bias = (2, ins[2]) if len(ins) > 2 and ins[2] else None
        if bias is not None and (self.constant(bias[1]) is None or self.constant(bias[1]).shape != (w.shape[0],)):
            return None
        return Unit(name, i, "conv", ((0, ins[0]),), weight=Weight(1, ins[1], 0), bias=bias)

    def _gemm(self, name: str, i: int, n: onnx.NodeProto, ins: list[str]) -> Unit | None:
        a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
        b = self.constant(ins[1]) if len(ins) > 1 else None
        if b is None or b.ndim != 2 or ins[0] in self.initializers or a.get("transA", 0) \
                or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
            return None
        axis = 0 if a.get("transB", 0) else 1
        bias = None
        if len(ins) > 2 and ins[2]:
            c = self.constant(ins[2])
            if c is None or c.size != b.shape[axis] or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
                return None
            bias = (2, ins[2])
        return Unit(name, i, "gemm", ((0, ins[0]),), weight=Weight(1, ins[1], axis), bias=bias)

    def _matmul(self, name: str, i: int, ins: list[str]) -> Unit | None:
        if ins[0] in self.initializers:
            return None
        b = self.constant(ins[1])
        if b is None:
            return Unit(name, i, "matmul", ((0, ins[0]), (1, ins[1])))
        if b.ndim != 2:
            return None
        return Unit(name, i, "matmul", ((0, ins[0]),), weight=Weight(1, ins[1], 1))

    def _with_output(self, u: Unit, n: onnx.NodeProto) -> Unit:
        out = n.output[0]
        act = None if u.kind == "maxpool" else self._foldable(out)
        if act is None:
            return replace(u, output=out)
        j, bounds = act
        return replace(u, folded=j, output=self.nodes[j].output[0], output_bounds=bounds)

    def _foldable(self, tensor: str) -> tuple[int, tuple[float, float]] | None:
        """(node index, (0, max)) of a Relu/Clip(min 0) that alone consumes `tensor`, else None."""
        cons = self.consumers.get(tensor, [])
        if len(cons) != 1 or tensor in self.outputs:
            return None
        j, slot = cons[0]
        a = self.nodes[j]
        if slot != 0 or not a.output or not self.is_float(a.output[0]):
            return None
        if a.op_type == "Relu":
            return j, (0.0, np.inf)
        if a.op_type != "Clip":
            return None
        attrs = {x.name: onnx.helper.get_attribute_value(x) for x in a.attribute}
        lo, hi = attrs.get("min", -np.inf), attrs.get("max", np.inf)
        if len(a.input) > 1 and a.input[1]:
            c = self.constant(a.input[1])
            lo = float(c) if c is not None and c.size == 1 else np.nan  # a run-time bound cannot be folded
        if len(a.input) > 2 and a.input[2]:
            c = self.constant(a.input[2])
            hi = float(c) if c is not None and c.size == 1 else np.nan
        return (j, (0.0, float(hi))) if lo == 0.0 and hi > 0.0 else None


def _float_tensors(model: onnx.ModelProto) -> set[str]:
    """Names of the float32 tensors (graph inputs, node outputs, initializers), from ONNX shape inference."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as e:  # noqa: BLE001 - any inference failure is reported as the model's problem
        raise EdgetuneError(f"model {model.graph.name!r}: ONNX shape inference failed ({type(e).__name__}: {e})") \
            from None
    g = inferred.graph
    out = {v.name for v in list(g.input) + list(g.value_info) + list(g.output)
           if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type == _FLOAT}
    out |= {t.name for t in g.initializer if t.data_type == _FLOAT}
    return out


def quantisable_nodes(model_or_graph: onnx.ModelProto | Graph) -> list[str]:
    """Names of the nodes that can compute in int8, in node order (for a Graph: its node names, via
    `to_onnx`; see the module docstring for the naming)."""
    if isinstance(model_or_graph, Graph):
        model_or_graph = to_onnx(model_or_graph)
    return list(ModelIndex(model_or_graph).units)
