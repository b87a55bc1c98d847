"""kernels.verify: right primitives pass, deliberately wrong ones fail with a reason (numbers only)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edgetune.kernels import verify as verify_mod
from edgetune.kernels.base import FP32_BLOCKED, Format, FunctionKernel, Kernel, PrepareContext
from edgetune.kernels.libraries.numpy.conv import Im2colConv
from edgetune.kernels.verify import VerifyResult, verify, verify_node
from tests.conv_cases import conv_case, ref_act, ref_conv
from tests.test_kernels_numpy import CASES


def _float64_reference(node, inputs):
    """Stand-in for reference.run_node while that module does not exist (Conv only)."""
    a = node.attrs
    b = inputs[2] if len(inputs) > 2 else None
    y = ref_conv(inputs[0], inputs[1], b, a["strides"], a["pads"], a["dilations"], a["group"])
    return [ref_act(y, node.activation).astype(np.float32)]


@pytest.fixture(autouse=True)
def reference(monkeypatch):
    try:
        import edgetune.graph.reference  # noqa: F401
    except ModuleNotFoundError:
        monkeypatch.setattr(verify_mod, "reference_outputs", _float64_reference)


class Wrapped(Im2colConv):
    """im2col with its output passed through `post(x, y)` (the way to break a right primitive)."""

    def __init__(self, post, name="conv.broken.test", **kw):
        super().__init__()
        self.name, self.post = name, post
        for k, v in kw.items():
            setattr(self, k, v)

    def prepare(self, node, ctx: PrepareContext) -> Kernel:
        inner = super().prepare(node, ctx)
        return FunctionKernel(lambda x: [self.post(x, inner(x)[0])])


class TransposedKernel(Im2colConv):
    """Uses the weights with kh and kw swapped: right shape, wrong numbers."""

    name = "conv.transposed.test"

    def prepare(self, node, ctx):
        g = ctx.graph
        w = g.initializers[node.inputs[1]]
        inits = dict(g.initializers) | {node.inputs[1]: np.ascontiguousarray(w.transpose(0, 1, 3, 2))}
        g2 = type(g)(g.name, g.nodes, g.inputs, g.outputs, g.values, inits)
        return super().prepare(node, PrepareContext(g2, ctx.threads, ctx.samples))


def _fail(msg):
    raise ValueError(msg + "\nsecond line")


def test_right_primitive_passes():
    g, node, _, _ = conv_case(**CASES["asym"])
    r = verify(Im2colConv(), node, g)
    assert r == VerifyResult(True, r.rel_error, None, None) and r.rel_error < 1e-5


@pytest.mark.parametrize(
    "prim,expect",
    [
        (Wrapped(lambda x, y: y * 1.05), "rel error"),
        (TransposedKernel(), "rel error"),
        (Wrapped(lambda x, y: y[:, :, :-1]), "shape"),
        (Wrapped(lambda x, y: np.where(y > 1, np.nan, y)), "NaN"),
        (Wrapped(lambda x, y: _fail("boom")), "ValueError: boom"),
    ],
    ids=["scaled", "transposed", "shape", "nan", "raises"],
)
def test_wrong_primitive_fails_with_reason(prim, expect):
    g, node, _, _ = conv_case(**CASES["3x3p1"])
    r = verify(prim, node, g)
    assert not r.ok and expect in r.reason and "\n" not in r.reason
    assert r.reason.startswith("random inputs")
    if expect == "rel error":
        assert 0.01 < r.rel_error < math.inf


def test_declined_node_is_not_ok():
    g, node, _, _ = conv_case(**CASES["stride2"])
    from edgetune.kernels.registry import get

    r = verify(get("conv.winograd_f2.numpy"), node, g)
    assert not r.ok and "strides" in r.reason


def test_samples_are_used():
    """Wrong only on large inputs: random N(0,1) passes, the realistic samples expose it."""
    g, node, x, _ = conv_case(**CASES["3x3p1"])
    prim = Wrapped(lambda x, y: y * 1.1 if np.abs(x).max() > 20 else y)
    assert verify(prim, node, g).ok
    r = verify(prim, node, g, samples={"x": x * 50})
    assert not r.ok and r.reason.startswith("sample activations") and "rel error" in r.reason


def test_inputs_and_outputs_go_through_converters():
    g, node, _, _ = conv_case(**CASES["groups2"])
    from edgetune.kernels.registry import get

    assert verify(get("conv.im2col_nhwc.numpy"), node, g).ok
    blocked = Wrapped(lambda x, y: torch.from_numpy(y).to_mkldnn(), output_format=lambda n, gr: FP32_BLOCKED)
    r = verify(blocked, node, g)
    assert r.ok, r.reason
    odd = Wrapped(lambda x, y: y, output_format=lambda n, gr: Format("NHWC", "float64"))
    r = verify(odd, node, g)
    assert not r.ok and "no converter" in r.reason


def test_int8_precision_reports_sqnr():
    g, node, _, _ = conv_case(**CASES["3x3p1"])
    step = 1 / 16
    coarse = Wrapped(lambda x, y: np.round(y / step) * step, precision="int8", tolerance=0.05)
    r = verify(coarse, node, g)
    assert r.ok and 20 < r.sqnr_db < 60 and r.rel_error < 0.05
    assert verify(Im2colConv(), node, g).sqnr_db is None


def test_verify_node_covers_numpy_candidates():
    g, node, _, _ = conv_case(**CASES["odd13"], act=None)
    results = verify_node(node, g)
    for name in ("conv.im2col.numpy", "conv.winograd_f2.numpy", "conv.winograd_f4.numpy", "conv.fft.numpy"):
        assert results[name].ok, (name, results[name].reason)
    assert "conv.gemm1x1.numpy" not in results and "conv.direct_dw.numpy" not in results
