"""Which nodes the ONNX -> TFLite converter (`convert.py`) writes, and why it refuses the others.

Why a module of its own, free of third-party imports: the library descriptor (`__init__.py`) must say
which primitive joins a segment for a node without importing LiteRT, and the primitives' `supports`
must refuse a node before any conversion is tried, so that a node the converter cannot write is simply
not a candidate (never a crash, never a wrong kernel: verification checks the rest).
"""

from __future__ import annotations

from typing import Any

from edgetune.graph.ir import Activation, Graph, Node
from edgetune.kernels.op_rules import float32_io_problem, resize_shape_problem, text

CONV_OPS = frozenset({"Conv"})
GEMM_OPS = frozenset({"Gemm", "MatMul"})
UNARY_OPS = frozenset({"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Exp"})
BINARY_OPS = frozenset({"Add", "Sub", "Mul", "Div"})
SHAPE_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose"})
OTHER_OPS = frozenset({"MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Softmax", "Pad", "Slice", "Split",
                       "Resize", "ConvTranspose"}
                      | UNARY_OPS | BINARY_OPS | SHAPE_OPS)
OPS = CONV_OPS | GEMM_OPS | OTHER_OPS
ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Swish"})
MAX_RANK = 5  # TFLite's broadcasting elementwise kernels and XNNPACK go to rank 5 at least

PRIMITIVE_NAMES = {"conv": "conv.xnnpack.litert", "gemm": "gemm.xnnpack.litert", "op": "op.xnnpack.litert",
                   "conv_nchw": "conv.xnnpack_nchw.litert"}


def primitive_for(node: Node) -> str | None:
    """The LiteRT primitive that would run `node` (and join a LiteRT segment for it); None for an op the
    converter does not write."""
    if node.op in CONV_OPS:
        return PRIMITIVE_NAMES["conv"]
    if node.op in GEMM_OPS:
        return PRIMITIVE_NAMES["gemm"]
    return PRIMITIVE_NAMES["op"] if node.op in OTHER_OPS else None


def unsupported(node: Node, graph: Graph) -> str | None:
    """None when the converter writes `node` as TFLite operators, else why not (one short line)."""
    if node.op not in OPS:
        return f"{node.op} is not converted to TFLite"
    problem = float32_io_problem(node, graph, "only float32 is converted")
    if problem is not None:
        return problem
    dyn = graph.dynamic_inputs(node)
    for v in [*dyn, *(o for o in node.outputs if o)]:
        if not 0 < len(graph.shape(v)) <= MAX_RANK:
            return f"{v} has rank {len(graph.shape(v))} (1..{MAX_RANK} converted)"
    if node.op != "Split" and len([o for o in node.outputs if o]) != 1:
        return "only single-output nodes are converted"
    if node.activation is not None and node.activation.op not in ACTIVATIONS:
        return f"fused activation {node.activation.op} is not converted"
    if node.op not in BINARY_OPS | CONV_OPS | GEMM_OPS | {"Concat", "ConvTranspose"} and len(dyn) != 1:
        return f"{node.op} with {len(dyn)} dynamic inputs is not converted"
    check = _CHECKS.get(node.op)
    return check(node, graph) if check is not None else None


def _conv(node: Node, graph: Graph) -> str | None:
    if len(graph.shape(node.inputs[0])) != 4:
        return "only 2-D convolution (4-D input)"
    if node.inputs[1] not in graph.initializers or (len(node.inputs) > 2 and node.inputs[2]
                                                    and node.inputs[2] not in graph.initializers):
        return "weights and bias must be constant"
    c = graph.shape(node.inputs[0])[1]
    co, cg = graph.shape(node.inputs[1])[:2]
    group = int(node.attr("group", 1))
    if group > 1 and not (group == c and cg == 1 and co % c == 0):
        if c % group or co % group:
            return f"group {group} does not divide the channels"
    return _window_attrs(node)


