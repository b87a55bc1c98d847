"""Static shape inference for the ops that survive import, one function per op.

Why our own: every later stage (primitive choice, memory planning, cost tables) needs exact static
shapes, and a mismatch must be reported naming the node rather than surfacing later as a kernel crash.
Each function also writes the node's resolved attributes (explicit pads instead of auto_pad, defaults
filled in, axes made non-negative), so no later stage has to know ONNX defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from edgetune.errors import EdgetuneError, UnsupportedModelError
from edgetune.graph.constant_ops import normalize_slice
from edgetune.graph.ir import Graph, Node, Value

Shape = tuple[int, ...]


def node_error(node: Node, msg: str) -> EdgetuneError:
    """An error naming the node at fault, one line."""
    return EdgetuneError(f"node {node.name} ({node.op}): {msg}")


def _in(node: Node, g: Graph, i: int) -> Shape:
    if i >= len(node.inputs) or not node.inputs[i]:
        raise node_error(node, f"missing input {i}")
    try:
        return tuple(int(d) for d in g.shape(node.inputs[i]))
    except KeyError:
        raise node_error(node, f"no shape known for input {node.inputs[i]!r}") from None


def _opt_in(node: Node, g: Graph, i: int) -> Shape | None:
    return _in(node, g, i) if i < len(node.inputs) and node.inputs[i] else None


def _axis(node: Node, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise node_error(node, f"axis {axis} out of range for rank {rank}")
    return axis % rank


def broadcast(node: Node, *shapes: Shape) -> Shape:
    """Numpy/ONNX multidirectional broadcast, with an error naming the node."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise node_error(node, f"cannot broadcast shapes {' and '.join(str(s) for s in shapes)}") from None


def window_out_dim(size: int, k: int, s: int, d: int, pb: int, pe: int, ceil: bool) -> int:
    """Output length of a conv/pool window along one axis (ONNX rules, ceil_mode included)."""
    span = size + pb + pe - ((k - 1) * d + 1)
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= size + pb:  # the last window must start inside the input or the left padding
        out -= 1
    return out


