"""NumPy evaluation of the ops that compute shapes and constants.

Why: exporters emit chains (Shape -> Gather -> Concat -> Reshape, ConstantOfShape -> Slice -> Pad, ...)
whose inputs are all known at import time; evaluating them here lets the folder replace them by
initializers, and the reference executor delegates the same ops here so there is one implementation.
Every op accepts both its ONNX input form (axes/shape/pads as inputs) and edgetune's attribute form
(what the importer lifts them into). `node.activation` is NOT applied here: callers apply it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from onnx import helper

from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Node

Arr = np.ndarray
Inputs = list[np.ndarray | None]


def np_dtype(onnx_type: int) -> np.dtype:
    """numpy dtype for an ONNX TensorProto element type (an unknown or missing one is a one-line error)."""
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(onnx_type))
    except (KeyError, TypeError, ValueError):
        raise EdgetuneError(f"unsupported or missing tensor element type {onnx_type}") from None


def _arg(inputs: Inputs, i: int) -> Arr | None:
    return inputs[i] if i < len(inputs) else None


def _ints(a: Arr | Sequence[int] | None) -> list[int] | None:
    return None if a is None else [int(v) for v in np.asarray(a).reshape(-1)]


def _axes(node: Node, inputs: Inputs, idx: int) -> list[int] | None:
    """Axes from the input at `idx` (opset >= 13/18 form) or the `axes` attribute."""
    a = _arg(inputs, idx)
    return _ints(a) if a is not None else _ints(node.attr("axes"))


def resolve_reshape(in_shape: Sequence[int], shape: Sequence[int], allowzero: int = 0,
                    where: str = "") -> tuple[int, ...]:
    """ONNX Reshape target with 0 (copy, unless allowzero) and -1 (inferred) resolved to explicit dims."""
    out = [int(s) for s in shape]
    if not allowzero:
        for i, s in enumerate(out):
            if s == 0:
                if i >= len(in_shape):
                    raise EdgetuneError(f"{where}: reshape 0 at position {i} beyond input rank "
                                        f"{len(in_shape)}")
                out[i] = int(in_shape[i])
    total = int(np.prod(in_shape)) if len(in_shape) else 1
    if out.count(-1) > 1:
        raise EdgetuneError(f"{where}: reshape target {list(shape)} has more than one -1")
    if -1 in out:
        known = int(np.prod([s for s in out if s != -1])) if len(out) > 1 else 1
        if known == 0 or total % known:
            raise EdgetuneError(f"{where}: cannot reshape {tuple(in_shape)} to {list(shape)}")
        out[out.index(-1)] = total // known
    if int(np.prod(out)) != total or any(s < 0 for s in out):
        raise EdgetuneError(f"{where}: cannot reshape {tuple(in_shape)} to {list(shape)}")
    return tuple(out)


def pads_full(pads: Sequence[int], axes: Sequence[int] | None, rank: int) -> list[int]:
    """ONNX Pad `pads` (begin..., end...) over `axes` expanded to all `rank` axes."""
    pads = [int(p) for p in pads]
    if axes is None:
        return pads
    full = [0] * (2 * rank)
    k = len(axes)
    for j, ax in enumerate(axes):
        ax = ax % rank
        full[ax], full[ax + rank] = pads[j], pads[j + k]
    return full


# ---- op implementations ------------------------------------------------------------------

def _constant(node: Node, inputs: Inputs) -> Arr:
    for key, conv in (
        ("value", np.asarray),
        ("value_float", lambda v: np.array(v, np.float32)),
        ("value_floats", lambda v: np.array(v, np.float32)),
        ("value_int", lambda v: np.array(v, np.int64)),
        ("value_ints", lambda v: np.array(v, np.int64)),
        ("value_string", lambda v: np.array(v, object)),
        ("value_strings", lambda v: np.array(v, object)),
    ):
        if key in node.attrs:
            return conv(node.attrs[key])
    raise EdgetuneError(f"Constant node {node.name} has no value")


def _shape(node: Node, inputs: Inputs) -> Arr:
    s = np.array(inputs[0].shape, np.int64)
    start, end = node.attr("start", 0), node.attr("end")
    return s[start:end] if end is not None else s[start:]


def normalize_slice(shape: Sequence[int], starts: Sequence[int], ends: Sequence[int],
                    axes: Sequence[int] | None = None, steps: Sequence[int] | None = None,
                    where: str = "Slice") -> tuple[list[int], list[int], list[int], list[int]]:
    """ONNX Slice parameters resolved for an input of `shape`: (starts, ends, axes, steps) with axes
    non-negative and ascending, steps explicit, starts/ends clamped as ONNX does (to [0, dim] for a
    positive step; to [0, dim - 1] and [-1, dim - 1] for a negative one). An end of -1 under a negative
    step ("past index 0") is written -(dim + 1), which ONNX and Python slicing both read that way.
    Idempotent: normalising normalised values returns them unchanged."""
    rank = len(shape)
    starts, ends = [int(v) for v in starts], [int(v) for v in ends]
    axes = [int(a) for a in axes] if axes is not None else list(range(len(starts)))
    steps = [int(s) for s in steps] if steps is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise EdgetuneError(f"{where}: starts {starts}, ends {ends}, axes {axes}, steps {steps} differ in "
                            f"length")
    out: dict[int, tuple[int, int, int]] = {}
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        if not -rank <= a < rank:
            raise EdgetuneError(f"{where}: axis {a} out of range for rank {rank}")
        a %= rank
        if a in out:
            raise EdgetuneError(f"{where}: axis {a} sliced twice (axes {axes})")
        if st == 0:
            raise EdgetuneError(f"{where}: step 0 on axis {a}")
        dim = int(shape[a])
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
            e = -(dim + 1) if e == -1 else e
        out[a] = (s, e, st)
    order = sorted(out)
    return [out[a][0] for a in order], [out[a][1] for a in order], order, [out[a][2] for a in order]


def slice_params(node: Node, inputs: Inputs) -> tuple[list[int], list[int], list[int] | None,
                                                      list[int] | None] | None:
    """Raw (starts, ends, axes, steps) of a Slice: from its inputs (opset >= 10) when given, else from
    its attributes (opset < 10, and edgetune's lifted form); None when it has neither."""
    if _arg(inputs, 1) is not None or _arg(inputs, 2) is not None:
        starts, ends = _ints(_arg(inputs, 1)), _ints(_arg(inputs, 2))
        axes, steps = _ints(_arg(inputs, 3)), _ints(_arg(inputs, 4))
    else:
        starts, ends = _ints(node.attr("starts")), _ints(node.attr("ends"))
        axes, steps = _ints(node.attr("axes")), _ints(node.attr("steps"))
    if starts is None or ends is None:
        return None
    return starts, ends, axes, steps


def _slice(node: Node, inputs: Inputs) -> Arr:
    x = inputs[0]
    params = slice_params(node, inputs)
    if params is None:
        raise EdgetuneError(f"Slice node {node.name} has no starts/ends")
    starts, ends, axes, steps = normalize_slice(x.shape, *params, where=f"Slice node {node.name}")
    idx: list[slice] = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        idx[a] = slice(s, e, st)
    return x[tuple(idx)]


def _squeeze(node: Node, inputs: Inputs) -> Arr:
    axes = _axes(node, inputs, 1)
    x = inputs[0]
    return np.squeeze(x) if axes is None else np.squeeze(x, tuple(a % x.ndim for a in axes))


def _unsqueeze(node: Node, inputs: Inputs) -> Arr:
    axes = _axes(node, inputs, 1)
    return np.expand_dims(inputs[0], tuple(axes))


def _reshape(node: Node, inputs: Inputs) -> Arr:
    x = inputs[0]
    shape = _ints(_arg(inputs, 1)) if _arg(inputs, 1) is not None else _ints(node.attr("shape"))
    return x.reshape(resolve_reshape(x.shape, shape, node.attr("allowzero", 0), f"node {node.name}"))


def _gather(node: Node, inputs: Inputs) -> Arr:
    return np.take(inputs[0], inputs[1].astype(np.int64), axis=node.attr("axis", 0))


def _cast(node: Node, inputs: Inputs) -> Arr:
    return inputs[0].astype(np_dtype(node.attr("to")))


def _constant_of_shape(node: Node, inputs: Inputs) -> Arr:
    value = node.attr("value")
    v = np.asarray(value).reshape(-1) if value is not None else np.zeros(1, np.float32)
    return np.full(_ints(inputs[0]), v[0], dtype=v.dtype)


def _range(node: Node, inputs: Inputs) -> Arr:
    start, limit, delta = inputs[0], inputs[1], inputs[2]
    return np.arange(start.item(), limit.item(), delta.item(), dtype=np.asarray(start).dtype)


def _expand(node: Node, inputs: Inputs) -> Arr:
    x = inputs[0]
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(_ints(inputs[1])))).copy()