def _gemm(node: Node, graph: Graph) -> str | None:
    a, b = node.inputs[0], node.inputs[1]
    if node.op == "Gemm":
        if int(node.attr("transA", 0)):
            return "Gemm with transA is not converted"
        if b not in graph.initializers:
            return "Gemm's B must be constant"
        if a not in graph.dynamic_inputs(node) or len(graph.shape(a)) != 2:
            return "Gemm's A must be a dynamic 2-D tensor"
        if len(node.inputs) > 2 and node.inputs[2]:
            c, n_out = node.inputs[2], graph.shape(node.outputs[0])[1]
            shape = graph.shape(c) if c in graph.initializers else None
            if shape is None or any(d != 1 for d in shape[:-1]) or (shape and shape[-1] not in (1, n_out)):
                return "Gemm's C must be a constant row over the outputs"
        return None
    if a not in graph.dynamic_inputs(node):
        return "MatMul's A must be dynamic"
    ra, rb = len(graph.shape(a)), len(graph.shape(b))
    if ra < 2 or rb < 2:
        return "MatMul of a vector is not converted"
    if b in graph.initializers and rb != 2 and ra != rb:
        return "MatMul's constant B must be 2-D or of A's rank"
    if b not in graph.initializers and ra != rb:
        return "MatMul of dynamic operands of different ranks is not converted"
    return None


def _pool(node: Node, graph: Graph) -> str | None:
    if len(graph.shape(node.inputs[0])) != 4:
        return "only 2-D pooling (4-D input)"
    if int(node.attr("storage_order", 0)):
        return "storage_order is not converted"
    if any(int(d) != 1 for d in node.attr("dilations", [1, 1]) or [1, 1]):
        return "dilated pooling is not converted"
    reason = _window_attrs(node)
    if reason or node.op == "MaxPool":
        return reason
    geometry = window_geometry(node, graph)
    if any(over for *_, over in geometry):
        return "AveragePool's ceil_mode overhang is not converted"
    padded = any(pb or pe for pb, pe, _ in geometry)
    if padded and not int(node.attr("count_include_pad", 0)) and not same_padding(node, graph):
        return "AveragePool excluding asymmetric pads is not converted"
    return None


