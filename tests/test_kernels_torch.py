"""torch fp32 and int8 primitives against a float64 reference written here (numbers, not speed)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from edgetune.graph.ir import Activation, Graph, Node, Value
from edgetune.kernels.base import PrepareContext
from edgetune.kernels.libraries.torch.conv import bf16_unavailable
from edgetune.kernels.registry import get, unavailable
from tests.conv_cases import LAYER_CASES as CASES
from tests.conv_cases import conv_case, ref_act, ref_conv, rel_err
from tests.isa import U8S8_CONDITION, U8S8_SATURATES, X86

# ---- float64 reference and tiny graphs --------------------------------------------------------


def to_format(x, layout):
    if layout == "NHWC":
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    if layout == "BLOCKED":
        return torch.from_numpy(x).to_mkldnn()
    return x


def from_format(y, layout):
    if layout == "NHWC":
        return y.transpose(0, 3, 1, 2)
    if layout == "BLOCKED":
        return y.to_dense().numpy()
    return y


def run_prim(name, g, node, x, threads=1, samples=None):
    prim = get(name)
    kernel = prim.prepare(node, PrepareContext(g, threads=threads, samples=samples or {}))
    fmt_in = prim.input_formats(node, g)[0].layout
    out = kernel(to_format(x, fmt_in))
    assert len(out) == 1
    return from_format(out[0], prim.output_format(node, g).layout), kernel


# ---- fp32 ----------------------------------------------------------------------------------------

FP32 = [
    "conv.onednn.torch",
    "conv.onednn_nhwc.torch",
    "conv.onednn_blocked.torch",
    "conv.native.torch",
    "conv.native_nhwc.torch",
    "conv.nnpack.torch",
]
EXPECTED_DECLINES = {
    "conv.nnpack.torch": {"depthwise", "stride2", "7x7s2", "asym", "groups2", "dilated"},
    "conv.onednn_blocked.torch": {"asym"},
    "conv.native_nhwc.torch": {"depthwise", "groups2"},
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", FP32)
def test_fp32_conv_matches_reference(name, case):
    g, node, x, ref = conv_case(**CASES[case])
    reason = get(name).supports(node, g)
    if case in EXPECTED_DECLINES.get(name, ()):
        assert isinstance(reason, str) and reason
        return
    assert reason is None
    y, kernel = run_prim(name, g, node, x)
    assert y.shape == ref.shape
    assert rel_err(y, ref) < 1e-4
    assert kernel.weight_bytes >= node_weights_bytes(g) > 0


def node_weights_bytes(g):
    return sum(a.nbytes for a in g.initializers.values())


@pytest.mark.parametrize("case", ["3x3", "depthwise", "asym"])
def test_fp16w_weights(case):
    g, node, x, ref = conv_case(**CASES[case])
    y, kernel = run_prim("conv.onednn.torch.fp16w", g, node, x)
    assert rel_err(y, ref) < get("conv.onednn.torch.fp16w").tolerance
    w16 = g.initializers["w"].astype(np.float16).astype(np.float32)
    p = node.attrs
    ref16 = ref_conv(x, w16, g.initializers["b"], p["strides"], p["pads"], p["dilations"], p["group"])
    assert rel_err(y, ref16) < 1e-4
    assert kernel.weight_bytes < node_weights_bytes(g) * 0.6


ACTS = [
    Activation("Relu"),
    Activation("Clip", {"min": 0.0, "max": 0.5}),
    Activation("Clip", {"min": -0.3}),
    Activation("LeakyRelu", {"alpha": 0.1}),
    Activation("Sigmoid"),
    Activation("HardSigmoid", {"alpha": 0.2, "beta": 0.5}),
    Activation("HardSwish"),
    Activation("Tanh"),
    Activation("Swish"),
]


@pytest.mark.parametrize("act", ACTS, ids=lambda a: f"{a.op}{sorted(a.params.values())}")
@pytest.mark.parametrize("name", FP32 + ["conv.onednn.torch.fp16w"])
def test_fused_activation(name, act):
    g, node, x, ref = conv_case(**CASES["3x3"], act=act)
    y, _ = run_prim(name, g, node, x)
    assert rel_err(y, ref) < get(name).tolerance


def test_blocked_roundtrip_keeps_input():
    g, node, x, ref = conv_case(**CASES["depthwise"], act=Activation("HardSwish"))
    xb = torch.from_numpy(x).to_mkldnn()
    k = get("conv.onednn_blocked.torch").prepare(node, PrepareContext(g))
    y = k(xb)[0]
    assert y.is_mkldnn
    assert rel_err(y.to_dense().numpy(), ref) < 1e-4
    assert np.array_equal(xb.to_dense().numpy(), x)


def test_native_restores_mkldnn_flag():
    g, node, x, _ = conv_case(**CASES["3x3"])
    before = torch.backends.mkldnn.enabled
    run_prim("conv.native.torch", g, node, x)
    assert torch.backends.mkldnn.enabled == before


def test_outputs_are_fresh_contiguous_arrays():
    g, node, x, _ = conv_case(**CASES["3x3"])
    for name in ("conv.onednn.torch", "conv.onednn_nhwc.torch", "conv.native_nhwc.torch"):
        prim = get(name)
        k = prim.prepare(node, PrepareContext(g))
        xi = to_format(x, prim.input_formats(node, g)[0].layout)
        a, b = k(xi)[0], k(xi)[0]
        assert a.flags.c_contiguous and not np.shares_memory(a, b)
        assert a.shape == ((1, 12, 12, 16) if "nhwc" in name else (1, 16, 12, 12))


# ---- Gemm / MatMul ----------------------------------------------------------------------------------


def gemm_case(op, trans_b=0, alpha=1.0, beta=1.0, act=None, batch_dims=()):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((*batch_dims, 3, 20)).astype(np.float32)
    bmat = rng.standard_normal((12, 20) if trans_b else (20, 12)).astype(np.float32)
    c = rng.standard_normal(12).astype(np.float32)
    bt = bmat.T if trans_b else bmat
    if op == "Gemm":
        node = Node(
            "g", "Gemm", ["a", "b", "c"], ["y"], {"transB": trans_b, "alpha": alpha, "beta": beta}, act
        )
        ref = alpha * a.astype(np.float64) @ bt + beta * c
        inits = {"b": bmat, "c": c}
    else:
        node = Node("g", "MatMul", ["a", "b"], ["y"], {}, act)
        ref = a.astype(np.float64) @ bt
        inits = {"b": bmat}
    ref = ref_act(ref, act)
    g = Graph("t", [node], ["a"], ["y"], {"a": Value("a", a.shape), "y": Value("y", ref.shape)}, inits)
    return g, node, a, ref


@pytest.mark.parametrize(
    "kw",
    [
        dict(op="Gemm"),
        dict(op="Gemm", trans_b=1, alpha=0.5, beta=2.0),
        dict(op="Gemm", act=Activation("Relu")),
        dict(op="MatMul"),
        dict(op="MatMul", batch_dims=(2,), act=Activation("Tanh")),
    ],
    ids=str,
)
def test_gemm_torch(kw):
    g, node, a, ref = gemm_case(**kw)
    prim = get("gemm.torch")
    assert prim.supports(node, g) is None
    k = prim.prepare(node, PrepareContext(g))
    y = k(a)[0]
    assert y.shape == ref.shape and rel_err(y, ref) < 1e-4
    assert k.weight_bytes > 0


def test_gemm_declines_dynamic_b():
    g, node, a, _ = gemm_case("MatMul")
    g.initializers.pop("b")
    g.values["b"] = Value("b", (20, 12))
    assert "constant" in get("gemm.torch").supports(node, g)


# ---- int8 --------------------------------------------------------------------------------------------

# The engines this CPU has (x86 and fbgemm are x86-only: elsewhere the registry lists them as unavailable).
INT8_OK = [n for n in ("conv.int8_x86.torch", "conv.int8_fbgemm.torch", "conv.int8_onednn.torch",
                       "conv.int8_qnnpack.torch") if n not in unavailable()]
# The reduce-range engine of this CPU: x86 where it exists, else onednn.
INT8_REDUCED = INT8_OK[0]


def test_x86_engines_only_on_x86():
    x86 = {"conv.int8_x86.torch", "conv.int8_fbgemm.torch"}
    if X86:
        assert x86 <= set(INT8_OK)
    else:
        assert not x86 & set(INT8_OK) and all("x86 CPUs only" in unavailable()[n] for n in x86), unavailable()


def relu_input_case(case, act=None):
    g, node, x, _ = conv_case(**CASES[case], act=act)
    x = np.abs(x)  # realistic post-ReLU activations
    p = node.attrs
    ref = ref_act(
        ref_conv(
            x,
            g.initializers["w"],
            g.initializers.get("b"),
            p["strides"],
            p["pads"],
            p["dilations"],
            p["group"],
        ),
        act,
    )
    return g, node, x, ref


@pytest.mark.parametrize("case", ["3x3", "1x1", "depthwise", "stride2", "asym", "batch2"])
@pytest.mark.parametrize("name", INT8_OK)
def test_int8_conv_within_tolerance(name, case):
    g, node, x, ref = relu_input_case(case)
    with warnings.catch_warnings(record=True) as caught:  # keeps the module's filters
        y, kernel = run_prim(name, g, node, x, samples={"x": x})
    assert not [str(w.message) for w in caught if "deprecated" in str(w.message)]
    assert rel_err(y, ref) < 0.05
    co = g.initializers["w"].shape[0]
    assert 0 < kernel.weight_bytes <= g.initializers["w"].nbytes / 4 + 8 * co  # int8 + bias + scales


@pytest.mark.parametrize("name", INT8_OK)
@pytest.mark.parametrize(
    "act",
    [Activation("Relu"), Activation("Clip", {"min": 0.0, "max": 1.0}), Activation("Sigmoid")],
    ids=lambda a: a.op,
)
def test_int8_fused_activation(name, act):
    g, node, x, ref = relu_input_case("3x3", act)
    y, _ = run_prim(name, g, node, x, samples={"x": x})
    assert rel_err(y, ref) < 0.05
    if act.op != "Sigmoid":
        assert y.min() >= 0


def test_int8_without_samples_runs():
    g, node, x, ref = relu_input_case("3x3")
    y, _ = run_prim(INT8_REDUCED, g, node, x)
    assert y.shape == ref.shape and np.isfinite(y).all()
    assert rel_err(y, ref) < 0.1


def test_int8_fullrange_runs():
    g, node, x, ref = relu_input_case("1x1")
    y, _ = run_prim("conv.int8_onednn_fullrange.torch", g, node, x, samples={"x": x})
    assert y.shape == ref.shape  # accuracy is verification's business (see the next test)


def test_int8_fullrange_saturates_only_without_int32_dot():
    """Uniform activations and weights: oneDNN's full-range u8s8 saturates on x86 without VNNI and is exact
    with it; the reduce-range engine is accurate on either."""
    rng = np.random.default_rng(5)
    g, node, x, _ = conv_case(n=1, c=128, h=8, w=8, co=32, k=1)
    x = rng.random(x.shape).astype(np.float32)
    w = g.initializers["w"] = rng.uniform(-1, 1, g.initializers["w"].shape).astype(np.float32)
    ref = ref_conv(x, w, g.initializers["b"], (1, 1), [0, 0, 0, 0], (1, 1), 1)
    y, _ = run_prim(INT8_REDUCED, g, node, x, samples={"x": x})
    assert rel_err(y, ref) < 0.05
    y, _ = run_prim("conv.int8_onednn_fullrange.torch", g, node, x, samples={"x": x})
    if U8S8_SATURATES:
        assert rel_err(y, ref) > 0.05, U8S8_CONDITION
    else:
        assert rel_err(y, ref) < 0.05, U8S8_CONDITION


def test_int8_engine_switch_between_calls():
    g, node, x, ref = relu_input_case("3x3")
    ctx = PrepareContext(g, samples={"x": x})
    ks = [get(n).prepare(node, ctx) for n in INT8_OK]
    for k in ks + ks:
        assert rel_err(k(x)[0], ref) < 0.05


# ---- bf16 (only where the CPU computes it natively) -------------------------------------------------

BF16 = ["conv.onednn.torch.bf16", "gemm.torch.bf16"]


def test_bf16_primitives_exist_exactly_where_the_cpu_has_native_bf16():
    """AVX512-BF16/AMX (or Arm BF16): registered; elsewhere unavailable, saying why (oneDNN would emulate)."""
    why = bf16_unavailable()
    for name in BF16:
        if why is None:
            assert get(name).precision == "bf16" and name not in unavailable()
        else:
            assert unavailable()[name] == why


@pytest.mark.parametrize("case", ["3x3", "depthwise", "asym", "7x7s2"])
def test_bf16_conv_within_its_tolerance_with_half_the_weights(case):
    if "conv.onednn.torch.bf16" in unavailable():
        pytest.skip(unavailable()["conv.onednn.torch.bf16"])
    g, node, x, ref = conv_case(**CASES[case])
    y, kernel = run_prim("conv.onednn.torch.bf16", g, node, x)
    assert y.dtype == np.float32 and rel_err(y, ref) < get("conv.onednn.torch.bf16").tolerance
    assert rel_err(y, ref) > 1e-6  # it does compute in bf16: not an fp32 kernel under another name
    assert kernel.weight_bytes < node_weights_bytes(g) * 0.6


def test_bf16_gemm_within_its_tolerance():
    if "gemm.torch.bf16" in unavailable():
        pytest.skip(unavailable()["gemm.torch.bf16"])
    g, node, a, ref = gemm_case("Gemm", trans_b=1)
    k = get("gemm.torch.bf16").prepare(node, PrepareContext(g))
    y = k(a)[0]
    assert y.dtype == np.float32 and y.shape == ref.shape and rel_err(y, ref) < get("gemm.torch.bf16").tolerance
