"""Winograd F(2x2,3x3) and F(4x4,3x3) convolution in NumPy (Lavin & Gray 2016).

Why: for 3x3 stride-1 layers Winograd needs 2.25x (F2) / 4x (F4) fewer multiplications than direct or
im2col convolution; the transform-domain product is one batched sgemm (a*a, Co, C) @ (a*a, C, tiles).
Weights are transformed once at prepare (in float64, then stored as float32). Any padding, symmetric or
not, is handled by the zero-bordered input buffer; output sizes that are not multiples of the tile are
handled by extending the tile grid with zeros and cropping. Grouped and depthwise convolutions are
declined (a depthwise Winograd is an elementwise product that measured slower than shift-and-add).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetune.graph.ir import Node
from edgetune.kernels.base import FunctionKernel, Kernel, PrepareContext, conv_params
from edgetune.kernels.libraries.numpy.conv import NumpyConv, PaddedBuffer, conv_weights, finish

# Transform matrices: Y = A^T [(G g G^T) * (B^T d B)] A.
_F2 = {
    "BT": [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    "G": [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
    "AT": [[1, 1, 1, 0], [0, 1, -1, -1]],
}
_F4 = {
    "BT": [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    "G": [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    "AT": [
        [1, 1, 1, 1, 1, 0],
        [0, 1, -1, 2, -2, 0],
        [0, 1, 1, 4, 4, 0],
        [0, 1, -1, 8, -8, 1],
    ],
}


class WinogradConv(NumpyConv):
    """F(m x m, 3x3) for m in {2, 4}: 3x3, stride 1, dilation 1, group 1, any padding."""

    measure_last = True  # NumPy transforms make it rarely competitive: timed after the others

    def __init__(self, m: int) -> None:
        self.m = m
        self.mats = {k: np.array(v, np.float64) for k, v in (_F2 if m == 2 else _F4).items()}
        self.name = f"conv.winograd_f{m}.numpy"
        self.tolerance = 1e-4 if m == 2 else 5e-4

    def restrict(self, cp: dict[str, Any]) -> str | None:
        if (cp["kh"], cp["kw"]) != (3, 3):
            return f"kernel_shape {cp['kh']}x{cp['kw']}: Winograd F({self.m},3) needs 3x3"
        if cp["strides"] != (1, 1):
            return f"strides {list(cp['strides'])}: Winograd needs stride 1"
        if cp["dilations"] != (1, 1):
            return f"dilations {list(cp['dilations'])}: Winograd needs dilation 1"
        if cp["group"] != 1:
            kind = "depthwise" if cp["depthwise"] else "grouped"
            return f"group {cp['group']} ({kind}): Winograd here supports group 1 only"
        return None

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        cp = conv_params(node, ctx.graph)
        w, bias = conv_weights(node, ctx.graph)
        m, a = self.m, self.m + 2
        n, c, co, oh, ow = cp["n"], cp["c"], cp["co"], cp["oh"], cp["ow"]
        th, tw = -(-oh // m), -(-ow // m)
        bt = self.mats["BT"].astype(np.float32)
        b = np.ascontiguousarray(bt.T)
        at = self.mats["AT"].astype(np.float32)
        gm = self.mats["G"]
        # U[k, l, o, c] = (G w[o, c] G^T)[k, l], stored as (a*a, Co, C) for the batched GEMM.
        u = np.einsum("ki,ocij,lj->kloc", gm, w.astype(np.float64), gm)
        u = np.ascontiguousarray(u.reshape(a * a, co, c), dtype=np.float32)
        # Extend bottom/right padding so the tile grid (th*m + 2 rows) is fully inside the buffer.
        t, l = cp["pads"][:2]
        hp, wp = th * m + 2, tw * m + 2
        pads = (t, l, hp - cp["h"] - t, wp - cp["w"] - l)
        pad = PaddedBuffer((n, c, cp["h"], cp["w"]), pads)
        scratch = ctx.workspace.request(pad.spec)
        windows = np.lib.stride_tricks.sliding_window_view

        def run(x: np.ndarray) -> list[Any]:
            xp = pad(x, scratch.arrays()[0])
            d = windows(xp, (a, a), axis=(2, 3))[:, :, ::m, ::m]  # (N, C, th, tw, a, a) view
            v = np.tensordot(bt, np.tensordot(d, b, axes=([5], [0])), axes=([1], [4]))  # (a,N,C,th,tw,a)
            v = np.ascontiguousarray(v.transpose(0, 5, 2, 1, 3, 4)).reshape(a * a, c, n * th * tw)
            mm = np.matmul(u, v).reshape(a, a, co, n, th, tw)
            y = np.tensordot(np.tensordot(at, mm, axes=([1], [0])), at, axes=([1], [1]))  # (m,Co,N,th,tw,m)
            y = y.transpose(2, 1, 3, 0, 4, 5).reshape(n, co, th * m, tw * m)
            y = np.ascontiguousarray(y[:, :, :oh, :ow])
            return [finish(y, bias, node)]

        tiles = n * th * tw
        transforms = 4 * (a * a * (c + co) * tiles)  # allocated by each call (NumPy temporaries)
        return FunctionKernel(
            run, weight_bytes=u.nbytes + (bias.nbytes if bias is not None else 0), workspace_bytes=transforms,
            scratch=scratch,
        )


PRIMITIVES = [WinogradConv(2), WinogradConv(4)]
