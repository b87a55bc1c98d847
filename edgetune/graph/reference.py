"""The reference executor: plain NumPy kernels that every fast primitive is checked against.

Why it is written this way: it is the ground truth, so each op is the textbook formula, computed in
float64 (outputs rounded once to float32), with ONNX defaults for missing attributes. Speed matters
only enough for big layers to stay under a second: Conv and pooling loop over kernel taps (a handful)
and hand each tap to one BLAS matmul or vectorised reduction, never over pixels.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgetune.errors import EdgetuneError, UnsupportedModelError
from edgetune.graph.ir import Activation, Graph, Node
from edgetune.graph.onnx_reference import run_onnx_reference
from edgetune.graph.shapes import window_out_dim

Arr = np.ndarray
Inputs = list[np.ndarray | None]


# ---- small helpers ---------------------------------------------------------------------------

def _arg(inputs: Inputs, i: int) -> Arr | None:
    """Input i, or None when omitted (absent from the list, or passed as None)."""
    return inputs[i] if i < len(inputs) else None


def _f64(x: Arr) -> Arr:
    """Float data goes to float64 (one rounding at the end); integer data stays as it is."""
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_ else x.astype(np.float64)


def _ints(a: Any) -> list[int] | None:
    return None if a is None else [int(v) for v in np.asarray(a).reshape(-1)]


def _spatial(node: Node, key: str, k: int, default: int) -> list[int]:
    v = node.attr(key)
    return [int(i) for i in v] if v is not None else [default] * k


def _pads(node: Node, sp: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
          dil: Sequence[int]) -> list[int]:
    """Explicit pads [begin..., end...]; resolves auto_pad SAME_UPPER/SAME_LOWER/VALID when present."""
    k = len(sp)
    auto = node.attr("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", "", None):
        return _spatial(node, "pads", 2 * k, 0)
    if auto == "VALID":
        return [0] * (2 * k)
    begin, end = [], []
    for i in range(k):
        out = -(-sp[i] // strides[i])
        total = max((out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - sp[i], 0)
        small = total // 2
        begin.append(small if auto == "SAME_UPPER" else total - small)
        end.append(total - begin[-1])
    return begin + end


def _pad_spatial(x: Arr, begin: Sequence[int], end: Sequence[int], value: float) -> Arr:
    """Pad the trailing len(begin) axes of x (N, C, *spatial) with a constant."""
    width = [(0, 0)] * (x.ndim - len(begin)) + list(zip(begin, end, strict=True))
    return np.pad(x, width, mode="constant", constant_values=value)


def _tap(x: Arr, tap: Sequence[int], dil: Sequence[int], strides: Sequence[int], out: Sequence[int],
         first: int) -> Arr:
    """The view of x seen by one kernel tap: spatial axes start at `first`, one element per output."""
    idx: list[slice] = [slice(None)] * x.ndim
    for i, (t, d, s, o) in enumerate(zip(tap, dil, strides, out, strict=True)):
        idx[first + i] = slice(t * d, t * d + s * (o - 1) + 1, s)
    return x[tuple(idx)]


# ---- elementwise (also the fused activations) ------------------------------------------------

def _sigmoid(x: Arr) -> Arr:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


UNARY: dict[str, Callable[[Arr, dict[str, Any]], Arr]] = {
    "Relu": lambda x, p: np.maximum(x, 0),
    "LeakyRelu": lambda x, p: np.where(x >= 0, x, x * float(p.get("alpha", 0.01))),
    "Clip": lambda x, p: np.clip(x, p.get("min", -np.inf), p.get("max", np.inf)),
    "Sigmoid": lambda x, p: _sigmoid(x),
    "HardSigmoid": lambda x, p: np.clip(x * float(p.get("alpha", 0.2)) + float(p.get("beta", 0.5)), 0, 1),
    "HardSwish": lambda x, p: x * np.clip(x / 6.0 + 0.5, 0, 1),
    "Tanh": lambda x, p: np.tanh(x),
    "Swish": lambda x, p: x * _sigmoid(x),
}
"""Elementwise functions by ONNX op name, params as node attributes / Activation.params."""


def activate(x: Arr, act: Activation | None) -> Arr:
    """Apply a fused activation in float64 (the same formulas as the standalone ops)."""
    if act is None:
        return x
    fn = UNARY.get(act.op)
    if fn is None:
        raise UnsupportedModelError(f"no reference for fused activation {act.op}")
    return fn(_f64(x), act.params)


def _clip_params(node: Node, inputs: Inputs) -> dict[str, Any]:
    lo, hi = _arg(inputs, 1), _arg(inputs, 2)
    p = {}
    if lo is not None or node.attr("min") is not None:
        p["min"] = lo.reshape(-1)[0] if lo is not None else node.attr("min")
    if hi is not None or node.attr("max") is not None:
        p["max"] = hi.reshape(-1)[0] if hi is not None else node.attr("max")
    return p


def _unary(node: Node, inputs: Inputs) -> Arr:
    params = _clip_params(node, inputs) if node.op == "Clip" else node.attrs
    return UNARY[node.op](_f64(inputs[0]), params)


def _binary(node: Node, inputs: Inputs) -> Arr:
    a, b = _f64(inputs[0]), _f64(inputs[1])
    if node.op == "Add":
        return a + b
    if node.op == "Sub":
        return a - b
    if node.op == "Mul":
        return a * b
    if np.issubdtype(a.dtype, np.integer):  # ONNX integer Div truncates toward zero
        q = np.abs(a) // np.abs(b)
        return np.where((a < 0) != (b < 0), -q, q).astype(np.result_type(a, b))
    return a / b


# ---- linear algebra ----------------------------------------------------------------------------

def _conv(node: Node, inputs: Inputs) -> Arr:
    """Grouped N-d convolution: for each kernel tap, one batched matmul over (group, pixels, channels)."""
    x, w, b = _f64(inputs[0]), _f64(inputs[1]), _arg(inputs, 2)
    k = x.ndim - 2
    n, c, co, cg = x.shape[0], x.shape[1], w.shape[0], w.shape[1]
    g = int(node.attr("group", 1))
    kernel = list(w.shape[2:])
    strides, dil = _spatial(node, "strides", k, 1), _spatial(node, "dilations", k, 1)
    if c != cg * g or co % g:
        raise EdgetuneError(f"Conv node {node.name}: input channels {c}, weight {w.shape}, group {g} disagree")
    pads = _pads(node, x.shape[2:], kernel, strides, dil)
    og = co // g
    # channels-last per group, (G, N, *spatial, Cg): each tap's patch reshapes to (G, pixels, Cg)
    xp = _pad_spatial(x, pads[:k], pads[k:], 0.0)
    xg = np.moveaxis(xp.reshape(n, g, cg, *xp.shape[2:]), (1, 2), (0, -1))
    out = [(xg.shape[2 + i] - dil[i] * (kernel[i] - 1) - 1) // strides[i] + 1 for i in range(k)]
    if min(out) <= 0:
        raise EdgetuneError(f"Conv node {node.name}: output size {out} is empty")
    wg = w.reshape(g, og, cg, *kernel)
    y = np.zeros((g, n * math.prod(out), og))
    for tap in itertools.product(*(range(kk) for kk in kernel)):
        patch = _tap(xg, tap, dil, strides, out, first=2).reshape(g, -1, cg)
        wt = wg[(slice(None), slice(None), slice(None), *tap)].transpose(0, 2, 1)  # (G, Cg, Og)
        y += patch @ wt if cg > 1 else patch * wt
    y = np.moveaxis(y.reshape(g, n, *out, og), (0, -1), (1, 2)).reshape(n, co, *out)
    if b is not None:
        y = y + _f64(b).reshape(1, co, *[1] * k)
    return y


def _gemm(node: Node, inputs: Inputs) -> Arr:
    a, b, c = _f64(inputs[0]), _f64(inputs[1]), _arg(inputs, 2)
    a = a.T if node.attr("transA", 0) else a
    b = b.T if node.attr("transB", 0) else b
    y = float(node.attr("alpha", 1.0)) * (a @ b)
    return y + float(node.attr("beta", 1.0)) * _f64(c) if c is not None else y


def _batchnorm(node: Node, inputs: Inputs) -> Arr:
    x, scale, bias, mean, var = (_f64(inputs[i]) for i in range(5))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    eps = float(node.attr("epsilon", 1e-5))
    inv = scale.reshape(shape) / np.sqrt(var.reshape(shape) + eps)
    return (x - mean.reshape(shape)) * inv + bias.reshape(shape)


# ---- pooling and normalisation -----------------------------------------------------------------

def _pool_geometry(node: Node, x: Arr) -> tuple[list[int], list[int], list[int], list[int], list[int], list[int]]:
    """(kernel, strides, dilations, explicit pads [begin..., end...], ceil_mode overhang past the end
    pads, output size) of a MaxPool/AveragePool."""
    k = x.ndim - 2
    kernel = _ints(node.attr("kernel_shape"))
    if kernel is None:
        raise EdgetuneError(f"{node.op} node {node.name} has no kernel_shape")
    strides, dil = _spatial(node, "strides", k, 1), _spatial(node, "dilations", k, 1)
    pads = _pads(node, x.shape[2:], kernel, strides, dil)
    ceil = bool(node.attr("ceil_mode", 0))
    out, overhang = [], []
    for i in range(k):
        padded = x.shape[2 + i] + pads[i] + pads[k + i]
        reach = dil[i] * (kernel[i] - 1) + 1
        o = window_out_dim(x.shape[2 + i], kernel[i], strides[i], dil[i], pads[i], pads[k + i], ceil)
        out.append(o)
        overhang.append(max(0, (o - 1) * strides[i] + reach - padded))
    return kernel, strides, dil, pads, overhang, out


def _pool(node: Node, inputs: Inputs) -> Arr:
    """Max or average pooling; taps in the ceil_mode overhang never count, explicit pads count for
    AveragePool only with count_include_pad."""
    x = _f64(inputs[0]).astype(np.float64, copy=False)
    kernel, strides, dil, pads, overhang, out = _pool_geometry(node, x)
    k = x.ndim - 2
    begin, end = pads[:k], [pads[k + i] + overhang[i] for i in range(k)]
    taps = list(itertools.product(*(range(kk) for kk in kernel)))
    if node.op == "MaxPool":
        xp = _pad_spatial(x, begin, end, -np.inf)
        return np.max([_tap(xp, t, dil, strides, out, 2) for t in taps], axis=0)
    xp = _pad_spatial(x, begin, end, 0.0)
    total = np.sum([_tap(xp, t, dil, strides, out, 2) for t in taps], axis=0)
    if node.attr("count_include_pad", 0):
        sp = [s + pads[i] + pads[k + i] for i, s in enumerate(x.shape[2:])]
        counts = np.pad(np.ones(sp), [(0, o) for o in overhang])
    else:
        counts = np.pad(np.ones(x.shape[2:]), list(zip(begin, end, strict=True)))
    count = np.sum([_tap(counts, t, dil, strides, out, 0) for t in taps], axis=0)
    return total / count


def _global_pool(node: Node, inputs: Inputs) -> Arr:
    x = _f64(inputs[0])
    axes = tuple(range(2, x.ndim))
    return x.mean(axis=axes, keepdims=True) if node.op == "GlobalAveragePool" else x.max(axis=axes, keepdims=True)


def _softmax(node: Node, inputs: Inputs) -> Arr:
    """Opset-13 Softmax: over the one axis `axis` (default -1)."""
    x = _f64(inputs[0])
    axis = int(node.attr("axis", -1))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _lrn(node: Node, inputs: Inputs) -> Arr:
    """Cross-channel LRN: x / (bias + alpha/size * sum of squares over a channel window)^beta."""
    x = _f64(inputs[0])
    size = int(node.attr("size"))
    alpha, beta, bias = float(node.attr("alpha", 1e-4)), float(node.attr("beta", 0.75)), float(node.attr("bias", 1.0))
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    sq = np.pad(x * x, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    c = x.shape[1]
    window = sum(sq[:, i:i + c] for i in range(size))
    return x / (bias + alpha / size * window) ** beta


# ---- data movement -----------------------------------------------------------------------------

def _reshape(node: Node, inputs: Inputs) -> Arr:
    x = inputs[0]
    shape = _ints(_arg(inputs, 1)) if _arg(inputs, 1) is not None else _ints(node.attr("shape"))
    if shape is None:
        raise EdgetuneError(f"Reshape node {node.name} has no target shape")
    if not node.attr("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _axes(node: Node, inputs: Inputs) -> list[int] | None:
    a = _arg(inputs, 1)
    return _ints(a) if a is not None else _ints(node.attr("axes"))


def _squeeze(node: Node, inputs: Inputs) -> Arr:
    x, axes = inputs[0], _axes(node, inputs)
    return np.squeeze(x) if axes is None else np.squeeze(x, tuple(a % x.ndim for a in axes))


def _unsqueeze(node: Node, inputs: Inputs) -> Arr:
    x, axes = inputs[0], _axes(node, inputs)
    rank = x.ndim + len(axes or [])
    return np.expand_dims(x, tuple(sorted(a % rank for a in axes or [])))


def _flatten(node: Node, inputs: Inputs) -> Arr:
    x = inputs[0]
    axis = int(node.attr("axis", 1))
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def _transpose(node: Node, inputs: Inputs) -> Arr:
    perm = node.attr("perm")
    return np.transpose(inputs[0], perm if perm is not None else None)


def _concat(node: Node, inputs: Inputs) -> Arr:
    return np.concatenate([_f64(i) for i in inputs if i is not None], axis=int(node.attr("axis")))


def _pad(node: Node, inputs: Inputs) -> Arr:
    """Pad, from the `pads`/`value` attributes (importer / opset < 11) or the pads/value/axes inputs."""
    x = _f64(inputs[0])
    r = x.ndim
    if _arg(inputs, 1) is not None:
        raw, axes = _ints(inputs[1]) or [], _ints(_arg(inputs, 3))
        cv = _arg(inputs, 2)
        value = cv.reshape(-1)[0] if cv is not None and cv.size else 0
        if axes is not None:
            pads = [0] * (2 * r)
            for j, ax in enumerate(axes):
                pads[ax % r], pads[ax % r + r] = raw[j], raw[j + len(axes)]
        else:
            pads = raw
    else:
        pads, value = _ints(node.attr("pads")) or [0] * (2 * r), node.attr("value", 0.0)
    begin, end = pads[:r], pads[r:]
    x = x[tuple(slice(max(-b, 0), x.shape[i] - max(-e, 0)) for i, (b, e) in enumerate(zip(begin, end, strict=True)))]
    width = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end, strict=True)]
    mode = node.attr("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=value)
    if mode not in ("reflect", "edge", "wrap"):
        raise UnsupportedModelError(f"Pad node {node.name}: mode {mode!r} is not supported")
    return np.pad(x, width, mode=mode)


def _erf(x: Arr) -> Arr:
    from scipy.special import erf  # scipy is a dependency already (HiGHS MILP)

    return erf(x)


def _gelu(node: Node, inputs: Inputs) -> Arr:
    """Opset-20 Gelu: exact (erf) or the tanh approximation."""
    x = _f64(inputs[0])
    if node.attr("approximate", "none") == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _layernorm(node: Node, inputs: Inputs) -> list[Arr]:
    """LayerNormalization over axes `axis`.. (default -1), then scale and bias; the optional mean and
    inverse std outputs, when a model uses them, are left to onnx.reference."""
    if any(node.outputs[1:]):
        raise _NoKernel
    x = _f64(inputs[0])
    axis = int(node.attr("axis", -1)) % x.ndim
    axes = tuple(range(axis, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + float(node.attr("epsilon", 1e-5))) * _f64(inputs[1])
    bias = _arg(inputs, 2)
    return [y + _f64(bias) if bias is not None else y]


def _instancenorm(node: Node, inputs: Inputs) -> Arr:
    """InstanceNormalization: per sample and channel over the spatial axes, then scale[c], bias[c]."""
    x = _f64(inputs[0])
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean) / np.sqrt(var + float(node.attr("epsilon", 1e-5))) * _f64(inputs[1]).reshape(shape) \
        + _f64(inputs[2]).reshape(shape)


def _conv_transpose(node: Node, inputs: Inputs) -> Arr:
    """Grouped N-d transposed convolution: per kernel tap, one batched matmul over (group, channels),
    scattered (strided, dilated) into the full output, which pads then crop. `output_shape` and
    auto_pad are left to onnx.reference (raised as unsupported here)."""
    if node.attr("output_shape") is not None or node.attr("auto_pad", "NOTSET") not in ("NOTSET", "", None):
        raise _NoKernel
    x, wt = _f64(inputs[0]), _f64(inputs[1])
    n, c, *sp = x.shape
    g = int(node.attr("group", 1))
    mg, ks = wt.shape[1], wt.shape[2:]
    k = len(sp)
    strides, dil = _spatial(node, "strides", k, 1), _spatial(node, "dilations", k, 1)
    pads, extra = _spatial(node, "pads", 2 * k, 0), _spatial(node, "output_padding", k, 0)
    full = [(sp[i] - 1) * strides[i] + (ks[i] - 1) * dil[i] + 1 + extra[i] for i in range(k)]
    y = np.zeros((n, g, mg, *full))
    xg = x.reshape(n, g, c // g, -1)
    wg = wt.reshape(g, c // g, mg, *ks)
    for tap in itertools.product(*(range(kk) for kk in ks)):
        contrib = np.einsum("ngcp,gcm->ngmp", xg, wg[(slice(None), slice(None), slice(None), *tap)])
        idx = tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(tap, dil, strides, sp, strict=True))
        y[(slice(None), slice(None), slice(None), *idx)] += contrib.reshape(n, g, mg, *sp)
    y = y.reshape(n, g * mg, *full)
    crop = tuple(slice(pads[i], full[i] - pads[k + i]) for i in range(k))
    y = y[(slice(None), slice(None), *crop)]
    bias = _arg(inputs, 2)
    return y + _f64(bias).reshape(1, -1, *([1] * k)) if bias is not None else y


_SOURCE_COORD: dict[str, Callable[[Arr, float, int, int], Arr]] = {
    "half_pixel": lambda x, s, n_in, n_out: (x + 0.5) / s - 0.5,
    "pytorch_half_pixel": lambda x, s, n_in, n_out: (x + 0.5) / s - 0.5 if n_out > 1 else x * 0.0,
    "align_corners": lambda x, s, n_in, n_out: x * ((n_in - 1) / (n_out - 1)) if n_out > 1 else x * 0.0,
    "asymmetric": lambda x, s, n_in, n_out: x / s,
    "tf_half_pixel_for_nn": lambda x, s, n_in, n_out: (x + 0.5) / s,
}
_NEAREST: dict[str, Callable[[Arr], Arr]] = {
    "round_prefer_floor": lambda c: np.ceil(c - 0.5),
    "round_prefer_ceil": lambda c: np.floor(c + 0.5),
    "floor": np.floor,
    "ceil": np.ceil,
}


def _resize_axis(x: Arr, axis: int, n_out: int, scale: float, node: Node) -> Arr:
    """Resample one axis (nearest or linear) with the node's coordinate transformation."""
    n_in = x.shape[axis]
    coord = _SOURCE_COORD[node.attr("coordinate_transformation_mode", "half_pixel")](
        np.arange(n_out, dtype=np.float64), scale, n_in, n_out)
    if node.attr("mode", "nearest") == "nearest":
        idx = np.clip(_NEAREST[node.attr("nearest_mode", "round_prefer_floor")](coord), 0, n_in - 1)
        return np.take(x, idx.astype(np.int64), axis=axis)
    coord = np.clip(coord, 0, n_in - 1)
    lo = np.floor(coord).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    shape = [1] * x.ndim
    shape[axis] = n_out
    frac = (coord - lo).reshape(shape)
    return np.take(x, lo, axis=axis) * (1.0 - frac) + np.take(x, hi, axis=axis) * frac


