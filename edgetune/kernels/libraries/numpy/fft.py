"""FFT convolution with scipy.fft (pocketfft): rfft2 of the padded input, a per-frequency complex
GEMM over channels, irfft2.

Why: its cost barely grows with the kernel size, so it is the algorithm to try on large kernels; the
weight spectra are computed once at prepare. Group 1, stride 1, dilation 1 only (a strided FFT
convolution computes every output and throws most away; grouped would need one transform per group).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft as sfft

from edgetune.graph.ir import Node
from edgetune.kernels.base import FunctionKernel, Kernel, PrepareContext, conv_params
from edgetune.kernels.libraries.numpy.conv import NumpyConv, PaddedBuffer, conv_weights, finish


class FFTConv(NumpyConv):
    """Correlation as circular convolution with the flipped kernel on a next_fast_len grid >= the padded
    input: the valid outputs (index >= k-1) are then free of wrap-around."""

    name = "conv.fft.numpy"
    measure_last = True  # rarely competitive at CNN kernel sizes: timed after the others
    tolerance = 2e-4

    def restrict(self, cp: dict[str, Any]) -> str | None:
        if cp["group"] != 1:
            return f"group {cp['group']}: FFT convolution needs group 1"
        if cp["strides"] != (1, 1):
            return f"strides {list(cp['strides'])}: FFT convolution needs stride 1"
        if cp["dilations"] != (1, 1):
            return f"dilations {list(cp['dilations'])}: FFT convolution needs dilation 1"
        return None

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        cp = conv_params(node, ctx.graph)
        w, bias = conv_weights(node, ctx.graph)
        n, c, co, kh, kw, oh, ow = cp["n"], cp["c"], cp["co"], cp["kh"], cp["kw"], cp["oh"], cp["ow"]
        t, l, b, r = cp["pads"]
        lh = sfft.next_fast_len(cp["h"] + t + b, real=True)
        lw = sfft.next_fast_len(cp["w"] + l + r, real=True)
        fw = lw // 2 + 1
        workers = max(1, ctx.threads)
        wf = sfft.rfft2(w[:, :, ::-1, ::-1].astype(np.float64), s=(lh, lw))  # (Co, C, lh, fw)
        wf = np.ascontiguousarray(wf.reshape(co, c, lh * fw).transpose(2, 1, 0), dtype=np.complex64)
        pad = PaddedBuffer((n, c, cp["h"], cp["w"]), cp["pads"])
        scratch = ctx.workspace.request(pad.spec)

        def run(x: np.ndarray) -> list[Any]:
            xf = sfft.rfft2(pad(x, scratch.arrays()[0]), s=(lh, lw), workers=workers)  # (N, C, lh, fw) complex64
            xf = np.ascontiguousarray(xf.reshape(n, c, lh * fw).transpose(2, 0, 1))  # (F, N, C)
            yf = np.matmul(xf, wf)  # (F, N, Co)
            yf = np.ascontiguousarray(yf.transpose(1, 2, 0)).reshape(n, co, lh, fw)
            y = sfft.irfft2(yf, s=(lh, lw), workers=workers)[:, :, kh - 1 : kh - 1 + oh, kw - 1 : kw - 1 + ow]
            return [finish(np.ascontiguousarray(y, dtype=np.float32), bias, node)]

        spectra = lh * fw * 8 * n * (c + co)
        return FunctionKernel(
            run,
            weight_bytes=wf.nbytes + (bias.nbytes if bias is not None else 0),
            workspace_bytes=2 * spectra,  # allocated by each call (NumPy temporaries)
            scratch=scratch,
        )


PRIMITIVES = [FFTConv()]
