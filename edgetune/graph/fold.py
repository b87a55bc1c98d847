"""Constant folding interleaved with shape inference, in one topological sweep.

Why interleaved: exporters compute shapes at run time (Shape -> Gather -> Concat -> Reshape); once the
input shapes are static those chains are constants, but only if shapes are known when the sweep reaches
them, and shapes downstream of a Reshape are known only once its target folded. Each node is either
evaluated (all inputs constant, or a Shape of a static value) and becomes initializers, or it has its
constant "parameter" inputs lifted into attributes (Reshape shape, Squeeze/Unsqueeze axes, Clip
bounds, Pad pads, Slice starts/ends/axes/steps) and its output shapes inferred. Ops without a shape
function here stay generic nodes, shaped by ONNX shape inference (`graph/generic.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgetune.errors import EdgetuneError, UnsupportedModelError
from edgetune.graph.constant_ops import eval_constant_node, np_dtype, pads_full, resolve_reshape
from edgetune.graph.generic import infer_generic
from edgetune.graph.ir import Graph, Node
from edgetune.graph.shapes import SHAPE_FNS, infer_node, node_error


def _const(graph: Graph, node: Node, i: int, what: str) -> np.ndarray | None:
    """The constant at input i (None when omitted); a non-constant one is unsupported."""
    if i >= len(node.inputs) or not node.inputs[i]:
        return None
    arr = graph.initializers.get(node.inputs[i])
    if arr is None:
        raise UnsupportedModelError(f"node {node.name} ({node.op}): {what} input {node.inputs[i]!r} is not "
                                    f"a constant")
    return arr


def _ints(a: np.ndarray) -> list[int]:
    return [int(v) for v in a.reshape(-1)]


def _rank(graph: Graph, node: Node) -> int:
    return len(graph.shape(node.inputs[0]))


def _lift_reshape(node: Node, g: Graph) -> list[Node]:
    shape = _const(g, node, 1, "shape")
    target = _ints(shape) if shape is not None else node.attr("shape")
    if target is None:
        raise node_error(node, "no target shape")
    node.attrs = {"shape": list(resolve_reshape(g.shape(node.inputs[0]), target, node.attr("allowzero", 0),
                                                f"node {node.name} (Reshape)"))}
    node.inputs = node.inputs[:1]
    return [node]


def _lift_axes(node: Node, g: Graph) -> list[Node]:
    axes = _const(g, node, 1, "axes")
    if axes is not None:
        node.attrs["axes"] = _ints(axes)
    node.inputs = node.inputs[:1]
    return [node]


def _lift_clip(node: Node, g: Graph) -> list[Node]:
    lo, hi = _const(g, node, 1, "min"), _const(g, node, 2, "max")
    if lo is not None:
        node.attrs["min"] = float(lo.reshape(-1)[0])
    if hi is not None:
        node.attrs["max"] = float(hi.reshape(-1)[0])
    node.inputs = node.inputs[:1]
    return [node]


def _lift_pad(node: Node, g: Graph) -> list[Node]:
    pads = _const(g, node, 1, "pads")
    if pads is not None:
        value = _const(g, node, 2, "constant_value")
        axes = _const(g, node, 3, "axes")
        node.attrs["pads"] = pads_full(_ints(pads), _ints(axes) if axes is not None else None, _rank(g, node))
        node.attrs["value"] = float(value.reshape(-1)[0]) if value is not None and value.size else 0.0
    mode = node.attr("mode", "constant")
    if mode != "constant":
        raise UnsupportedModelError(f"node {node.name} (Pad): mode {mode!r} is not supported (only constant)")
    node.inputs = node.inputs[:1]
    return [node]


def _lift_slice(node: Node, g: Graph) -> list[Node]:
    """Slice's starts/ends/axes/steps inputs (opset >= 10) become attributes; shape inference
    normalises them (and the opset < 10 attribute form) for the input's shape."""
    if len(node.inputs) > 1:
        starts, ends = _const(g, node, 1, "starts"), _const(g, node, 2, "ends")
        axes, steps = _const(g, node, 3, "axes"), _const(g, node, 4, "steps")
        if starts is None or ends is None:
            raise node_error(node, "starts and ends are required")
        node.attrs = {"starts": _ints(starts), "ends": _ints(ends)}
        if axes is not None:
            node.attrs["axes"] = _ints(axes)
        if steps is not None:
            node.attrs["steps"] = _ints(steps)
        node.inputs = node.inputs[:1]
    return [node]


