"""fp32 convolution and GEMM primitives backed by PyTorch ATen (oneDNN, native Slow2d/MKL, NNPACK).

Why several torch primitives: no single one wins every layer on this CPU (docs: probe-2026-11.md).
oneDNN is reached through `torch.ops.mkldnn._convolution_pointwise` with weights reordered once at
prepare (F.conv2d reorders NCHW weights on every call and may silently pick another backend) and
with the fused activation done inside oneDNN where it can. Slow2d (mkldnn off) wins some 1x1 layers;
NNPACK wins some 3x3/1 layers at 1 thread and is only reachable by a direct call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from edgetune.graph.ir import Activation, Graph, Node
from edgetune.kernels.base import (
    FunctionKernel,
    Kernel,
    PrepareContext,
    Primitive,
    conv_params,
)

CONV = frozenset({"Conv"})
_POINTWISE = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)
_REORDER = getattr(getattr(torch.ops, "mkldnn", None), "_reorder_convolution_weight", None)


# ---- helpers shared with torch_int8 ---------------------------------------------------------


def torch_activation(y: torch.Tensor, act: Activation | None) -> torch.Tensor:
    """Apply a fused activation in place on a dense fp32 tensor (the kernel owns `y`)."""
    if act is None:
        return y
    op, p = act.op, act.params
    if op == "Relu":
        return y.relu_()
    if op == "Clip":
        return y.clamp_(p.get("min", -math.inf), p.get("max", math.inf))
    if op == "LeakyRelu":
        return F.leaky_relu_(y, p.get("alpha", 0.01))
    if op == "Sigmoid":
        return y.sigmoid_()
    if op == "HardSigmoid":
        return y.mul_(p.get("alpha", 0.2)).add_(p.get("beta", 0.5)).clamp_(0.0, 1.0)
    if op == "HardSwish":
        return F.hardswish(y, inplace=True)
    if op == "Tanh":
        return y.tanh_()
    if op == "Swish":
        return F.silu(y, inplace=True)
    raise ValueError(f"unknown activation {op}")


def onednn_attr(act: Activation | None) -> tuple[str, list[Any]] | None:
    """oneDNN post-op (attr, scalars) for `act`, or None when it must be applied afterwards."""
    if act is None:
        return "none", []
    op, p = act.op, act.params
    simple = {
        "Relu": "relu",
        "Sigmoid": "sigmoid",
        "Tanh": "tanh",
        "HardSwish": "hardswish",
        "Swish": "swish",
    }
    if op in simple:
        return simple[op], []
    if op == "LeakyRelu":
        return "leaky_relu", [float(p.get("alpha", 0.01))]
    if op == "Clip":
        lo, hi = float(p.get("min", -math.inf)), float(p.get("max", math.inf))
        if lo == 0.0 and hi == math.inf:
            return "relu", []
        if math.isfinite(lo) and math.isfinite(hi):
            return "hardtanh", [lo, hi]
    return None


def conv_geometry(node: Node, graph: Graph) -> dict[str, Any]:
    """conv_params plus what torch calls need: symmetric padding, or a pre-pad tuple for F.pad."""
    cp = conv_params(node, graph)
    t, l, b, r = cp["pads"]
    cp["symmetric"] = t == b and l == r
    cp["torch_pad"] = [t, l] if cp["symmetric"] else [0, 0]
    cp["pre_pad"] = None if cp["symmetric"] else (l, r, t, b)
    cp["padded_shape"] = [cp["n"], cp["c"], cp["h"] + t + b, cp["w"] + l + r]
    return cp


def conv_tensors(node: Node, graph: Graph) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weight and bias of a Conv/Gemm as fp32 torch tensors (copies: the graph keeps its arrays)."""
    w = torch.from_numpy(np.ascontiguousarray(graph.initializers[node.inputs[1]], dtype=np.float32)).clone()
    b = None
    if len(node.inputs) > 2 and node.inputs[2]:
        b = torch.from_numpy(
            np.ascontiguousarray(graph.initializers[node.inputs[2]], dtype=np.float32)
        ).clone()
    return w, b


def nbytes(*ts: torch.Tensor | None) -> int:
    return sum(t.numel() * t.element_size() for t in ts if t is not None)


def nhwc_out(y: torch.Tensor) -> np.ndarray:
    """A channels_last NCHW tensor as a contiguous NHWC numpy array (zero-copy when possible)."""
    a = y.permute(0, 2, 3, 1)
    return a.numpy() if a.is_contiguous() else a.contiguous().numpy()


def torch_input(x: np.ndarray, nhwc: bool, pre: list[int] | None) -> torch.Tensor:
    """The kernel's numpy input as the NCHW-indexed tensor torch's conv takes (a channels-last view for
    NHWC arrays), with the asymmetric part of the padding applied first."""
    t = torch.from_numpy(x)
    if nhwc:
        t = t.permute(0, 3, 1, 2)
    return F.pad(t, pre) if pre is not None else t