def _window_attrs(node: Node) -> str | None:
    auto = node.attr("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto not in ("NOTSET", "", None):
        return f"auto_pad {auto} is not converted"
    if any(int(p) < 0 for p in node.attr("pads", [0, 0, 0, 0]) or [0, 0, 0, 0]):
        return "negative pads are not converted"
    return None


def _concat(node: Node, graph: Graph) -> str | None:
    ranks = {len(graph.shape(v)) for v in node.inputs if v}
    return None if len(ranks) == 1 else "inputs of different ranks"


def _softmax(node: Node, graph: Graph) -> str | None:
    rank = len(graph.shape(node.inputs[0]))
    axis = int(node.attr("axis", -1)) % rank
    if axis == rank - 1 or (rank == 4 and axis == 1):
        return None
    return f"Softmax over axis {axis} of a rank-{rank} tensor is not converted"


def _pad(node: Node, graph: Graph) -> str | None:
    mode = node.attr("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        return f"Pad mode {mode} is not converted"
    pads = node.attr("pads")
    if pads is None or len(node.inputs) > 1 and any(v and v not in graph.initializers for v in node.inputs[1:]):
        return "Pad's pads must be constant"
    if any(int(p) < 0 for p in pads):
        return "negative pads are not converted"
    return None


def _binary(node: Node, graph: Graph) -> str | None:
    if len(node.inputs) != 2:
        return "binary op without two inputs"
    return None


def _slice(node: Node, graph: Graph) -> str | None:
    if any(int(st) < 1 for st in node.attr("steps") or []):
        return "Slice with a negative step is not converted"
    return None


def _split(node: Node, graph: Graph) -> str | None:
    if not all(node.outputs):
        return "Split with an omitted output is not converted"
    return None


def _resize(node: Node, graph: Graph) -> str | None:
    problem = resize_shape_problem(node, graph, "converted")
    if problem is not None:
        return problem
    mode, ctm = text(node.attr("mode", "nearest")), text(node.attr("coordinate_transformation_mode", "half_pixel"))
    out_hw = graph.shape(node.outputs[0])[2:]
    if mode == "linear":
        if ctm in ("half_pixel", "align_corners", "asymmetric") or (ctm == "pytorch_half_pixel" and min(out_hw) > 1):
            return None
        return f"linear Resize with {ctm} coordinates is not converted"
    if mode != "nearest":
        return f"Resize mode {mode} is not converted"
    nearest = text(node.attr("nearest_mode", "round_prefer_floor"))
    if ctm in ("half_pixel", "pytorch_half_pixel") or (ctm == "asymmetric" and nearest == "floor"):
        return None  # both repeat each input element factor times
    return f"nearest Resize with {ctm} coordinates and {nearest} rounding is not converted"


def _conv_transpose(node: Node, graph: Graph) -> str | None:
    if len(graph.shape(node.inputs[0])) != 4:
        return "only 2-D ConvTranspose (4-D input) is converted"
    if any(v not in graph.initializers for v in node.inputs[1:] if v):
        return "weights and bias must be constant"
    if int(node.attr("group", 1)) != 1 or any(int(d) != 1 for d in node.attr("dilations") or [1, 1]):
        return "grouped or dilated ConvTranspose is not converted"
    if node.attr("output_shape") is not None or any(int(p) for p in node.attr("output_padding") or []):
        return "ConvTranspose with output_shape or output_padding is not converted"
    return _window_attrs(node)



_CHECKS: dict[str, Any] = {"Conv": _conv, "Gemm": _gemm, "MatMul": _gemm, "MaxPool": _pool, "AveragePool": _pool,
                           "Concat": _concat, "Softmax": _softmax, "Pad": _pad, "Slice": _slice, "Split": _split,
                           "Resize": _resize, "ConvTranspose": _conv_transpose,
                           **{op: _binary for op in BINARY_OPS}}


# ---- window geometry, shared with the converter -----------------------------------------------------

def window_geometry(node: Node, graph: Graph) -> list[tuple[int, int, int]]:
    """Per spatial axis of a Conv/MaxPool/AveragePool: (begin pad, end pad as far as a window reads it,
    ceil_mode overhang past the explicit end pad): what a VALID TFLite window needs around the input."""
    x, y = graph.shape(node.inputs[0]), graph.shape(node.outputs[0])
    kernel = node.attr("kernel_shape") or graph.shape(node.inputs[1])[2:]
    strides = node.attr("strides") or [1, 1]
    dil = node.attr("dilations") or [1, 1]
    pads = node.attr("pads") or [0, 0, 0, 0]
    out = []
    for i in range(2):
        reach = (int(kernel[i]) - 1) * int(dil[i]) + 1
        pb, pe = int(pads[i]), int(pads[2 + i])
        needed = max((y[2 + i] - 1) * int(strides[i]) + reach - x[2 + i] - pb, 0)  # the end a window reads
        out.append((pb, min(needed, pe), max(needed - pe, 0)))
    return out


def same_padding(node: Node, graph: Graph) -> bool:
    """Whether the window's padding is TFLite's SAME: output ceil(size / stride), the total pad split with the
    larger half at the end (ceil_mode overhang counts as end padding)."""
    x, y = graph.shape(node.inputs[0]), graph.shape(node.outputs[0])
    kernel = node.attr("kernel_shape") or graph.shape(node.inputs[1])[2:]
    strides = node.attr("strides") or [1, 1]
    dil = node.attr("dilations") or [1, 1]
    for i, (pb, pe, over) in enumerate(window_geometry(node, graph)):
        s = int(strides[i])
        if y[2 + i] != -(-x[2 + i] // s):
            return False
        total = max((y[2 + i] - 1) * s + (int(kernel[i]) - 1) * int(dil[i]) + 1 - x[2 + i], 0)
        if (pb, pe + over) != (total // 2, total - total // 2):
            return False
    return True


def activation_of(node: Node) -> Activation:
    """A standalone activation node as the `Activation` it computes (Clip's bounds as params)."""
    params: dict[str, float] = {}
    for key in ("min", "max", "alpha", "beta"):
        if node.attr(key) is not None:
            params[key] = float(node.attr(key))
    return Activation(node.op, params)