def _lift_dropout(node: Node, g: Graph) -> list[Node]:
    node.inputs, node.attrs = node.inputs[:1], {}
    return [node]


def _lift_softmax(node: Node, g: Graph) -> list[Node]:
    """Opset < 13 Softmax works on the input flattened at `axis`; keep it only when that is the last axis."""
    rank = _rank(g, node)
    axis = int(node.attr("axis", 1 if g.opset < 13 else -1))
    axis = axis % rank if rank else 0
    if g.opset < 13 and axis != rank - 1:
        if any(d != 1 for d in g.shape(node.inputs[0])[axis + 1:]):
            raise UnsupportedModelError(f"node {node.name} (Softmax): opset {g.opset} softmax over axes "
                                        f"{axis}.. of a rank-{rank} input is not supported")
    node.attrs["axis"] = axis
    return [node]


def _lift_reduce_mean(node: Node, g: Graph) -> list[Node]:
    """ReduceMean over H, W of an NCHW tensor is GlobalAveragePool (+ Flatten without keepdims); any
    other ReduceMean (a transformer's LayerNorm pieces, a token mean) stays a generic node."""
    axes = _const(g, node, 1, "axes") if len(node.inputs) > 1 and node.inputs[1] in g.initializers else None
    axes_l = _ints(axes) if axes is not None else node.attr("axes")
    rank = _rank(g, node)
    if rank != 4 or sorted(a % 4 for a in (axes_l or [])) != [2, 3] or \
            (len(node.inputs) > 1 and node.inputs[1] and axes is None):
        return [node]
    if node.attr("keepdims", 1):
        return [Node(node.name, "GlobalAveragePool", node.inputs[:1], node.outputs)]
    mid = f"{node.outputs[0]}__gap"
    return [Node(node.name, "GlobalAveragePool", node.inputs[:1], [mid]),
            Node(f"{node.name}__flatten", "Flatten", [mid], node.outputs, {"axis": 1})]


def _lift_batchnorm(node: Node, g: Graph) -> list[Node]:
    if node.attr("training_mode", 0):
        raise UnsupportedModelError(f"node {node.name} (BatchNormalization): training_mode=1 is not "
                                    "supported")
    return [node]


def _lift_cast(node: Node, g: Graph) -> list[Node]:
    """A Cast of runtime data to its own dtype (exporters emit these) is an Identity; others are generic."""
    if np_dtype(int(node.attr("to", 0))).name != g.dtype(node.inputs[0]):
        return [node]
    node.op, node.attrs = "Identity", {}
    return [node]


_LIFT: dict[str, Callable[[Node, Graph], list[Node]]] = {
    "Cast": _lift_cast,
    "Reshape": _lift_reshape,
    "Squeeze": _lift_axes,
    "Unsqueeze": _lift_axes,
    "Clip": _lift_clip,
    "Pad": _lift_pad,
    "Slice": _lift_slice,
    "Dropout": _lift_dropout,
    "Softmax": _lift_softmax,
    "ReduceMean": _lift_reduce_mean,
    "BatchNormalization": _lift_batchnorm,
}