def _resize(node: Node, inputs: Inputs) -> Arr:
    """Resize (and Upsample, which the opset upgrade turns into it): nearest or (bi)linear, one axis at
    a time, from scales or sizes. Cubic, antialias, axes, keep_aspect_ratio and tf_crop_and_resize are
    left to onnx.reference."""
    mode, ctm = node.attr("mode", "nearest"), node.attr("coordinate_transformation_mode", "half_pixel")
    if mode not in ("nearest", "linear") or ctm not in _SOURCE_COORD or node.attr("antialias", 0) \
            or node.attr("axes") is not None or node.attr("keep_aspect_ratio_policy", "stretch") != "stretch" \
            or node.attr("nearest_mode", "round_prefer_floor") not in _NEAREST:
        raise _NoKernel
    x = _f64(inputs[0])
    scales, sizes = _arg(inputs, 2), _arg(inputs, 3)
    if sizes is not None and sizes.size:
        out = [int(v) for v in sizes.reshape(-1)]
        factors = [o / i for o, i in zip(out, x.shape, strict=True)]
    elif scales is not None and scales.size:
        factors = [float(v) for v in scales.reshape(-1)]
        out = [int(math.floor(i * f)) for i, f in zip(x.shape, factors, strict=True)]
    else:
        raise _NoKernel
    for axis, (n_out, f) in enumerate(zip(out, factors, strict=True)):
        if n_out != x.shape[axis] or f != 1.0:
            x = _resize_axis(x, axis, n_out, f, node)
    return x