def pointwise_kernel(node: Node, graph: Graph, conv: Callable[..., torch.Tensor], nhwc: bool = False,
                     **sizes: int) -> Kernel:
    """The run the oneDNN pointwise convolutions share (fp32 prepacked, fp16w, bf16): the input as torch takes
    it (asymmetric padding first), `conv(t, pad, strides, dilations, groups, attr, scalars)` computing the conv
    with the activation oneDNN fuses, any other activation after, fp32 NCHW (or NHWC) numpy out; `sizes`: the
    kernel's weight/workspace bytes."""
    cp = conv_geometry(node, graph)
    geometry = (cp["torch_pad"], list(cp["strides"]), list(cp["dilations"]), cp["group"])
    fused = onednn_attr(node.activation)
    attr, scalars = fused if fused else ("none", [])
    after = None if fused else node.activation
    pre = cp["pre_pad"]

    def run(x: np.ndarray) -> list[Any]:
        with torch.inference_mode():
            y = conv(torch_input(x, nhwc, pre), *geometry, attr, scalars)
            if after is not None:
                torch_activation(y, after)
            return [nhwc_out(y) if nhwc else y.contiguous().numpy()]

    return FunctionKernel(run, **sizes)


def symmetric_pads(node: Node) -> bool:
    """Top equals bottom and left equals right: what kernels without a separate padding step need."""
    t, l, b, r = node.attr("pads", (0, 0, 0, 0))
    return t == b and l == r


def _conv_supported(node: Node, graph: Graph) -> str | None:
    if len(graph.shape(node.inputs[0])) != 4:
        return "only 2-D convolution (4-D input)"
    if (
        any(i in graph.initializers for i in graph.dynamic_inputs(node))
        or node.inputs[1] not in graph.initializers
    ):
        return "weights must be constant"
    if len(node.inputs) > 2 and node.inputs[2] and node.inputs[2] not in graph.initializers:
        return "bias must be constant"
    return None


# ---- oneDNN -----------------------------------------------------------------------------------


class _TorchConv(Primitive):
    library = "torch"
    op_types = CONV

    def supports(self, node: Node, graph: Graph) -> str | None:
        return _conv_supported(node, graph)


class OneDNNConv(_TorchConv):
    """oneDNN conv with prepacked weights; NCHW or NHWC numpy in/out."""

    def __init__(self, layout: str = "NCHW") -> None:
        self.layout = layout
        self.name = "conv.onednn.torch" if layout == "NCHW" else "conv.onednn_nhwc.torch"

    def available(self) -> str | None:
        if not torch.backends.mkldnn.is_available():
            return "torch built without oneDNN"
        return (
            None
            if _POINTWISE is not None and _REORDER is not None
            else "torch.ops.mkldnn pointwise conv missing"
        )

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        cp = conv_geometry(node, ctx.graph)
        w, b = conv_tensors(node, ctx.graph)
        with torch.inference_mode():
            wr = _REORDER(w, cp["torch_pad"], list(cp["strides"]), list(cp["dilations"]), cp["group"],
                          cp["padded_shape"])
        return pointwise_kernel(node, ctx.graph, lambda t, *geometry: _POINTWISE(t, wr, b, *geometry, None),
                                nhwc=self.layout == "NHWC", weight_bytes=nbytes(w, b))


class OneDNNBlockedConv(_TorchConv):
    """oneDNN conv on oneDNN-blocked (mkldnn) tensors: no reorders at all when neighbours stay blocked."""

    name = "conv.onednn_blocked.torch"
    layout = "BLOCKED"
    _NATIVE_ACTS = {"Relu": torch.relu_, "Sigmoid": torch.sigmoid_, "Tanh": torch.tanh_}

    def available(self) -> str | None:
        return None if torch.backends.mkldnn.is_available() else "torch built without oneDNN"

    def supports(self, node: Node, graph: Graph) -> str | None:
        reason = super().supports(node, graph)
        if reason:
            return reason
        return None if symmetric_pads(node) else "asymmetric pads (blocked tensors cannot be padded cheaply)"

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        cp = conv_geometry(node, ctx.graph)
        w, b = conv_tensors(node, ctx.graph)
        pad, st, dil, g = cp["torch_pad"], list(cp["strides"]), list(cp["dilations"]), cp["group"]
        with torch.inference_mode():
            wm = torch._C._nn.mkldnn_reorder_conv2d_weight(w.to_mkldnn(), pad, st, dil, g)
        act = node.activation
        native = self._NATIVE_ACTS.get(act.op) if act is not None else None
        if act is not None and act.op == "Clip" and onednn_attr(act) == ("relu", []):
            native = torch.relu_

        def run(x: torch.Tensor) -> list[Any]:
            with torch.inference_mode():
                y = torch.mkldnn_convolution(x, wm, b, pad, st, dil, g)
                if native is not None:
                    native(y)
                elif act is not None:  # not supported on mkldnn tensors: round-trip through dense
                    y = torch_activation(y.to_dense(), act).to_mkldnn()
                return [y]

        return FunctionKernel(run, weight_bytes=nbytes(w, b))