def _transpose(node: Node, inputs: Inputs) -> Arr:
    perm = node.attr("perm")
    return np.transpose(inputs[0], perm).copy() if perm is not None else inputs[0].T.copy()


def _concat(node: Node, inputs: Inputs) -> Arr:
    parts = [i for i in inputs if i is not None]
    return np.concatenate(parts, axis=node.attr("axis"))


def _div(node: Node, inputs: Inputs) -> Arr:
    a, b = inputs[0], inputs[1]
    if np.issubdtype(a.dtype, np.integer):
        q = np.floor_divide(a, b)
        fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
        return (q + fix).astype(a.dtype)  # ONNX integer division truncates toward zero
    return np.divide(a, b).astype(a.dtype)


def _mod(node: Node, inputs: Inputs) -> Arr:
    return np.fmod(inputs[0], inputs[1]) if node.attr("fmod", 0) else np.mod(inputs[0], inputs[1])


def _clip(node: Node, inputs: Inputs) -> Arr:
    lo, hi = _arg(inputs, 1), _arg(inputs, 2)
    lo = lo if lo is not None else node.attr("min", -np.inf)
    hi = hi if hi is not None else node.attr("max", np.inf)
    return np.clip(inputs[0], lo, hi).astype(inputs[0].dtype)


def _pad(node: Node, inputs: Inputs) -> Arr:
    x = inputs[0]
    if _arg(inputs, 1) is not None:
        pads = pads_full(_ints(inputs[1]), _ints(_arg(inputs, 3)), x.ndim)
        cv = _arg(inputs, 2)
        value = cv.item() if cv is not None and cv.size else 0
    else:
        pads, value = _ints(node.attr("pads")), node.attr("value", 0.0)
    r = x.ndim
    begin, end = pads[:r], pads[r:]
    # negative pads crop
    x = x[tuple(slice(-b if b < 0 else 0, x.shape[i] + e if e < 0 else None)
                for i, (b, e) in enumerate(zip(begin, end, strict=True)))]
    width = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end, strict=True)]
    mode = node.attr("mode", "constant")
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=value)
    return np.pad(x, width, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode])


