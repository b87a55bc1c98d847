"""Which nodes a torch segment computes (`lowering.py` writes them as torch calls), and why it refuses others.

Why a module of its own, free of torch: the library descriptor (`__init__.py`) must say which primitive
joins a torch segment for a node on machines where torch is absent (a Cortex-A72 board), and the
primitives' `supports` must refuse a node before any module is built, so that a node torch cannot compute
with ONNX semantics is simply not a candidate, with its reason (`edgetune primitives MODEL` shows it).
"""

from __future__ import annotations

from collections.abc import Callable

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.one_node import DEDICATED_OPS, pick_by_op
from edgetune.kernels.op_rules import float32_io_problem, resize_shape_problem, text

UNARY_OPS = frozenset({"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Exp", "Erf",
                       "Sqrt", "Neg", "Abs", "Gelu"})
BINARY_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Pow"})
SHAPE_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose"})
POOL_OPS = frozenset({"MaxPool", "AveragePool"})
REDUCE_OPS = frozenset({"ReduceMean", "ReduceSum", "ReduceMax"})
OPS = (DEDICATED_OPS | UNARY_OPS | BINARY_OPS | SHAPE_OPS | POOL_OPS | REDUCE_OPS
       | {"ConvTranspose", "GlobalAveragePool", "GlobalMaxPool", "Concat", "Softmax", "Pad", "Slice", "Split",
          "Resize", "BatchNormalization", "LayerNormalization", "LRN", "Gather", "PRelu"})
ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Swish"})
MULTI_OUTPUT_OPS = frozenset({"Split"})
MULTI_INPUT_OPS = BINARY_OPS | {"Concat", "Gemm", "MatMul"}  # others read one dynamic input, constants besides

PRIMITIVE_NAMES = {"conv": "conv.jit.torch", "gemm": "gemm.jit.torch", "op": "op.jit.torch"}


def primitive_for(node: Node) -> str | None:
    """The torch primitive that runs `node` alone and joins a torch segment for it; None for an op no torch
    segment computes."""
    if node.op not in OPS:
        return None
    return pick_by_op(node, PRIMITIVE_NAMES["conv"], PRIMITIVE_NAMES["gemm"], PRIMITIVE_NAMES["op"])


def unsupported(node: Node, graph: Graph) -> str | None:
    """None when a torch segment computes `node` exactly as ONNX defines it, else why not (one short line)."""
    if node.op not in OPS:
        return f"{node.op} is not lowered to torch"
    problem = float32_io_problem(node, graph, "torch segments compute float32 only")
    if problem is not None:
        return problem
    dyn = graph.dynamic_inputs(node)
    if node.op not in MULTI_OUTPUT_OPS and not (node.outputs[0] and not any(node.outputs[1:])):
        return f"{node.op} with more than one output is not lowered"
    if node.op not in MULTI_INPUT_OPS and len(dyn) != 1:
        return f"{node.op} with {len(dyn)} dynamic inputs is not lowered"
    if node.activation is not None and node.activation.op not in ACTIVATIONS:
        return f"fused activation {node.activation.op} is not lowered"
    check = _CHECKS.get(node.op)
    return check(node, graph) if check is not None else None


def _constant(node: Node, graph: Graph, first: int, what: str) -> str | None:
    """None when every input from `first` on is a constant (or omitted)."""
    if any(v and v not in graph.initializers for v in node.inputs[first:]):
        return f"{what} must be constant"
    return None


def _explicit_pads(node: Node) -> str | None:
    auto = text(node.attr("auto_pad", "NOTSET"))
    if auto not in ("NOTSET", ""):
        return f"auto_pad {auto} is not lowered (explicit pads only)"
    if any(int(p) < 0 for p in node.attr("pads") or []):
        return "negative pads are not lowered"
    return None


def _conv(node: Node, graph: Graph) -> str | None:
    if not 3 <= len(graph.shape(node.inputs[0])) <= 5:
        return "only 1-D, 2-D and 3-D convolution"
    return _constant(node, graph, 1, "weights and bias") or _explicit_pads(node)


def _conv_transpose(node: Node, graph: Graph) -> str | None:
    if node.attr("output_shape") is not None:
        return "ConvTranspose with output_shape is not lowered"
    return _conv(node, graph)


def _pool(node: Node, graph: Graph) -> str | None:
    if len(graph.shape(node.inputs[0])) != 4:
        return "only 2-D pooling (4-D input)"
    if int(node.attr("storage_order", 0)):
        return "storage_order is not lowered"
    if node.op == "AveragePool" and any(int(d) != 1 for d in node.attr("dilations") or []):
        return "dilated AveragePool is not lowered"
    return _explicit_pads(node)