def _evaluate(node: Node, graph: Graph) -> list[np.ndarray] | None:
    """Run a node whose inputs are all constants: constant_ops first, the reference executor else."""
    inputs = graph.weights(node)
    outs = eval_constant_node(node, inputs)
    if outs is not None:
        return outs
    try:
        from edgetune.graph.reference import run_node  # lazy: runtime depends on graph, not the reverse
    except ImportError:
        return None
    try:
        return [np.asarray(o) for o in run_node(node, inputs)]
    except EdgetuneError:
        raise
    except Exception:  # an op the reference does not know: leave it for shape inference to judge
        return None


def _trim_outputs(node: Node, used: set[str]) -> None:
    """Drop unused optional outputs (BN statistics, Dropout mask, MaxPool indices); a used one is
    something edgetune cannot compute."""
    extra = [o for o in node.outputs[1:] if o]
    if node.op in ("BatchNormalization", "Dropout", "MaxPool") and extra:
        if any(o in used for o in extra):
            raise UnsupportedModelError(f"node {node.name} ({node.op}): its optional outputs {extra} are "
                                        f"used; only the first output is supported")
        node.outputs = node.outputs[:1]


def _infer(node: Node, graph: Graph) -> None:
    """edgetune's own shape function where it has one, ONNX shape inference for generic nodes."""
    if node.op in SHAPE_FNS:
        infer_node(node, graph)
    else:
        infer_generic(node, graph)
_MALFORMED = (ValueError, IndexError, KeyError, ZeroDivisionError, TypeError, RuntimeError, OverflowError,
              AttributeError)


def _guarded(node: Node, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)`, with an error a malformed node provokes (attribute lists too short, a stride of 0,
    an axis given twice...) turned into a one-line error naming the node."""
    try:
        return fn(*args)
    except EdgetuneError:
        raise
    except _MALFORMED as e:
        first = (str(e).splitlines() or [""])[0][:160]
        raise node_error(node, f"malformed attributes or inputs ({type(e).__name__}: {first})") from None


def fold_and_infer(graph: Graph, source: str | None = None) -> None:
    """Fold constants and infer shapes in one sweep; raise one UnsupportedModelError listing every node
    whose shapes cannot be inferred (with the first reason)."""
    used = set(graph.outputs) | {i for n in graph.nodes for i in n.inputs}
    stuck: dict[str, list[str]] = {}
    reasons: list[str] = []
    unknown: set[str] = set()  # outputs of stuck nodes: their consumers cannot be inferred
    kept: list[Node] = []
    for node in graph.nodes:
        if any(i in unknown for i in node.inputs):
            unknown.update(node.outputs)
            continue
        if all(not i or i in graph.initializers for i in node.inputs):
            outs = _guarded(node, _evaluate, node, graph)
            if outs is not None:
                for name, arr in zip(node.outputs, outs, strict=False):
                    if name:
                        graph.initializers[name] = arr
                        graph.values.pop(name, None)
                continue
        if node.op in ("Shape", "Size") and node.inputs[0] in graph.values \
                and graph.values[node.inputs[0]].shape is not None:
            dummy = np.broadcast_to(np.empty((), np.uint8), graph.values[node.inputs[0]].shape)  # no memory
            out = _guarded(node, eval_constant_node, node, [dummy])
            graph.initializers[node.outputs[0]] = out[0]
            graph.values.pop(node.outputs[0], None)
            continue
        lift = _LIFT.get(node.op)
        _trim_outputs(node, used)
        try:
            for n in _guarded(node, lift, node, graph) if lift else [node]:
                _guarded(n, _infer, n, graph)
                kept.append(n)
        except UnsupportedModelError as e:
            if node.op in SHAPE_FNS or lift is not None:
                raise
            stuck.setdefault(node.op, []).append(node.name)
            reasons.append(str(e))
            unknown.update(node.outputs)
    graph.nodes = kept
    if stuck:
        raise UnsupportedModelError(f"unsupported ops in {source or graph.name}: " + ", ".join(
            f"{op} ({', '.join(names)})" for op, names in stuck.items()) + f" (first: {reasons[0]})")