def _reduce(fn: Callable[..., Arr]) -> Callable[[Node, Inputs], Arr]:
    def run(node: Node, inputs: Inputs) -> Arr:
        x = inputs[0]
        axes = _axes(node, inputs, 1)
        keep = bool(node.attr("keepdims", 1))
        if not axes:
            if node.attr("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.ndim))
        return np.asarray(fn(x, axis=tuple(a % x.ndim for a in axes), keepdims=keep)).astype(x.dtype)
    return run


def _split(node: Node, inputs: Inputs) -> list[Arr]:
    x, axis = inputs[0], node.attr("axis", 0)
    split = _ints(_arg(inputs, 1)) if _arg(inputs, 1) is not None else _ints(node.attr("split"))
    n = len(node.outputs)
    if split is None:
        size = -(-x.shape[axis] // n)
        split = [min(size, x.shape[axis] - i * size) for i in range(n)]
    return np.split(x, np.cumsum(split)[:-1], axis=axis)


def _flatten(node: Node, inputs: Inputs) -> Arr:
    x = inputs[0]
    axis = node.attr("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))


def _gemm(node: Node, inputs: Inputs) -> Arr:
    a = inputs[0].T if node.attr("transA", 0) else inputs[0]
    b = inputs[1].T if node.attr("transB", 0) else inputs[1]
    y = node.attr("alpha", 1.0) * (a @ b)
    c = _arg(inputs, 2)
    return (y + node.attr("beta", 1.0) * c if c is not None else y).astype(inputs[0].dtype)


def _unary(fn: Callable[[Arr], Arr]) -> Callable[[Node, Inputs], Arr]:
    return lambda node, inputs: np.asarray(fn(inputs[0])).astype(inputs[0].dtype, copy=False)


def _binary(fn: Callable[[Arr, Arr], Arr], keep_type: bool = True) -> Callable[[Node, Inputs], Arr]:
    def run(node: Node, inputs: Inputs) -> Arr:
        r = np.asarray(fn(inputs[0], inputs[1]))
        return r.astype(inputs[0].dtype, copy=False) if keep_type else r
    return run


def _variadic(fn: Callable[[Arr, Arr], Arr]) -> Callable[[Node, Inputs], Arr]:
    def run(node: Node, inputs: Inputs) -> Arr:
        out = inputs[0]
        for x in inputs[1:]:
            out = fn(out, x)
        return np.asarray(out).astype(inputs[0].dtype, copy=False)
    return run


_OPS: dict[str, Callable[[Node, Inputs], Any]] = {
    "Constant": _constant,
    "Shape": _shape,
    "Size": lambda n, i: np.array(i[0].size, np.int64),
    "Gather": _gather,
    "Slice": _slice,
    "Concat": _concat,
    "Cast": _cast,
    "CastLike": lambda n, i: i[0].astype(i[1].dtype),
    "ConstantOfShape": _constant_of_shape,
    "Range": _range,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Expand": _expand,
    "Tile": lambda n, i: np.tile(i[0], _ints(i[1])),
    "Transpose": _transpose,
    "Identity": lambda n, i: i[0],
    "Dropout": lambda n, i: i[0],
    "Split": _split,
    "Pad": _pad,
    "Clip": _clip,
    "Equal": _binary(np.equal, keep_type=False),
    "Less": _binary(np.less, keep_type=False),
    "LessOrEqual": _binary(np.less_equal, keep_type=False),
    "Greater": _binary(np.greater, keep_type=False),
    "GreaterOrEqual": _binary(np.greater_equal, keep_type=False),
    "And": _binary(np.logical_and, keep_type=False),
    "Or": _binary(np.logical_or, keep_type=False),
    "Xor": _binary(np.logical_xor, keep_type=False),
    "Not": lambda n, i: np.logical_not(i[0]),
    "Where": lambda n, i: np.where(i[0], i[1], i[2]),
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _div,
    "Mod": _mod,
    "Pow": _binary(np.power),
    "Min": _variadic(np.minimum),
    "Max": _variadic(np.maximum),
    "Sum": _variadic(np.add),
    "MatMul": _binary(np.matmul),
    "Gemm": _gemm,
    "Sqrt": _unary(np.sqrt),
    "Neg": _unary(np.negative),
    "Abs": _unary(np.abs),
    "Exp": _unary(np.exp),
    "Log": _unary(np.log),
    "Reciprocal": _unary(np.reciprocal),
    "Floor": _unary(np.floor),
    "Ceil": _unary(np.ceil),
    "Round": _unary(np.round),
    "Sign": _unary(np.sign),
    "Relu": _unary(lambda x: np.maximum(x, 0)),
    "Sigmoid": _unary(lambda x: 1.0 / (1.0 + np.exp(-x))),
    "Tanh": _unary(np.tanh),
    "ReduceProd": _reduce(np.prod),
    "ReduceSum": _reduce(np.sum),
    "ReduceMean": _reduce(np.mean),
    "ReduceMax": _reduce(np.max),
    "ReduceMin": _reduce(np.min),
}

CONSTANT_OPS: frozenset[str] = frozenset(_OPS)
"""Op types `eval_constant_node` can evaluate."""


def eval_constant_node(node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray] | None:
    """Evaluate a shape/constant op on NumPy inputs (all of the node's inputs, None for omitted ones).

    Returns one array per output, or None when `node.op` is not one of `CONSTANT_OPS` (the caller then
    falls back to another executor). The activation fused into the node is not applied.
    """
    fn = _OPS.get(node.op)
    if fn is None:
        return None
    try:
        out = fn(node, inputs)
    except EdgetuneError:
        raise
    except Exception as e:  # numpy's messages are precise but lack the node; keep them one line
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise EdgetuneError(f"cannot evaluate {node.op} node {node.name}: {msg}") from e
    outs = out if isinstance(out, list) else [out]
    return [np.asarray(o) for o in outs]