def _global_pool(node: Node, graph: Graph) -> str | None:
    return None if len(graph.shape(node.inputs[0])) >= 3 else "global pooling needs spatial axes"


def _binary(node: Node, graph: Graph) -> str | None:
    return None if len(node.inputs) == 2 else f"{node.op} without two inputs"


def _softmax(node: Node, graph: Graph) -> str | None:
    if node.opset is not None and node.opset < 13:
        return "Softmax before opset 13 (over flattened axes) is not lowered"
    return None


def _reduce(node: Node, graph: Graph) -> str | None:
    if len(node.inputs) > 1 and node.inputs[1] and node.inputs[1] not in graph.initializers:
        return "the reduced axes must be constant"
    if reduce_axes(node, graph) == [] and int(node.attr("noop_with_empty_axes", 0)):
        return "noop_with_empty_axes is not lowered"
    return None


def _pad(node: Node, graph: Graph) -> str | None:
    if text(node.attr("mode", "constant")) != "constant":
        return f"Pad mode {text(node.attr('mode'))} is not lowered (constant only)"
    if node.attr("pads") is None or any(v and v not in graph.initializers for v in node.inputs[1:]):
        return "Pad's pads must be constant"
    return None


def _slice(node: Node, graph: Graph) -> str | None:
    if node.attr("starts") is None or node.attr("ends") is None:
        return "Slice's starts and ends must be constant"
    if any(int(s) < 1 for s in node.attr("steps") or []):
        return "Slice with a negative step is not lowered"
    return None


def _split(node: Node, graph: Graph) -> str | None:
    return None if all(node.outputs) else "Split with an omitted output is not lowered"


def _resize(node: Node, graph: Graph) -> str | None:
    problem = resize_shape_problem(node, graph, "lowered")
    if problem is not None:
        return problem
    mode, ctm = text(node.attr("mode", "nearest")), text(node.attr("coordinate_transformation_mode", "half_pixel"))
    out_hw = graph.shape(node.outputs[0])[2:]
    if mode == "linear":
        if ctm in ("half_pixel", "align_corners") or (ctm == "pytorch_half_pixel" and min(out_hw) > 1):
            return None
        return f"linear Resize with {ctm} coordinates is not lowered"
    if mode != "nearest":
        return f"Resize mode {mode} is not lowered"
    nearest = text(node.attr("nearest_mode", "round_prefer_floor"))
    if (ctm in ("half_pixel", "pytorch_half_pixel") and nearest.startswith("round_")) \
            or (ctm == "asymmetric" and nearest == "floor"):
        return None  # each repeats every input element factor times, as torch's nearest does
    return f"nearest Resize with {ctm} coordinates and {nearest} rounding is not lowered"


def _batchnorm(node: Node, graph: Graph) -> str | None:
    if int(node.attr("training_mode", 0)):
        return "BatchNormalization in training mode is not lowered"
    return _constant(node, graph, 1, "scale, bias, mean and variance")


def _layernorm(node: Node, graph: Graph) -> str | None:
    return _constant(node, graph, 1, "scale and bias")


def _lrn(node: Node, graph: Graph) -> str | None:
    return None if int(node.attr("size", 1)) % 2 else "LRN of an even size is not lowered"


def _gather(node: Node, graph: Graph) -> str | None:
    if node.inputs[1] not in graph.initializers:
        return "Gather's indices must be constant"
    return None


def _prelu(node: Node, graph: Graph) -> str | None:
    return _constant(node, graph, 1, "PRelu's slope")


def reduce_axes(node: Node, graph: Graph) -> list[int] | None:
    """The axes a Reduce* node reduces (attribute before opset 18, constant input after), None for all."""
    if len(node.inputs) > 1 and node.inputs[1] in graph.initializers:
        return [int(a) for a in graph.initializers[node.inputs[1]].reshape(-1)]
    axes = node.attr("axes")
    return None if axes is None else [int(a) for a in axes]



_CHECKS: dict[str, Callable[[Node, Graph], str | None]] = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "MaxPool": _pool, "AveragePool": _pool,
    "GlobalAveragePool": _global_pool, "GlobalMaxPool": _global_pool, "Softmax": _softmax, "Pad": _pad,
    "Slice": _slice, "Split": _split, "Resize": _resize, "BatchNormalization": _batchnorm,
    "LayerNormalization": _layernorm, "LRN": _lrn, "Gather": _gather, "PRelu": _prelu,
    **{op: _binary for op in BINARY_OPS}, **{op: _reduce for op in REDUCE_OPS},
}