def _resolve_pads(node: Node, spatial: Sequence[int], ks: Sequence[int], strides: Sequence[int],
                  dils: Sequence[int]) -> list[int]:
    """Explicit [begin..., end...] pads, resolving auto_pad SAME_UPPER/SAME_LOWER/VALID."""
    auto = node.attrs.pop("auto_pad", "NOTSET") or "NOTSET"
    r = len(spatial)
    if auto == "NOTSET":
        pads = [int(p) for p in node.attr("pads", [0] * (2 * r))]
        if len(pads) != 2 * r:
            raise node_error(node, f"pads {pads} should have {2 * r} values")
        return pads
    if auto == "VALID":
        return [0] * (2 * r)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise node_error(node, f"unknown auto_pad {auto!r}")
    begin, end = [], []
    for i, k, s, d in zip(spatial, ks, strides, dils, strict=True):
        out = -(-i // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - i, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin + end


def _window(node: Node, x: Shape, ks: Sequence[int], ceil: bool = False) -> Shape:
    """Fill strides/dilations/pads/kernel_shape of a 2-D windowed op and return the output H, W."""
    if len(x) != 4:
        raise UnsupportedModelError(f"node {node.name} ({node.op}): only 2-D (NCHW) inputs are supported, "
                                    f"input has shape {x}")
    ks = [int(k) for k in ks]
    strides = [int(s) for s in node.attr("strides", [1, 1])]
    dils = [int(d) for d in node.attr("dilations", [1, 1])]
    if len(ks) != 2 or len(strides) != 2 or len(dils) != 2:
        raise node_error(node, f"kernel_shape {ks}, strides {strides}, dilations {dils} must have 2 values")
    pads = _resolve_pads(node, x[2:], ks, strides, dils)
    node.attrs.update(kernel_shape=ks, strides=strides, dilations=dils, pads=pads)
    out = tuple(window_out_dim(x[2 + i], ks[i], strides[i], dils[i], pads[i], pads[i + 2], ceil) for i in range(2))
    if min(out) <= 0:
        raise node_error(node, f"window {ks} (pads {pads}, strides {strides}) does not fit input {x}")
    return out


# ---- per-op functions: (node, graph) -> output shapes ---------------------------------------------

def _conv(node: Node, g: Graph) -> list[Shape]:
    x, w = _in(node, g, 0), _in(node, g, 1)
    if len(w) != len(x) or len(x) != 4:
        raise UnsupportedModelError(f"node {node.name} (Conv): only 2-D convolutions are supported "
                                    f"(input {x}, weight {w})")
    group = int(node.attr("group", 1))
    if x[1] != w[1] * group or w[0] % group:
        raise node_error(node, f"channel mismatch: input {x} has {x[1]} channels, weight {w} with group "
                               f"{group} expects {w[1] * group}")
    b = _opt_in(node, g, 2)
    if b is not None and b != (w[0],):
        raise node_error(node, f"bias shape {b} does not match {w[0]} output channels")
    ks = node.attr("kernel_shape", list(w[2:]))
    if tuple(ks) != w[2:]:
        raise node_error(node, f"kernel_shape {ks} does not match weight shape {w}")
    node.attrs["group"] = group
    return [(x[0], w[0]) + _window(node, x, ks)]


def _pool(node: Node, g: Graph) -> list[Shape]:
    x = _in(node, g, 0)
    ks = node.attr("kernel_shape")
    if ks is None:
        raise node_error(node, "kernel_shape is required")
    ceil = bool(node.attr("ceil_mode", 0))
    node.attrs["ceil_mode"] = int(ceil)
    if node.op == "AveragePool":
        node.attrs["count_include_pad"] = int(node.attr("count_include_pad", 0))
    elif node.attrs.get("storage_order", 0) == 0:
        node.attrs.pop("storage_order", None)
    return [x[:2] + _window(node, x, ks, ceil)]


def _global_pool(node: Node, g: Graph) -> list[Shape]:
    x = _in(node, g, 0)
    if len(x) < 3:
        raise node_error(node, f"input {x} needs spatial dims")
    return [x[:2] + (1,) * (len(x) - 2)]


def _gemm(node: Node, g: Graph) -> list[Shape]:
    a, b = _in(node, g, 0), _in(node, g, 1)
    for k, v in (("alpha", 1.0), ("beta", 1.0)):
        node.attrs[k] = float(node.attr(k, v))
    for k in ("transA", "transB"):
        node.attrs[k] = int(node.attr(k, 0))
    if len(a) != 2 or len(b) != 2:
        raise node_error(node, f"inputs must be 2-D, got {a} and {b}")
    m, ka = a[::-1] if node.attrs["transA"] else a
    kb, n = b[::-1] if node.attrs["transB"] else b
    if ka != kb:
        raise node_error(node, f"inner dims differ: A {a} (transA={node.attrs['transA']}) and B {b} "
                               f"(transB={node.attrs['transB']})")
    c = _opt_in(node, g, 2)
    if c is not None and broadcast(node, c, (m, n)) != (m, n):
        raise node_error(node, f"bias {c} does not broadcast to {(m, n)}")
    return [(m, n)]


def _matmul(node: Node, g: Graph) -> list[Shape]:
    a, b = _in(node, g, 0), _in(node, g, 1)
    if not a or not b:
        raise node_error(node, f"scalar inputs {a}, {b}")
    aa = (1,) + a if len(a) == 1 else a
    bb = b + (1,) if len(b) == 1 else b
    if aa[-1] != bb[-2]:
        raise node_error(node, f"inner dims differ: {a} @ {b}")
    out = broadcast(node, aa[:-2], bb[:-2]) + (aa[-2], bb[-1])
    if len(b) == 1:
        out = out[:-1]
    if len(a) == 1:
        out = out[:-2] + out[-1:] if len(b) > 1 else out[:-1]
    return [out]


def _batchnorm(node: Node, g: Graph) -> list[Shape]:
    x = _in(node, g, 0)
    if len(x) < 2:
        raise node_error(node, f"input {x} has no channel dim")
    for i, what in enumerate(("scale", "bias", "mean", "var"), start=1):
        s = _in(node, g, i)
        if s != (x[1],):
            raise node_error(node, f"{what} shape {s} does not match {x[1]} channels")
    node.attrs = {"epsilon": float(node.attr("epsilon", 1e-5))}
    return [x]


def _same(node: Node, g: Graph) -> list[Shape]:
    return [_in(node, g, 0)]


_UNARY_DEFAULTS: dict[str, dict[str, float]] = {
    "LeakyRelu": {"alpha": 0.01},
    "HardSigmoid": {"alpha": 0.2, "beta": 0.5},
    "Clip": {"min": float("-inf"), "max": float("inf")},
    "LRN": {"alpha": 1e-4, "beta": 0.75, "bias": 1.0},
}


def _unary(node: Node, g: Graph) -> list[Shape]:
    for k, v in _UNARY_DEFAULTS.get(node.op, {}).items():
        node.attrs[k] = float(node.attr(k, v))
    if node.op == "LRN" and "size" not in node.attrs:
        raise node_error(node, "attribute size is required")
    return [_in(node, g, 0)]


def _binary(node: Node, g: Graph) -> list[Shape]:
    return [broadcast(node, _in(node, g, 0), _in(node, g, 1))]


def _concat(node: Node, g: Graph) -> list[Shape]:
    shapes = [_in(node, g, i) for i, name in enumerate(node.inputs) if name]
    rank = len(shapes[0])
    axis = _axis(node, int(node.attr("axis", 0)), rank)
    node.attrs["axis"] = axis
    for s in shapes:
        if len(s) != rank or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]:
            raise node_error(node, f"cannot concatenate shapes {shapes} on axis {axis}")
    return [shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1:]]


