"""numpy / numba primitives and the converters against float64 references written here (numbers only)."""

from __future__ import annotations

import numpy as np
import pytest

from edgetune.graph.ir import Activation, Graph, Node, Value
from edgetune.kernels.base import (
    FP32,
    FP32_BLOCKED,
    FP32_NHWC,
    Format,
    PrepareContext,
    Workspace,
    workspace_bytes_in_use,
)
from edgetune.kernels.registry import converter, get
from tests.conv_cases import conv_case, ref_conv

# ---- float64 references and tiny graphs --------------------------------------------------------


CASES = {
    "3x3p1": dict(n=1, c=8, h=12, w=12, co=16, k=3),
    "odd7x9": dict(n=1, c=5, h=7, w=9, co=3, k=3, bias=False),
    "odd13": dict(n=1, c=4, h=13, w=13, co=6, k=3),
    "asym": dict(n=1, c=6, h=11, w=10, co=8, k=3, pads=[0, 1, 2, 0]),
    "dil2": dict(n=1, c=6, h=12, w=11, co=8, k=3, dil=2),
    "stride2": dict(n=1, c=6, h=13, w=13, co=8, k=3, stride=2),
    "groups2": dict(n=1, c=8, h=9, w=9, co=12, k=3, group=2),
    "groups4": dict(n=1, c=8, h=9, w=7, co=8, k=3, group=4),
    "dw": dict(n=1, c=12, h=10, w=9, co=12, k=3, group=12),
    "dw5s2": dict(n=1, c=8, h=11, w=11, co=8, k=5, stride=2, group=8),
    "1x1": dict(n=1, c=16, h=7, w=9, co=12, k=1),
    "7x7s2": dict(n=1, c=3, h=23, w=21, co=8, k=7, stride=2),
    "batch3": dict(n=3, c=6, h=9, w=9, co=8, k=3),
    "batch3_dw": dict(n=3, c=6, h=8, w=8, co=6, k=3, group=6),
    "5x5": dict(n=1, c=4, h=10, w=11, co=6, k=5),
    "dw_dil2": dict(n=1, c=6, h=12, w=12, co=6, k=3, group=6, dil=2),
    "relu": dict(n=1, c=8, h=9, w=9, co=8, k=3, act=Activation("Relu")),
    "clip6": dict(n=2, c=4, h=9, w=9, co=4, k=3, group=4, act=Activation("Clip", {"min": 0.0, "max": 0.5})),
}

CONV_PRIMS = [
    "conv.im2col.numpy",
    "conv.im2col.numpy.fp16w",
    "conv.im2col_nhwc.numpy",
    "conv.gemm1x1.numpy",
    "conv.winograd_f2.numpy",
    "conv.winograd_f4.numpy",
    "conv.fft.numpy",
    "conv.direct_dw.numpy",
    "conv.direct_dw.numba",
    "conv.direct.numba",
]

_WINO = {
    "dil2": "dilations",
    "5x5": "kernel_shape",
    "dw_dil2": "dilations",
    "stride2": "strides",
    "groups2": "group",
    "groups4": "group",
    "dw": "group",
    "dw5s2": "kernel_shape",
    "1x1": "kernel_shape",
    "7x7s2": "kernel_shape",
    "batch3_dw": "group",
    "clip6": "group",
}
_DW = ("dw", "dw5s2", "batch3_dw", "clip6", "dw_dil2")
_NOT_DW = {c: "group" for c in CASES if c not in _DW}
# case -> attribute named in the reason, for cases each primitive must decline.
DECLINES = {
    "conv.gemm1x1.numpy": {
        c: ("kernel_shape" if CASES[c]["k"] != 1 else "group") for c in CASES if c != "1x1"
    },
    "conv.winograd_f2.numpy": _WINO,
    "conv.winograd_f4.numpy": _WINO,
    "conv.fft.numpy": {
        "dil2": "dilations",
        "stride2": "strides",
        "groups2": "group",
        "groups4": "group",
        "dw": "group",
        "dw5s2": "group",
        "7x7s2": "strides",
        "batch3_dw": "group",
        "clip6": "group",
        "dw_dil2": "group",
    },
    "conv.direct_dw.numpy": _NOT_DW,
    "conv.direct_dw.numba": _NOT_DW,
    "conv.direct.numba": {c: "group" for c in ("groups2", "groups4") + _DW},
}