class _NoKernel(Exception):
    """This configuration of the op is left to onnx.reference."""


def _prelu(node: Node, inputs: Inputs) -> Arr:
    x, slope = _f64(inputs[0]), _f64(inputs[1])
    return np.where(x >= 0, x, x * slope)


def _in_float64(node: Node, inputs: Inputs) -> list[Arr]:
    """A constant_ops kernel (Sum, Pow, Sqrt, Gather, Where, Expand, Tile, Split, Reduce*, Cast, ...) on
    float64 copies of float inputs: one implementation, computed at the reference's precision."""
    from edgetune.graph.constant_ops import eval_constant_node  # lazy: graph must not need runtime

    outs = eval_constant_node(node, [None if x is None else _f64(x) for x in inputs])
    return list(outs or [])


_F64_CONSTANT_OPS = ("Slice", "Sum", "Pow", "Sqrt", "Gather", "Where", "Expand", "Tile", "Split", "ReduceMean",
                     "ReduceSum", "ReduceMax", "ReduceMin", "Cast", "Neg", "Abs", "Exp", "Log",
                     "Reciprocal", "Min", "Max", "Equal", "Less", "Greater", "Not", "And", "Or")
"""Ops whose reference kernel is constant_ops' NumPy one, in float64."""


def _identity(node: Node, inputs: Inputs) -> list[Arr]:
    outs = [inputs[0]]
    if len(node.outputs) > 1 and node.outputs[1]:  # Dropout's mask: inference keeps everything
        outs.append(np.ones(inputs[0].shape, dtype=bool))
    return outs