class OneDNNFp16wConv(_TorchConv):
    """oneDNN conv with weights stored in fp16 (half the weight memory), cast to fp32 per call."""

    name = "conv.onednn.torch.fp16w"
    precision = "fp16w"
    tolerance = 1e-2

    def available(self) -> str | None:
        return None if _POINTWISE is not None else "torch.ops.mkldnn pointwise conv missing"

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        w, b = conv_tensors(node, ctx.graph)
        w16 = w.half()
        return pointwise_kernel(node, ctx.graph, lambda t, *geometry: _POINTWISE(t, w16.float(), b, *geometry, None),
                                weight_bytes=nbytes(w16, b), workspace_bytes=nbytes(w))


# ---- bf16 (what torch.autocast does on CPU: bf16 inputs and weights, oneDNN's AMX/AVX512-BF16 kernels) ----


def bf16_unavailable() -> str | None:
    """Why torch cannot compute in bf16 natively here (None: it can: AVX512-BF16/AMX, or Arm BF16)."""
    supported = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    if _POINTWISE is None or supported is None:
        return "torch.ops.mkldnn bf16 convolution missing"
    return None if supported() else "no native bf16 on this CPU (oneDNN would emulate it: slower than fp32)"


class OneDNNBf16Conv(_TorchConv):
    """oneDNN conv computing in bf16 (weights stored bf16: half the memory; the input cast per call, the output
    cast back to fp32), as torch.autocast(dtype=bfloat16) runs a conv. On a CPU with AMX it measured ~2x faster
    than fp32 on a 64-channel 3x3 layer; its numerics change (8-bit mantissa), so it is a precision of its own,
    chosen only where a precision is allowed (and, with --data, under the accuracy budget)."""

    name = "conv.onednn.torch.bf16"
    precision = "bf16"
    tolerance = 3e-2

    def available(self) -> str | None:
        return bf16_unavailable()

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        w, b = conv_tensors(node, ctx.graph)
        wb, bb = w.bfloat16(), (b.bfloat16() if b is not None else None)
        return pointwise_kernel(
            node, ctx.graph, lambda t, *geometry: _POINTWISE(t.bfloat16(), wb, bb, *geometry, None).float(),
            weight_bytes=nbytes(wb, bb))


# ---- native (Slow2d / MKL GEMM) ---------------------------------------------------------------


class NativeConv(_TorchConv):
    """ATen's own convolution with oneDNN switched off for the call (im2col + MKL GEMM)."""

    def __init__(self, layout: str = "NCHW") -> None:
        self.layout = layout
        self.name = "conv.native.torch" if layout == "NCHW" else "conv.native_nhwc.torch"

    def supports(self, node: Node, graph: Graph) -> str | None:
        reason = super().supports(node, graph)
        if reason:
            return reason
        if self.layout == "NHWC" and int(node.attr("group", 1)) > 1:
            return "grouped/depthwise conv in NHWC is pathological in Slow2d (~50x slower)"
        return None

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        cp = conv_geometry(node, ctx.graph)
        w, b = conv_tensors(node, ctx.graph)
        nhwc = self.layout == "NHWC"
        if nhwc:
            w = w.contiguous(memory_format=torch.channels_last)
        pad, st, dil, g = cp["torch_pad"], cp["strides"], cp["dilations"], cp["group"]
        act, pre = node.activation, cp["pre_pad"]
        get_flag, set_flag = torch._C._get_mkldnn_enabled, torch._C._set_mkldnn_enabled

        def run(x: np.ndarray) -> list[Any]:
            with torch.inference_mode():
                t = torch_input(x, nhwc, pre)
                was = get_flag()
                set_flag(False)
                try:
                    y = F.conv2d(t, w, b, st, pad, dil, g)
                finally:
                    set_flag(was)
                torch_activation(y, act)
                return [nhwc_out(y) if nhwc else y.contiguous().numpy()]

        return FunctionKernel(run, weight_bytes=nbytes(w, b))


# ---- NNPACK ---------------------------------------------------------------------------------