def to_layout(x, fmt: Format):
    return x if fmt == FP32 else converter(FP32, fmt).prepare(x.shape)(x)


def from_layout(y, fmt: Format, shape):
    return y if fmt == FP32 else converter(fmt, FP32).prepare(shape)(y)


def run_prim(name, g, node, x, threads=1):
    prim = get(name)
    kernel = prim.prepare(node, PrepareContext(g, threads=threads))
    out = kernel(to_layout(x, prim.input_formats(node, g)[0]))
    assert len(out) == 1
    return from_layout(out[0], prim.output_format(node, g), g.shape(node.outputs[0])), kernel


def rel_err(y, ref):
    return float(np.abs(y - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", CONV_PRIMS)
def test_conv_matches_float64_reference(name, case):
    g, node, x, ref = conv_case(**CASES[case])
    prim = get(name)
    reason = prim.supports(node, g)
    expected = DECLINES.get(name, {}).get(case)
    if expected is not None:
        assert isinstance(reason, str) and expected in reason, reason
        return
    assert reason is None, reason
    y, kernel = run_prim(name, g, node, x)
    assert y.shape == ref.shape and y.dtype == np.float32
    assert rel_err(y, ref) < prim.tolerance
    assert kernel.weight_bytes > 0 and kernel.workspace_bytes >= 0


def test_conv_kernel_is_reusable_and_outputs_are_fresh():
    g, node, x, ref = conv_case(**CASES["odd13"])
    for name in ("conv.im2col.numpy", "conv.winograd_f4.numpy", "conv.fft.numpy", "conv.direct.numba"):
        kernel = get(name).prepare(node, PrepareContext(g))
        y1 = kernel(x)[0]
        y2 = kernel(x * 2)[0]
        assert rel_err(y1, ref) < 5e-4 and not np.shares_memory(y1, y2)


def test_fp16w_stores_half_the_weights():
    g, node, x, ref = conv_case(**CASES["3x3p1"], bias=False)
    y32, k32 = run_prim("conv.im2col.numpy", g, node, x)
    y16, k16 = run_prim("conv.im2col.numpy.fp16w", g, node, x)
    assert k16.weight_bytes * 2 == k32.weight_bytes == g.initializers["w"].nbytes
    w16 = g.initializers["w"].astype(np.float16).astype(np.float32)
    ref16 = ref_conv(x, w16, None, (1, 1), [1] * 4, (1, 1), 1)
    assert rel_err(y16, ref16) < 1e-5 and 0 < rel_err(y16, ref) < 2e-3


def test_im2col_workspace_reports_the_patch_buffer():
    g, node, x, _ = conv_case(**CASES["3x3p1"])
    k = get("conv.im2col.numpy").prepare(node, PrepareContext(g))
    cols = 8 * 9 * 12 * 12 * 4
    padded = 8 * 14 * 14 * 4
    assert k.workspace_bytes == cols + padded


# ---- the shared workspace ------------------------------------------------------------------------


def test_workspace_is_sized_by_the_largest_request_and_views_follow_its_growth():
    f32 = np.float32
    before = workspace_bytes_in_use()
    ws = Workspace()
    small = ws.request(((10,), f32))
    assert ws.nbytes == small.nbytes == 40 and workspace_bytes_in_use() - before == 40
    (a,) = small.arrays()
    a[:] = 1
    del a  # a view held outside the kernels keeps its arena alive
    big = ws.request(((100,), f32), None, ((3, 2), np.float16))
    assert big.nbytes == 448 + 12  # the second array starts on the next 64-byte boundary
    assert ws.nbytes == 460 and workspace_bytes_in_use() - before == 460  # the old arena was freed
    ws.request(((5,), f32))  # smaller than the arena: no growth
    assert ws.nbytes == 460
    x, none, y = big.arrays()
    assert none is None and x.shape == (100,) and y.shape == (3, 2) and y.dtype == np.float16
    assert not np.shares_memory(x, y)  # one kernel's arrays are disjoint...
    (a,) = small.arrays()
    assert np.shares_memory(a, x)  # ...different kernels' arrays share the arena
    assert small.arrays()[0] is a  # views are made once per arena
    del ws, small, big, a, x, y
    assert workspace_bytes_in_use() == before


def _poison(ws: Workspace) -> None:
    """Fill the whole arena with NaN bytes, as if another kernel had just used it."""
    ws.request(((ws.nbytes,), np.uint8)).arrays()[0].fill(0xFF)


@pytest.mark.parametrize("name", [p for p in CONV_PRIMS if p != "conv.gemm1x1.numpy"])  # gemm1x1: no scratch
def test_convs_sharing_a_workspace_never_see_each_others_data(name):
    """Every case the primitive supports is prepared on ONE workspace; they run alternately, twice each,
    with the arena poisoned (NaN) before every call: each must still match the float64 reference."""
    prim, ws = get(name), Workspace()
    layers = []
    for case, spec in CASES.items():
        g, node, x, ref = conv_case(**spec)
        if prim.supports(node, g) is None:
            fmt = prim.input_formats(node, g)[0]
            kernel = prim.prepare(node, PrepareContext(g, workspace=ws))
            layers.append((case, g, node, to_layout(x, fmt), ref, kernel))
    assert len(layers) >= 2
    shared = [k.shared_workspace_bytes for *_, k in layers]
    assert ws.nbytes == max(shared)  # sized by the largest request
    for _ in range(2):
        for case, g, node, x, ref, kernel in layers:
            _poison(ws)
            y = from_layout(kernel(x)[0], prim.output_format(node, g), g.shape(node.outputs[0]))
            assert rel_err(y, ref) < prim.tolerance, case
    assert ws.nbytes == max(shared)


# ---- Gemm / MatMul -------------------------------------------------------------------------------


def gemm_case(op, a_shape, b_shape, c_shape=None, const_b=True, **attrs):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    c = rng.standard_normal(c_shape).astype(np.float32) if c_shape else None
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if op == "Gemm":
        a64 = a64.T if attrs.get("transA") else a64
        b64 = b64.T if attrs.get("transB") else b64
        ref = attrs.get("alpha", 1.0) * a64 @ b64 + (attrs.get("beta", 1.0) * c if c is not None else 0)
    else:
        ref = np.matmul(a64, b64)
    inputs = ["a", "b"] + (["c"] if c is not None else [])
    inits = ({"b": b} if const_b else {}) | ({"c": c} if c is not None else {})
    vals = {"a": Value("a", a.shape), "y": Value("y", ref.shape)} | (
        {} if const_b else {"b": Value("b", b.shape)}
    )
    node = Node("g", op, inputs, ["y"], attrs)
    g = Graph("t", [node], ["a"] + ([] if const_b else ["b"]), ["y"], vals, inits)
    dyn = [a] + ([] if const_b else [b])
    return g, node, dyn, ref


GEMMS = {
    "plain": ("Gemm", (3, 20), (20, 7), (7,), True, {}),
    "transB_alpha_beta": ("Gemm", (2, 16), (5, 16), (1, 5), True, {"transB": 1, "alpha": 0.5, "beta": 2.0}),
    "transA": ("Gemm", (16, 4), (16, 6), None, True, {"transA": 1}),
    "matmul_const": ("MatMul", (2, 3, 8), (8, 5), None, True, {}),
    "matmul_dynamic": ("MatMul", (2, 3, 8), (2, 8, 4), None, False, {}),
}


@pytest.mark.parametrize("case", GEMMS)
@pytest.mark.parametrize("name", ["gemm.numpy", "gemm.numpy.fp16w"])
def test_gemm(name, case):
    op, sa, sb, sc, const_b, attrs = GEMMS[case]
    g, node, dyn, ref = gemm_case(op, sa, sb, sc, const_b, **attrs)
    prim = get(name)
    reason = prim.supports(node, g)
    if name.endswith("fp16w") and not const_b:
        assert reason and "constant B" in reason
        return
    assert reason is None
    ws = Workspace()
    kernel = prim.prepare(node, PrepareContext(g, workspace=ws))
    _poison(ws)  # fp16w casts its weights into shared scratch: whatever was there must not matter
    y = kernel(*dyn)[0]
    assert y.shape == ref.shape and rel_err(y, ref) < prim.tolerance
    if const_b:
        bbytes = g.initializers["b"].nbytes // (2 if name.endswith("fp16w") else 1)
        assert kernel.weight_bytes >= bbytes
    fp32_b = g.initializers["b"].nbytes if name.endswith("fp16w") else 0
    assert kernel.shared_workspace_bytes == kernel.workspace_bytes == ws.nbytes == fp32_b


def test_gemm_fused_activation():
    g, node, dyn, ref = gemm_case("Gemm", (2, 8), (8, 6), (6,), True)
    node.activation = Activation("Relu")
    y = get("gemm.numpy").prepare(node, PrepareContext(g))(*dyn)[0]
    assert rel_err(y, np.maximum(ref, 0)) < 1e-5 and (y >= 0).all()


# ---- converters ----------------------------------------------------------------------------------

FP16 = Format("NCHW", "float16")
FP16_NHWC = Format("NHWC", "float16")


@pytest.mark.parametrize(
    "src,dst",
    [
        (FP32, FP32_NHWC),
        (FP32, FP32_BLOCKED),
        (FP32_NHWC, FP32_BLOCKED),
        (FP32, FP16),
        (FP32_NHWC, FP16_NHWC),
    ],
    ids=str,
)
def test_converters_round_trip_exactly(src, dst):
    x = np.random.default_rng(2).standard_normal((2, 5, 7, 3)).astype(np.float32)
    if dst.dtype == "float16":  # values exactly representable in fp16 survive the round trip
        x = x.astype(np.float16).astype(np.float32)
    shape = x.shape
    xs = to_layout(x, src)
    there = converter(src, dst).prepare(shape)(xs)
    back = converter(dst, src).prepare(shape)(there)
    np.testing.assert_array_equal(from_layout(np.asarray(back), src, shape), x)


def test_nhwc_converter_layout():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    y = converter(FP32, FP32_NHWC).prepare(x.shape)(x)
    assert y.shape == (2, 4, 5, 3) and y.flags.c_contiguous and y[1, 2, 3, 0] == x[1, 0, 2, 3]
    assert converter(FP32_NHWC, FP32).supports((2, 3)) is not None


# ---- numpy_ops: pooling, elementwise, binary, concat ------------------------------------------------


def ref_pool(x, op, k, s, pads, oh, ow, include_pad=False):
    """Naive float64 pooling; windows are clipped to the input (max) or counted per ONNX (average)."""
    n, c, h, w = x.shape
    t, l, b, r = pads
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * s - t, j * s - l
            win = x[:, :, max(h0, 0) : min(h0 + k, h), max(w0, 0) : min(w0 + k, w)].astype(np.float64)
            if op == "MaxPool":
                out[:, :, i, j] = win.max(axis=(2, 3))
            else:
                hp0, hp1 = max(h0, -t), min(h0 + k, h + b)
                wp0, wp1 = max(w0, -l), min(w0 + k, w + r)
                cnt = (hp1 - hp0) * (wp1 - wp0) if include_pad else win.shape[2] * win.shape[3]
                out[:, :, i, j] = win.sum(axis=(2, 3)) / cnt
    return out


def op_graph(op, in_shapes, out_shape, attrs=None, consts=None, act=None):
    """One-node graph: dynamic inputs x0.. with in_shapes, constants by input name."""
    consts = consts or {}
    names = [f"x{i}" for i in range(len(in_shapes))]
    inputs = [c if isinstance(c, str) else c for c in consts.get("order", names)]
    inits = {k: v for k, v in consts.items() if k != "order"}
    vals = {n: Value(n, sh) for n, sh in zip(names, in_shapes, strict=True)} | {"y": Value("y", out_shape)}
    node = Node("op", op, inputs, ["y"], attrs or {}, act)
    return Graph("t", [node], names, ["y"], vals, inits), node


def run_layout(name, g, node, xs):
    """Run a primitive on NCHW arrays xs, converting to/from its formats; returns the NCHW output."""
    prim = get(name)
    assert prim.supports(node, g) is None, prim.supports(node, g)
    kernel = prim.prepare(node, PrepareContext(g))
    args = [to_layout(x, f) for x, f in zip(xs, prim.input_formats(node, g), strict=True)]
    return from_layout(kernel(*args)[0], prim.output_format(node, g), g.shape("y"))


POOLS = {
    "max3s2p1": ("MaxPool", 9, 3, 2, [1, 1, 1, 1], 0, 0),
    "max2s2ceil": ("MaxPool", 7, 2, 2, [0, 0, 0, 0], 1, 0),
    "max3s1asym": ("MaxPool", 8, 3, 1, [0, 1, 2, 0], 0, 0),
    "avg3s2p1_excl": ("AveragePool", 9, 3, 2, [1, 1, 1, 1], 0, 0),
    "avg3s1p1_incl": ("AveragePool", 7, 3, 1, [1, 1, 1, 1], 0, 1),
    "avg2s2": ("AveragePool", 8, 2, 2, [0, 0, 0, 0], 0, 0),
}


@pytest.mark.parametrize("case", POOLS)
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_pools(case, layout):
    op, hw, k, s, pads, ceil, incl = POOLS[case]
    x = np.random.default_rng(3).standard_normal((2, 5, hw, hw + 1)).astype(np.float32)
    rnd = np.ceil if ceil else np.floor
    oh = int(rnd((hw + pads[0] + pads[2] - k) / s)) + 1
    ow = int(rnd((hw + 1 + pads[1] + pads[3] - k) / s)) + 1
    attrs = {
        "kernel_shape": [k, k],
        "strides": [s, s],
        "pads": pads,
        "ceil_mode": ceil,
        "count_include_pad": incl,
    }
    g, node = op_graph(op, [x.shape], (2, 5, oh, ow), attrs)
    name = {"MaxPool": "maxpool", "AveragePool": "avgpool"}[op] + f".{layout}.numpy"
    y = run_layout(name, g, node, [x])
    ref = ref_pool(x, op, k, s, pads, oh, ow, bool(incl))
    assert y.shape == ref.shape and rel_err(y, ref) < 1e-6


def test_pools_sharing_a_workspace_rewrite_their_border():
    """Max (-inf border) and average (zero border) pools on one poisoned workspace, alternately."""
    ws, layers = Workspace(), []
    for case in ("max3s2p1", "avg3s1p1_incl", "max2s2ceil", "max3s1asym"):
        op, hw, k, s, pads, ceil, incl = POOLS[case]
        x = np.random.default_rng(4).standard_normal((1, 3, hw, hw)).astype(np.float32)
        rnd = np.ceil if ceil else np.floor
        oh = int(rnd((hw + pads[0] + pads[2] - k) / s)) + 1
        ow = int(rnd((hw + pads[1] + pads[3] - k) / s)) + 1
        attrs = {"kernel_shape": [k, k], "strides": [s, s], "pads": pads, "ceil_mode": ceil, "count_include_pad": incl}
        g, node = op_graph(op, [x.shape], (1, 3, oh, ow), attrs)
        for layout in ("nchw", "nhwc"):
            prim = get({"MaxPool": "maxpool", "AveragePool": "avgpool"}[op] + f".{layout}.numpy")
            kernel = prim.prepare(node, PrepareContext(g, workspace=ws))
            layers.append((g, prim, node, x, ref_pool(x, op, k, s, pads, oh, ow, bool(incl)), kernel))
    for _ in range(2):
        for g, prim, node, x, ref, kernel in layers:
            _poison(ws)
            y = from_layout(kernel(to_layout(x, prim.input_formats(node, g)[0]))[0], prim.output_format(node, g),
                            g.shape("y"))
            assert rel_err(y, ref) < 1e-6


def test_avgpool_ceil_mode_that_grows_output_is_declined():
    g, node = op_graph(
        "AveragePool",
        [(1, 2, 7, 7)],
        (1, 2, 4, 4),
        {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0] * 4, "ceil_mode": 1},
    )
    reason = get("avgpool.nhwc.numpy").supports(node, g)
    assert reason and "ceil_mode" in reason
    assert (
        get("maxpool.nhwc.numpy").supports(
            op_graph("MaxPool", [(1, 2, 7, 7)], (1, 2, 4, 4), dict(node.attrs))[1], g
        )
        is None
    )


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_global_average_pool_outputs_nchw(layout):
    x = np.random.default_rng(4).standard_normal((2, 6, 5, 7)).astype(np.float32)
    g, node = op_graph("GlobalAveragePool", [x.shape], (2, 6, 1, 1))
    name = f"globalavgpool.{layout}.numpy"
    assert get(name).output_format(node, g) == FP32
    y = run_layout(name, g, node, [x])
    assert (
        y.shape == (2, 6, 1, 1) and rel_err(y, x.astype(np.float64).mean(axis=(2, 3), keepdims=True)) < 1e-6
    )


UNARY = {
    "Relu": ({}, None, lambda x: np.maximum(x, 0)),
    "Clip": ({}, (np.float32(-0.5), np.float32(1.0)), lambda x: np.clip(x, -0.5, 1.0)),
    "LeakyRelu": ({"alpha": 0.2}, None, lambda x: np.where(x >= 0, x, 0.2 * x)),
    "Sigmoid": ({}, None, lambda x: 1 / (1 + np.exp(-x))),
    "HardSwish": ({}, None, lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
    "Tanh": ({}, None, np.tanh),
    "HardSigmoid": ({"alpha": 0.3, "beta": 0.4}, None, lambda x: np.clip(0.3 * x + 0.4, 0, 1)),
}


@pytest.mark.parametrize("op", UNARY)
def test_unary_nhwc(op):
    attrs, bounds, fn = UNARY[op]
    x = (np.random.default_rng(5).standard_normal((1, 4, 5, 6)) * 4).astype(np.float32)
    consts = {}
    if bounds is not None:
        consts = {"order": ["x0", "lo", "hi"], "lo": np.array(bounds[0]), "hi": np.array(bounds[1])}
    g, node = op_graph(op, [x.shape], x.shape, attrs, consts)
    y = run_layout(f"{op.lower()}.nhwc.numpy", g, node, [x])
    assert rel_err(y, fn(x.astype(np.float64))) < 1e-6


def test_clip_with_dynamic_bound_is_declined():
    g, node = op_graph("Clip", [(1, 2, 3, 3), ()], (1, 2, 3, 3))
    assert "constant" in get("clip.nhwc.numpy").supports(node, g)


BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("op", BINARY)
def test_binary_with_per_channel_constant_first(op, layout):
    rng = np.random.default_rng(6)
    x = (rng.uniform(0.5, 2, (2, 3, 4, 5)) * rng.choice([-1, 1], (2, 3, 4, 5))).astype(
        np.float32
    )  # |x| >= .5
    c = rng.standard_normal((3, 1, 1)).astype(np.float32)
    g, node = op_graph(op, [x.shape], x.shape, consts={"order": ["c", "x0"], "c": c}, act=Activation("Relu"))
    y = run_layout(f"{op.lower()}.{layout}.numpy", g, node, [x])
    assert rel_err(y, np.maximum(BINARY[op](c.astype(np.float64), x), 0)) < 1e-6


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_binary_dynamic_broadcast_and_same_shape(layout):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    s = rng.standard_normal((2, 3, 1, 1)).astype(np.float32)
    g, node = op_graph("Mul", [x.shape, s.shape], x.shape)
    assert rel_err(run_layout(f"mul.{layout}.numpy", g, node, [x, s]), x * s.astype(np.float64)) < 1e-6
    g, node = op_graph("Add", [x.shape, x.shape], x.shape)
    assert rel_err(run_layout(f"add.{layout}.numpy", g, node, [x, 2 * x]), 3.0 * x) < 1e-6


def test_concat_nhwc_along_channels():
    rng = np.random.default_rng(8)
    a, b = (
        rng.standard_normal((1, 2, 3, 4)).astype(np.float32),
        rng.standard_normal((1, 5, 3, 4)).astype(np.float32),
    )
    g, node = op_graph("Concat", [a.shape, b.shape], (1, 7, 3, 4), {"axis": 1})
    np.testing.assert_array_equal(run_layout("concat.nhwc.numpy", g, node, [a, b]), np.concatenate([a, b], 1))
    g, node = op_graph("Concat", [a.shape, a.shape], (1, 2, 6, 4), {"axis": 2})
    assert "axis" in get("concat.nhwc.numpy").supports(node, g)