def _flatten(node: Node, g: Graph) -> list[Shape]:
    x = _in(node, g, 0)
    axis = int(node.attr("axis", 1))
    if not -len(x) <= axis <= len(x):
        raise node_error(node, f"axis {axis} out of range for {x}")
    axis = axis + len(x) if axis < 0 else axis
    node.attrs["axis"] = axis
    return [(int(np.prod(x[:axis])), int(np.prod(x[axis:])))]


def _reshape(node: Node, g: Graph) -> list[Shape]:
    x = _in(node, g, 0)
    shape = tuple(int(s) for s in node.attr("shape", ()))
    if int(np.prod(shape)) != int(np.prod(x)) or any(s <= 0 for s in shape):
        raise node_error(node, f"cannot reshape {x} to {shape}")
    return [shape]


def _squeeze(node: Node, g: Graph) -> list[Shape]:
    x = _in(node, g, 0)
    axes = node.attr("axes")
    axes = sorted(_axis(node, a, len(x)) for a in axes) if axes else [i for i, d in enumerate(x) if d == 1]
    if any(x[a] != 1 for a in axes):
        raise node_error(node, f"cannot squeeze axes {axes} of {x}")
    node.attrs["axes"] = axes
    return [tuple(d for i, d in enumerate(x) if i not in axes)]


def _unsqueeze(node: Node, g: Graph) -> list[Shape]:
    x = _in(node, g, 0)
    axes = node.attr("axes")
    if not axes:
        raise node_error(node, "no axes")
    rank = len(x) + len(axes)
    axes = sorted(_axis(node, a, rank) for a in axes)
    node.attrs["axes"] = axes
    it = iter(x)
    return [tuple(1 if i in axes else next(it) for i in range(rank))]