_OPS: dict[str, Callable[[Node, Inputs], Arr | list[Arr]]] = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": lambda n, i: np.matmul(_f64(i[0]), _f64(i[1])),
    "BatchNormalization": _batchnorm,
    **{op: _unary for op in ("Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh")},
    **{op: _binary for op in ("Add", "Sub", "Mul", "Div")},
    "Concat": _concat,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "Softmax": _softmax,
    "Pad": _pad,
    "LRN": _lrn,
    "Identity": _identity,
    "Dropout": _identity,
    **{op: _in_float64 for op in _F64_CONSTANT_OPS},
    "Erf": lambda n, i: _erf(_f64(i[0])),
    "Gelu": _gelu,
    "LayerNormalization": _layernorm,
    "InstanceNormalization": _instancenorm,
    "PRelu": _prelu,
    "ConvTranspose": _conv_transpose,
    "Resize": _resize,
}

REFERENCE_OPS: frozenset[str] = frozenset(_OPS)
"""Op types with a reference kernel here; others go to `constant_ops.eval_constant_node`, then to ONNX's
own reference implementation (`runtime/onnx_reference.py`)."""


def reference_primitive_name(op: str) -> str:
    """The `ref.*` primitive that runs op type `op` (`ref.onnx` when it has no kernel here)."""
    return f"ref.{op.lower()}" if op in REFERENCE_OPS else "ref.onnx"


