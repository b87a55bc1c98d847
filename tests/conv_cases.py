"""Shared fixtures of the kernel tests: a float64 direct convolution (the ground truth), reference
activations, and one-Conv graphs with random weights."""

import numpy as np

from edgetune.graph.ir import Graph, Node, Value


def ref_conv(x, w, b, strides, pads, dil, group):
    """Direct float64 convolution (the ground truth for every kernel here)."""
    t, l, bo, r = pads
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (t, bo), (l, r)))
    n, _, h, wd = x.shape
    co, cg, kh, kw = w.shape
    oh = (h - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd - dil[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.zeros((n, co, oh, ow))
    og = co // group
    for g in range(group):
        xg, wg = x[:, g * cg : (g + 1) * cg], w[g * og : (g + 1) * og].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                hi, wj = i * dil[0], j * dil[1]
                patch = xg[
                    :,
                    :,
                    hi : hi + strides[0] * (oh - 1) + 1 : strides[0],
                    wj : wj + strides[1] * (ow - 1) + 1 : strides[1],
                ]
                out[:, g * og : (g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg[:, :, i, j])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def ref_act(y, act):
    if act is None:
        return y
    p = act.params
    return {
        "Relu": lambda: np.maximum(y, 0),
        "Clip": lambda: np.clip(y, p.get("min", -np.inf), p.get("max", np.inf)),
        "LeakyRelu": lambda: np.where(y >= 0, y, y * p.get("alpha", 0.01)),
        "Sigmoid": lambda: 1 / (1 + np.exp(-y)),
        "HardSigmoid": lambda: np.clip(y * p.get("alpha", 0.2) + p.get("beta", 0.5), 0, 1),
        "HardSwish": lambda: y * np.clip(y / 6 + 0.5, 0, 1),
        "Tanh": lambda: np.tanh(y),
        "Swish": lambda: y / (1 + np.exp(-y)),
    }[act.op]()


def conv_case(n, c, h, w, co, k, stride=1, pads=None, group=1, dil=1, bias=True, act=None, seed=0, relu_input=False):
    """(graph, node, x, reference output) for one Conv layer with random weights."""
    rng = np.random.default_rng(seed)
    pads = list(pads) if pads is not None else [k // 2 * dil] * 4
    wt = (rng.standard_normal((co, c // group, k, k)) / np.sqrt(c // group * k * k)).astype(np.float32)
    bt = rng.standard_normal(co).astype(np.float32) * 0.1 if bias else None
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    if relu_input:  # non-negative, like activations after a ReLU (what int8 paths are calibrated on)
        x = np.abs(x)
    node = Node(
        "conv",
        "Conv",
        ["x", "w", "b"] if bias else ["x", "w"],
        ["y"],
        {
            "strides": [stride] * 2,
            "dilations": [dil] * 2,
            "pads": pads,
            "group": group,
            "kernel_shape": [k, k],
        },
        act,
    )
    ref = ref_act(ref_conv(x, wt, bt, (stride,) * 2, pads, (dil,) * 2, group), act)
    inits = {"w": wt} | ({"b": bt} if bias else {})
    g = Graph("t", [node], ["x"], ["y"], {"x": Value("x", x.shape), "y": Value("y", ref.shape)}, inits)
    return g, node, x, ref


def rel_err(y, ref):
    """max |y - ref| / max |ref|: the error measure every kernel test bounds."""
    return float(np.abs(y - ref).max() / np.abs(ref).max())


# Layer geometries every library's fp32 convolutions are checked on.
LAYER_CASES = {
    "3x3": dict(n=1, c=16, h=12, w=12, co=16, k=3),
    "1x1": dict(n=1, c=32, h=8, w=8, co=24, k=1),
    "depthwise": dict(n=1, c=24, h=10, w=10, co=24, k=3, group=24),
    "stride2": dict(n=1, c=8, h=13, w=13, co=16, k=3, stride=2),
    "7x7s2": dict(n=1, c=3, h=23, w=23, co=8, k=7, stride=2),
    "asym": dict(n=1, c=8, h=12, w=12, co=8, k=3, stride=2, pads=[0, 0, 1, 1]),
    "odd": dict(n=1, c=5, h=7, w=9, co=3, k=3, bias=False),
    "groups2": dict(n=1, c=8, h=9, w=9, co=12, k=3, group=2),
    "batch2": dict(n=2, c=8, h=10, w=10, co=8, k=3),
    "dilated": dict(n=1, c=8, h=12, w=12, co=8, k=3, dil=2),
}