class NNPACKConv(_TorchConv):
    """NNPACK (Winograd/FFT inside) via its direct ATen entry: torch never picks it at batch 1."""

    name = "conv.nnpack.torch"
    measure_last = True  # rarely competitive on x86: timed after the others

    def available(self) -> str | None:
        return None if torch._nnpack_available() else "torch built without NNPACK"

    def supports(self, node: Node, graph: Graph) -> str | None:
        reason = super().supports(node, graph)
        if reason:
            return reason
        if tuple(node.attr("strides", (1, 1))) != (1, 1):
            return "NNPACK inference path needs stride 1"
        if tuple(node.attr("dilations", (1, 1))) != (1, 1):
            return "NNPACK has no dilation"
        if int(node.attr("group", 1)) != 1:
            return "NNPACK has no grouped/depthwise conv"
        return None if symmetric_pads(node) else "NNPACK takes symmetric pads only"

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        cp = conv_geometry(node, ctx.graph)
        w, b = conv_tensors(node, ctx.graph)
        if b is None:
            b = torch.zeros(w.shape[0])
        pad, act = cp["torch_pad"], node.activation
        fn = torch._nnpack_spatial_convolution

        def run(x: np.ndarray) -> list[Any]:
            with torch.inference_mode():
                y = fn(torch.from_numpy(x), w, b, pad)
                torch_activation(y, act)
                return [y.contiguous().numpy()]

        return FunctionKernel(run, weight_bytes=nbytes(w, b))


# ---- Gemm / MatMul ------------------------------------------------------------------------------


def gemm_weights(node: Node, graph: Graph) -> tuple[np.ndarray, np.ndarray | None] | str:
    """(W as (N, K) for y = x @ W.T + bias, bias) folded from Gemm/MatMul attrs, or a reason."""
    dyn = graph.dynamic_inputs(node)
    if len(dyn) != 1 or node.inputs[0] != dyn[0]:
        return "needs exactly one dynamic input (A) and constant B"
    b = graph.initializers.get(node.inputs[1])
    if b is None or b.ndim != 2:
        return "B must be a constant 2-D matrix"
    b = b.astype(np.float32)
    if node.op == "MatMul":
        return np.ascontiguousarray(b.T), None
    if node.attr("transA", 0):
        return "transA=1 not supported"
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    w = b if node.attr("transB", 0) else b.T
    w = np.ascontiguousarray(w * np.float32(alpha), dtype=np.float32)
    bias = None
    if len(node.inputs) > 2 and node.inputs[2]:
        c = graph.initializers.get(node.inputs[2])
        if c is None:
            return "C must be constant"
        out = graph.shape(node.outputs[0])
        if c.size not in (1, out[-1]) or (c.ndim == 2 and c.shape[0] != 1):
            return "C must broadcast along rows"
        bias = np.array(np.broadcast_to(c.reshape(-1) * np.float32(beta), (out[-1],)), dtype=np.float32)
    return w, bias


class TorchGemm(Primitive):
    """Gemm / MatMul with a constant weight as F.linear (MKL sgemm)."""

    name = "gemm.torch"
    library = "torch"
    op_types = frozenset({"Gemm", "MatMul"})

    def supports(self, node: Node, graph: Graph) -> str | None:
        r = gemm_weights(node, graph)
        if isinstance(r, str):
            return r
        if len(graph.shape(node.inputs[0])) < 2:
            return "A must be at least 2-D"
        return None

    compute: torch.dtype = torch.float32  # what the weights are held and the product computed in

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        r = gemm_weights(node, ctx.graph)
        assert not isinstance(r, str), r
        dtype = self.compute
        w = torch.from_numpy(r[0]).to(dtype)
        bias = torch.from_numpy(r[1]).to(dtype) if r[1] is not None else None
        act = node.activation

        def run(x: np.ndarray) -> list[Any]:
            with torch.inference_mode():
                y = F.linear(torch.from_numpy(x).to(dtype), w, bias).float()  # .to/.float: no-ops in fp32
                torch_activation(y, act)
                return [y.numpy()]

        return FunctionKernel(run, weight_bytes=nbytes(w, bias))


class TorchBf16Gemm(TorchGemm):
    """Gemm / MatMul in bf16 (weights stored bf16, input cast per call, output cast back), as autocast runs it."""

    name = "gemm.torch.bf16"
    precision = "bf16"
    tolerance = 3e-2
    compute = torch.bfloat16

    def available(self) -> str | None:
        return bf16_unavailable()


PRIMITIVES = [
    OneDNNConv("NCHW"),
    OneDNNConv("NHWC"),
    OneDNNBlockedConv(),
    OneDNNFp16wConv(),
    OneDNNBf16Conv(),
    NativeConv("NCHW"),
    NativeConv("NHWC"),
    NNPACKConv(),
    TorchGemm(),
    TorchBf16Gemm(),
]
