"""int8 convolution through torch's quantized engines (x86, fbgemm, onednn, qnnpack), fp32 in/out.

Why each engine is its own primitive: they differ in speed and, on AVX2, in correctness (full-range
uint8 activations with int8 weights saturate `vpmaddubsw` in onednn). Weights are quantised per
channel and prepacked once (the functional API re-packs per call, +0.1-1.5 ms). Activation scales
come from `ctx.samples`; the output scale from the fp32 conv on the same samples. Verification, not
this module, decides whether an engine is accurate enough on this CPU.
"""

from __future__ import annotations

import platform
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from edgetune.graph.ir import Graph, Node
from edgetune.kernels import int8_calib as cal
from edgetune.kernels.base import FunctionKernel, Kernel, PrepareContext, Primitive
from edgetune.kernels.libraries.torch.conv import (
    CONV,
    _conv_supported,
    conv_geometry,
    conv_tensors,
    torch_activation,
)

# torch warns (once) at quantized-tensor creation; the route is known to be deprecated (see docstring).
warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization.*deprecated.*")


# FBGEMM (and the "x86" engine built on it) are x86 kernels.
X86_ONLY_ENGINES = frozenset({"x86", "fbgemm"})


class TorchInt8Conv(Primitive):
    """Quantize -> prepacked quantized conv (ReLU fused when the activation allows) -> dequantize."""

    library = "torch-int8"
    op_types = CONV
    precision = "int8"
    tolerance = 0.05

    def __init__(self, engine: str, reduce_range: bool, suffix: str = "") -> None:
        self.engine = engine
        self.reduce_range = reduce_range
        self.name = f"conv.int8_{engine}{suffix}.torch"
        self.measure_last = engine == "qnnpack"  # the mobile engine is slow on x86: timed after the others

    def available(self) -> str | None:
        if self.engine not in torch.backends.quantized.supported_engines:
            return f"quantized engine {self.engine} not compiled into torch"
        if self.engine in X86_ONLY_ENGINES and platform.machine().lower() not in ("x86_64", "amd64", "i686"):
            # torch 2.13.0's aarch64 wheel lists them, and they fail ("unknown architecure") or compute garbage
            return f"quantized engine {self.engine} runs on x86 CPUs only (this is {platform.machine()})"
        return None

    def supports(self, node: Node, graph: Graph) -> str | None:
        return _conv_supported(node, graph)

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        g = ctx.graph
        cp = conv_geometry(node, g)
        w, b = conv_tensors(node, g)
        pad, st, dil, grp = cp["torch_pad"], cp["strides"], cp["dilations"], cp["group"]
        pre, act = cp["pre_pad"], node.activation
        fuse_relu = cal.relu_like(act)
        x_in = cal.input_sample(ctx, node.inputs[0], g.shape(node.inputs[0]))
        x_scale, x_zp = cal.act_qparams(x_in, 127 if self.reduce_range else 255)
        with torch.inference_mode():
            xs = torch.from_numpy(x_in)
            if pre is not None:
                xs = F.pad(xs, pre)
            y_ref = F.conv2d(xs, w, b, st, pad, dil, grp)
            if fuse_relu:
                torch_activation(y_ref, act)
        y_scale, y_zp = cal.act_qparams(y_ref.numpy(), 255)
        scales = cal.weight_scales(w.numpy())
        engine = self.engine
        torch.backends.quantized.engine = engine
        with torch.inference_mode(), warnings.catch_warnings():
            # torch warns once per process, at the first quantized tensor: make that one here, silenced
            warnings.simplefilter("ignore")
            wq = torch.quantize_per_channel(
                w, torch.from_numpy(scales), torch.zeros(len(scales), dtype=torch.long), 0, torch.qint8
            )
            packed = torch.ops.quantized.conv2d_prepack(wq, b, list(st), list(pad), list(dil), grp)
        conv = torch.ops.quantized.conv2d_relu if fuse_relu else torch.ops.quantized.conv2d
        after = act if (act is not None and not (fuse_relu and act.op == "Relu")) else None
        qb = torch.backends.quantized
        quant, quint8 = torch.quantize_per_tensor, torch.quint8

        def run(x: np.ndarray) -> list[Any]:
            with torch.inference_mode():
                qb.engine = engine  # 0.6 us; packed params are engine-specific
                t = torch.from_numpy(x)
                if pre is not None:
                    t = F.pad(t, pre)
                y = conv(quant(t, x_scale, x_zp, quint8), packed, y_scale, y_zp).dequantize()
                if after is not None:
                    torch_activation(y, after)
                return [y.contiguous().numpy()]

        weight_bytes = wq.numel() + (b.numel() * 4 if b is not None else 0) + len(scales) * 4
        return FunctionKernel(run, weight_bytes=weight_bytes)


PRIMITIVES = [
    TorchInt8Conv("x86", reduce_range=True),
    TorchInt8Conv("fbgemm", reduce_range=True),
    TorchInt8Conv("onednn", reduce_range=True),
    TorchInt8Conv("onednn", reduce_range=False, suffix="_fullrange"),
    TorchInt8Conv("qnnpack", reduce_range=False),
]
