"""edgetune IR -> ONNX, for a whole graph or any subset of its nodes.

Why: ONNX Runtime is both a peer to compare against and a primitive library; single nodes and runs of
nodes become ONNX Runtime sessions through this exporter. It re-expands fused activations, writes the
lifted attributes back as inputs where the target opset wants inputs, and copies each weight once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, helper, numpy_helper

from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Activation, Graph, Node

_FLOAT_ATTRS = {"alpha", "beta", "epsilon", "bias", "momentum", "min", "max", "value", "ratio"}


class _Builder:
    """Collects nodes and initializers of the model being written, with fresh names."""

    def __init__(self, graph: Graph, opset: int) -> None:
        self.graph, self.opset = graph, opset
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, onnx.TensorProto] = {}
        self.taken: set[str] = set(graph.values) | set(graph.initializers)

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def const(self, base: str, arr: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits[name] = numpy_helper.from_array(np.asarray(arr), name)
        return name

    def use_initializer(self, name: str) -> None:
        if name not in self.inits:
            self.inits[name] = numpy_helper.from_array(self.graph.initializers[name], name)

    def add(self, op: str, inputs: Sequence[str], outputs: Sequence[str], name: str, **attrs: Any) -> None:
        self.nodes.append(helper.make_node(op, list(inputs), list(outputs), name=name, **attrs))


def _attr_values(attrs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if isinstance(v, np.ndarray):
            v = numpy_helper.from_array(v)
        elif isinstance(v, (list, tuple)):
            if not v:
                continue
            v = [x.item() if isinstance(x, np.generic) else x for x in v]
        elif isinstance(v, np.generic):
            v = v.item()
        if k in _FLOAT_ATTRS and isinstance(v, (int, float)):
            v = float(v)
        out[k] = v
    return out


def _write_node(b: _Builder, node: Node, out: list[str]) -> None:
    """Emit `node` (without its activation) producing `out`, in the form `b.opset` expects."""
    attrs = dict(node.attrs)
    inputs = list(node.inputs)
    dt = b.graph.dtype(node.inputs[0]) if node.inputs and node.inputs[0] else "float32"
    op = node.op
    if op == "Reshape":
        inputs.append(b.const(f"{node.name}_shape", np.array(attrs.pop("shape"), np.int64)))
    elif op in ("Squeeze", "Unsqueeze") and b.opset >= 13:
        inputs.append(b.const(f"{node.name}_axes", np.array(attrs.pop("axes"), np.int64)))
    elif op == "Clip":
        lo, hi = attrs.pop("min", -np.inf), attrs.pop("max", np.inf)
        inputs += [b.const(f"{node.name}_min", np.array(lo, dt)),
                   b.const(f"{node.name}_max", np.array(hi, dt))]
    elif op == "Pad":
        value = attrs.pop("value", 0.0)
        inputs += [b.const(f"{node.name}_pads", np.array(attrs.pop("pads"), np.int64)),
                   b.const(f"{node.name}_value", np.array(value, dt))]
    elif op == "Slice":
        starts, ends = list(attrs.pop("starts")), list(attrs.pop("ends"))
        axes = list(attrs.pop("axes", None) or range(len(starts)))
        steps = list(attrs.pop("steps", None) or [1] * len(starts))
        if b.opset >= 10:
            inputs += [b.const(f"{node.name}_{k}", np.array(v, np.int64))
                       for k, v in (("starts", starts), ("ends", ends), ("axes", axes), ("steps", steps))]
        elif any(st != 1 for st in steps):
            raise EdgetuneError(f"node {node.name} (Slice): steps {steps} cannot be exported at opset "
                                f"{b.opset} (needs 10)")
        else:
            attrs.update(starts=starts, ends=ends, axes=axes)
    elif op == "HardSwish" and b.opset < 14:
        b.add("HardSigmoid", inputs, [hs := b.fresh(f"{out[0]}__hs")], f"{node.name}_hs",
              alpha=1.0 / 6.0, beta=0.5)
        b.add("Mul", [inputs[0], hs], out, node.name)
        return
    elif op == "Softmax" and b.opset < 13 \
            and attrs.get("axis", -1) not in (-1, len(b.graph.shape(inputs[0])) - 1):
        raise EdgetuneError(f"node {node.name} (Softmax): axis {attrs['axis']} cannot be exported at "
                            f"opset {b.opset}")
    elif op in ("AveragePool", "MaxPool") and list(attrs.get("dilations", [1, 1])) == [1, 1] \
            and (op == "AveragePool" or b.opset < 10):
        attrs.pop("dilations", None)
    b.add(op, inputs, out, node.name, **_attr_values(attrs))


def _write_activation(b: _Builder, node: Node, act: Activation, x: str, y: str) -> None:
    """Emit the ONNX nodes computing activation `act` from x into y."""
    p = act.params
    name = f"{node.name}_{act.op.lower()}"
    dt = b.graph.dtype(y) if y in b.graph.values else "float32"
    if act.op == "Swish":
        s = b.fresh(f"{y}__sigmoid")
        b.add("Sigmoid", [x], [s], f"{name}_sigmoid")
        b.add("Mul", [x, s], [y], name)
    elif act.op == "Clip":
        lo = b.const(f"{name}_min", np.array(p.get("min", -np.inf), dt))
        hi = b.const(f"{name}_max", np.array(p.get("max", np.inf), dt))
        b.add("Clip", [x, lo, hi], [y], name)
    elif act.op == "HardSwish" and b.opset < 14:
        hs = b.fresh(f"{y}__hs")
        b.add("HardSigmoid", [x], [hs], f"{name}_hs", alpha=1.0 / 6.0, beta=0.5)
        b.add("Mul", [x, hs], [y], name)
    else:
        b.add(act.op, [x], [y], name, **{k: float(v) for k, v in p.items()})


def _value_info(graph: Graph, name: str) -> onnx.ValueInfoProto:
    if name in graph.initializers:
        arr = graph.initializers[name]
        shape, dtype = arr.shape, arr.dtype
    else:
        v = graph.values[name]
        shape, dtype = v.shape, np.dtype(v.dtype)
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(dtype), list(shape))


def _boundary(graph: Graph, sel: list[Node]) -> tuple[list[str], list[str]]:
    """Default inputs (read but not produced inside, not constants) and outputs (read outside or
    graph outputs) of a node subset, in first-use order."""
    produced = {o for n in sel for o in n.outputs}
    ins: dict[str, None] = {}
    for n in sel:
        for i in n.inputs:
            if i and i not in produced and i not in graph.initializers:
                ins[i] = None
    ids = {id(n) for n in sel}
    outside = set(graph.outputs) | {i for n in graph.nodes if id(n) not in ids for i in n.inputs}
    outs = [o for n in sel for o in n.outputs if o in outside]
    if not outs:
        outs = [o for o in sel[-1].outputs if o]
    return list(ins), outs


def to_onnx(graph: Graph, nodes: Iterable[Node | str] | None = None, inputs: Sequence[str] | None = None,
            outputs: Sequence[str] | None = None, opset: int | None = None) -> ModelProto:
    """An ONNX model computing the graph, or only `nodes` (objects or names) of it.

    Inputs/outputs default to the subset's boundary (see `_boundary`); `opset` defaults to the graph's
    opset, at least 13. The model passes onnx.checker and runs in ONNX Runtime.
    """
    sel = list(graph.nodes) if nodes is None else [graph.node(n) if isinstance(n, str) else n for n in nodes]
    if not sel:
        raise EdgetuneError(f"to_onnx({graph.name}): no nodes to export")
    opset = opset or max(graph.opset, 13)
    d_ins, d_outs = _boundary(graph, sel)
    if nodes is None:
        d_ins, d_outs = list(graph.inputs), list(graph.outputs)
    ins = list(inputs) if inputs is not None else d_ins
    outs = list(outputs) if outputs is not None else d_outs
    b = _Builder(graph, opset)
    for node in sel:
        if node.activation is None:
            _write_node(b, node, node.outputs)
            continue
        pre = b.fresh(f"{node.outputs[0]}__pre")
        _write_node(b, node, [pre] + node.outputs[1:])
        _write_activation(b, node, node.activation, pre, node.outputs[0])
    feed = set(ins)
    for node in sel:
        for i in node.inputs:
            if i and i in graph.initializers and i not in feed:
                b.use_initializer(i)
    g = helper.make_graph(b.nodes, graph.name or "edgetune", [_value_info(graph, i) for i in ins],
                          [_value_info(graph, o) for o in outs], initializer=list(b.inits.values()))
    op = helper.make_opsetid("", opset)
    model = helper.make_model(g, opset_imports=[op], producer_name="edgetune")
    model.ir_version = min(helper.find_min_ir_version_for([op]), onnx.IR_VERSION)
    return model