def _finish(y: Arr) -> Arr:
    """A fresh, contiguous output: floats as float32, other dtypes unchanged."""
    y = np.asarray(y)
    return np.array(y, dtype=np.float32 if np.issubdtype(y.dtype, np.floating) else y.dtype, order="C")


def _one_line(e: BaseException) -> str:
    msg = str(e).strip()
    return msg.splitlines()[0] if msg else type(e).__name__


def run_node(node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """Run one node on all of its inputs (constants included, None for omitted optional ones), then its
    fused activation; returns one fresh array per output (float32 for float data)."""
    fn = _OPS.get(node.op)
    try:
        if fn is not None:
            try:
                out = fn(node, inputs)
            except _NoKernel:

                out = run_onnx_reference(node, inputs)
            outs = out if isinstance(out, list) else [out]
            if node.op in ("MaxPool", "BatchNormalization") and any(node.outputs[1:]):
                raise UnsupportedModelError(f"{node.op} node {node.name}: extra outputs "
                                            f"{[o for o in node.outputs[1:] if o]} are not supported")
        else:
            from edgetune.graph.constant_ops import eval_constant_node  # lazy: graph must not need runtime

            fallback = eval_constant_node(node, inputs)
            outs = list(fallback) if fallback is not None else run_onnx_reference(node, inputs)
        if node.activation is not None:
            outs[0] = activate(outs[0], node.activation)
    except EdgetuneError:
        raise
    except Exception as e:  # numpy's shape/type errors, made one line and tied to the node
        raise EdgetuneError(f"reference {node.op} node {node.name}: {_one_line(e)}") from e
    return [_finish(o) for o in outs]


# ---- whole graphs ------------------------------------------------------------------------------

def _check_feeds(graph: Graph, feeds: dict[str, np.ndarray]) -> dict[str, Arr]:
    """Every graph input present with its declared shape and dtype; a one-line error otherwise."""
    env: dict[str, Arr] = {}
    for name in graph.inputs:
        v = graph.values.get(name)
        want_shape = v.shape if v is not None else None
        want_dtype = v.dtype if v is not None else "float32"
        if name not in feeds:
            raise EdgetuneError(f"missing input {name!r} (expected shape {want_shape}, {want_dtype}); "
                                f"got inputs {sorted(feeds)}")
        x = np.asarray(feeds[name])
        if want_shape is not None and tuple(x.shape) != tuple(want_shape):
            raise EdgetuneError(f"input {name!r}: expected shape {tuple(want_shape)}, got {tuple(x.shape)}")
        if str(x.dtype) != want_dtype:
            raise EdgetuneError(f"input {name!r}: expected dtype {want_dtype}, got {x.dtype} "
                                f"(shape {tuple(x.shape)})")
        env[name] = x
    return env


def run_graph(graph: Graph, feeds: dict[str, np.ndarray], keep: bool = False) -> dict[str, np.ndarray]:
    """Run every node in order on the reference kernels; returns the graph outputs, or every value
    (inputs and all node outputs) when `keep`. Without `keep`, a value is dropped after its last use."""
    env = _check_feeds(graph, feeds)
    last_use: dict[str, int] = {}
    for i, n in enumerate(graph.nodes):
        for name in n.inputs:
            last_use[name] = i
    wanted = set(graph.outputs)
    for i, node in enumerate(graph.nodes):
        args: Inputs = []
        for name in node.inputs:
            if not name:
                args.append(None)
            elif name in graph.initializers:
                args.append(graph.initializers[name])
            elif name in env:
                args.append(env[name])
            else:
                raise EdgetuneError(f"node {node.name} ({node.op}) reads {name!r}, which nothing computed")
        outs = run_node(node, args)
        for name, y in zip(node.outputs, outs, strict=False):
            if name:
                env[name] = y
        if not keep:
            for name in set(node.inputs):
                if last_use.get(name) == i and name not in wanted:
                    env.pop(name, None)
    if keep:
        return env
    missing = [o for o in graph.outputs if o not in env and o not in graph.initializers]
    if missing:
        raise EdgetuneError(f"graph {graph.name}: outputs {missing} are never computed")
    return {o: env[o] if o in env else np.array(graph.initializers[o]) for o in graph.outputs}


# ---- inputs: stand-ins and the reference activations every measurement starts from ------------------

def _index_bound(graph: Graph, value: str) -> int:
    """The largest valid index count for an integer input: the gathered axis of every constant table it
    indexes (token ids into an embedding), else 2."""
    bounds = [2]
    for n in graph.consumers(value):
        if n.op == "Gather" and len(n.inputs) > 1 and n.inputs[1] == value and n.inputs[0] in graph.initializers:
            bounds.append(int(graph.initializers[n.inputs[0]].shape[int(n.attr("axis", 0))]))
    return min(bounds) if len(bounds) == 1 else min(bounds[1:])


def stand_in_input(graph: Graph, value: str, rng: np.random.Generator) -> np.ndarray:
    """A stand-in for graph input `value` from its declared dtype and shape: N(0, 1) floats (like a
    normalised image or MFCCs), integers in [0, the table size they index), random booleans."""
    shape, dtype = graph.shape(value), np.dtype(graph.dtype(value))
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    return rng.integers(0, _index_bound(graph, value), shape).astype(dtype)


def default_feeds(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """The graph's example inputs (`--inputs FILE.npz`) when given, else stand-ins per input."""
    if graph.example_feeds:
        return {k: v.copy() for k, v in graph.example_feeds.items()}
    rng = np.random.default_rng(seed)
    return {i: stand_in_input(graph, i, rng) for i in graph.inputs}


def reference_samples(graph: Graph, feeds: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every value of a reference run: representative activations for calibration and verification."""
    return run_graph(graph, feeds or default_feeds(graph), keep=True)