def _transpose(node: Node, g: Graph) -> list[Shape]:
    x = _in(node, g, 0)
    perm = [int(p) for p in node.attr("perm", list(range(len(x)))[::-1])]
    if sorted(perm) != list(range(len(x))):
        raise node_error(node, f"perm {perm} is not a permutation of {len(x)} axes")
    node.attrs["perm"] = perm
    return [tuple(x[p] for p in perm)]


def _softmax(node: Node, g: Graph) -> list[Shape]:
    x = _in(node, g, 0)
    node.attrs["axis"] = _axis(node, int(node.attr("axis", -1)), len(x))
    return [x]


def _pad(node: Node, g: Graph) -> list[Shape]:
    x = _in(node, g, 0)
    pads = [int(p) for p in node.attr("pads", [])]
    if len(pads) != 2 * len(x):
        raise node_error(node, f"pads {pads} should have {2 * len(x)} values for input {x}")
    node.attrs["mode"] = node.attr("mode", "constant")
    node.attrs["value"] = float(node.attr("value", 0.0))
    out = tuple(d + pads[i] + pads[i + len(x)] for i, d in enumerate(x))
    if min(out, default=1) <= 0:
        raise node_error(node, f"pads {pads} leave nothing of input {x}")
    return [out]


def _slice(node: Node, g: Graph) -> list[Shape]:
    """Slice in the attribute form (the importer lifts the inputs): starts/ends/axes/steps are rewritten
    normalised for the input shape (see constant_ops.normalize_slice); an empty result is an error."""
    x = _in(node, g, 0)
    if len(node.inputs) > 1:
        raise node_error(node, "starts/ends/axes/steps must be attributes (constants lifted at import)")
    if node.attr("starts") is None or node.attr("ends") is None:
        raise node_error(node, "attributes starts and ends are required")
    try:
        starts, ends, axes, steps = normalize_slice(x, node.attr("starts"), node.attr("ends"),
                                                    node.attr("axes"), node.attr("steps"))
    except EdgetuneError as e:
        raise node_error(node, str(e).removeprefix("Slice: ")) from None
    node.attrs = {"starts": starts, "ends": ends, "axes": axes, "steps": steps}
    out = list(x)
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        out[a] = len(range(*slice(s, e, st).indices(x[a])))
    if min(out, default=1) <= 0:
        raise node_error(node, f"starts {starts}, ends {ends}, axes {axes}, steps {steps} leave nothing of "
                               f"input {x}")
    return [tuple(out)]


SHAPE_FNS: dict[str, Callable[[Node, Graph], list[Shape]]] = {
    "Conv": _conv,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "BatchNormalization": _batchnorm,
    "Concat": _concat,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "Softmax": _softmax,
    "Pad": _pad,
    "Slice": _slice,
    "Identity": _same,
    "Dropout": _same,
    **{op: _unary for op in ("Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
                             "LRN")},
    **{op: _binary for op in ("Add", "Sub", "Mul", "Div")},
}
"""The ops edgetune runs (after import), with their shape functions."""


def infer_node(node: Node, graph: Graph) -> None:
    """Set `graph.values` for the node's outputs (shape and dtype) and resolve its attributes."""
    fn = SHAPE_FNS.get(node.op)
    if fn is None:
        raise UnsupportedModelError(f"node {node.name}: no shape inference for op {node.op}")
    shapes = fn(node, graph)
    dtype = graph.dtype(node.inputs[0])
    for name, shape in zip(node.outputs, shapes, strict=False):
        if name:
            graph.values[name] = Value(name, tuple(int(d) for d in shape), dtype)


def infer_shapes(graph: Graph) -> None:
    """Infer every value's shape in topological order (graph inputs must have static shapes)."""
    for name in graph.inputs:
        v = graph.values.get(name)
        if v is None or v.shape is None:
            raise EdgetuneError(f"graph input {name!r} has no static shape")
    for node in graph.nodes:
        infer_node(node, graph)
