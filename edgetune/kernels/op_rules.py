"""Checks of a node's attributes that more than one backend's own converter makes (LiteRT's TFLite writer,
torch's lowering): written once, each backend adds the word for what it does ("converted", "lowered").

Why here: the backends that write a node in their own terms (not as ONNX) refuse the same Resize forms for
the same reasons; the one-node ONNX backends need none of this (kernels/one_node.py).
"""

from __future__ import annotations

from edgetune.graph.ir import Graph, Node


def text(value: object) -> str:
    """A string attribute as str (the IR may hold bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def float32_io_problem(node: Node, graph: Graph, why: str) -> str | None:
    """Why `node` cannot be written: no dynamic input, a value of unknown shape, or a value that is not
    float32 (`why` says what the backend computes); None when all its inputs and outputs are known float32."""
    dyn = graph.dynamic_inputs(node)
    if not dyn:
        return "no dynamic input (should have been constant-folded)"
    for v in [*dyn, *(o for o in node.outputs if o)]:
        try:
            graph.shape(v)
        except KeyError:
            return f"shape of {v} unknown"
        if graph.dtype(v) != "float32":
            return f"{v} is {graph.dtype(v)} ({why})"
    return None


def resize_shape_problem(node: Node, graph: Graph, verb: str) -> str | None:
    """Why a Resize is not `verb` by a backend that resizes spatially by output/input sizes only: not 4-D
    spatial, antialias or axes, or scales that are not those sizes; None when its shapes are fine."""
    x, y = graph.shape(node.inputs[0]), graph.shape(node.outputs[0])
    if len(x) != 4 or x[:2] != y[:2]:
        return f"only spatial Resize of a 4-D tensor is {verb}"
    if int(node.attr("antialias", 0)) or node.attr("axes") is not None:
        return f"Resize with antialias or axes is not {verb}"
    scales = graph.initializers.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if scales is not None and scales.size and [float(f) for f in scales.reshape(-1)] != [o / i for o, i in
                                                                                       zip(y, x, strict=True)]:
        return f"Resize scales that are not output/input sizes are not {verb}"
    if text(node.attr("mode", "nearest")) == "nearest" and any(o % i for o, i in zip(y[2:], x[2:], strict=True)):
        return f"nearest Resize by a non-integer factor is not {verb}"
    return None
