"""Graph rewrites: identity removal, BatchNorm folding, activation fusion.

Why: each removed node is one less kernel call and one less activation tensor; folding BN into the
preceding weights and fusing the activation into its producer are exact rewrites every primitive
benefits from. No pass changes what the graph computes or the names of its inputs and outputs.
"""

from __future__ import annotations

import numpy as np

from edgetune.graph.ir import Activation, Graph, Node

ACTIVATION_OPS: frozenset[str] = frozenset(
    {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh"})
FUSION_HOSTS: frozenset[str] = frozenset({"Conv", "Gemm", "MatMul", "Add"})
_ACT_PARAMS = {"Clip": ("min", "max"), "LeakyRelu": ("alpha",), "HardSigmoid": ("alpha", "beta")}


def _new_initializer(graph: Graph, base: str, arr: np.ndarray) -> str:
    """Store `arr` under a fresh name (weights may be shared, so never overwrite in place)."""
    name, k = base, 1
    while name in graph.initializers or name in graph.values:
        name, k = f"{base}_{k}", k + 1
    graph.initializers[name] = arr
    return name


def _is_noop(graph: Graph, node: Node) -> bool:
    if node.op in ("Identity", "Dropout"):
        return True
    if node.op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze") and node.inputs[0] in graph.values:
        try:
            return graph.shape(node.inputs[0]) == graph.shape(node.outputs[0])
        except KeyError:
            return False
    if node.op == "Transpose":
        perm = node.attr("perm")
        return perm is not None and list(perm) == sorted(perm)
    return False


def _bypass(graph: Graph, node: Node) -> bool:
    """Remove a node whose output equals its input, keeping graph input/output names intact."""
    src, dst = node.inputs[0], node.outputs[0]
    if dst in graph.outputs:
        prod = graph.producer(src)
        if prod is None or src in graph.outputs:  # src is a graph input or a constant: keep the node
            return False
        prod.outputs = [dst if o == src else o for o in prod.outputs]
        graph.rename_value(src, dst)
        graph.values.pop(src, None)
    else:
        graph.rename_value(dst, src)
        graph.values.pop(dst, None)
    graph.nodes.remove(node)
    return True


def remove_identities(graph: Graph, only_identity: bool = False) -> int:
    """Drop Identity, Dropout and (unless `only_identity`) shape-preserving Reshape/Flatten/Squeeze/
    Unsqueeze/Transpose nodes."""
    removed = 0
    for node in list(graph.nodes):
        if only_identity and node.op not in ("Identity", "Dropout"):
            continue
        if _is_noop(graph, node) and _bypass(graph, node):
            removed += 1
    return removed


def _sole_consumer_producer(graph: Graph, value: str, n_consumers: int = 1) -> Node | None:
    """The producer of `value` if it is a node, has one output, and `value` is read by exactly
    `n_consumers` nodes and is not a graph output."""
    prod = graph.producer(value)
    if prod is None or len(prod.outputs) != 1 or value in graph.outputs:
        return None
    return prod if len(graph.consumers(value)) == n_consumers else None


def _bn_scale_shift(graph: Graph, bn: Node) -> tuple[np.ndarray, np.ndarray] | None:
    params = [graph.initializers.get(i) for i in bn.inputs[1:5]]
    if len(params) != 4 or any(p is None for p in params):
        return None
    scale, bias, mean, var = (np.asarray(p, np.float64) for p in params)
    s = scale / np.sqrt(var + float(bn.attr("epsilon", 1e-5)))
    return s, bias - mean * s


def _fold_into(graph: Graph, prod: Node, s: np.ndarray, t: np.ndarray) -> bool:
    """Rewrite prod so that it computes BN(prod(x)) (per-channel y*s + t); False when not possible."""
    w = graph.initializers.get(prod.inputs[1]) if len(prod.inputs) > 1 else None
    if w is None or not np.issubdtype(w.dtype, np.floating):
        return False
    dt = w.dtype
    if prod.op == "Conv":
        b = graph.initializers.get(prod.inputs[2]) if len(prod.inputs) > 2 and prod.inputs[2] else None
        if len(prod.inputs) > 2 and prod.inputs[2] and b is None:
            return False
        b = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
        new_w = (w * s.reshape(-1, 1, 1, 1)).astype(dt)
        new_b = (b * s + t).astype(dt)
    elif prod.op == "Gemm":
        alpha, beta = float(prod.attr("alpha", 1.0)), float(prod.attr("beta", 1.0))
        c = graph.initializers.get(prod.inputs[2]) if len(prod.inputs) > 2 and prod.inputs[2] else None
        if len(prod.inputs) > 2 and prod.inputs[2] and c is None:
            return False
        scale = s.reshape(-1, 1) if prod.attr("transB", 0) else s.reshape(1, -1)
        new_w = (w * scale * alpha).astype(dt)
        new_b = (t if c is None else beta * c.astype(np.float64) * s + t).astype(dt)
        prod.attrs.update(alpha=1.0, beta=1.0)
    elif prod.op == "MatMul":
        if w.ndim != 2 or len(graph.shape(prod.inputs[0])) != 2:
            return False
        new_w = (w * s.reshape(1, -1)).astype(dt)
        new_b = t.astype(dt)
        prod.op = "Gemm"
        prod.attrs = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}
    else:
        return False
    prod.inputs = [prod.inputs[0], _new_initializer(graph, f"{prod.name}_W_bn", new_w),
                   _new_initializer(graph, f"{prod.name}_B_bn", new_b)]
    return True


def fold_batchnorm(graph: Graph) -> int:
    """Fold BatchNormalization into a preceding Conv / Gemm / constant-weight MatMul whose output only
    the BN reads; a BN that cannot be folded stays."""
    folded = 0
    for bn in [n for n in graph.nodes if n.op == "BatchNormalization"]:
        x = bn.inputs[0]
        prod = _sole_consumer_producer(graph, x)
        if prod is None or prod.activation is not None or prod.op not in ("Conv", "Gemm", "MatMul"):
            continue
        out_shape = graph.shape(x)
        if prod.op != "Conv" and len(out_shape) != 2:
            continue
        st = _bn_scale_shift(graph, bn)
        if st is None or not _fold_into(graph, prod, *st):
            continue
        prod.outputs = [bn.outputs[0]]
        graph.values.pop(x, None)
        graph.nodes.remove(bn)
        folded += 1
    graph.remove_unused()
    return folded


def _activation(node: Node) -> Activation:
    keys = _ACT_PARAMS.get(node.op, ())
    return Activation(node.op, {k: float(node.attrs[k]) for k in keys if k in node.attrs})


def _fuse(graph: Graph, host: Node, act: Activation, out: str, dead: list[Node]) -> None:
    for v in host.outputs:
        graph.values.pop(v, None)
    for d in dead:
        for v in d.outputs:
            if v != out:
                graph.values.pop(v, None)
        graph.nodes.remove(d)
    host.activation = act
    host.outputs = [out]


def _fuse_swish(graph: Graph) -> int:
    fused = 0
    for sig in [n for n in graph.nodes if n.op == "Sigmoid"]:
        a, s = sig.inputs[0], sig.outputs[0]
        cons = graph.consumers(s)
        if len(cons) != 1 or s in graph.outputs:
            continue
        mul = cons[0]
        if mul.op != "Mul" or sorted(mul.inputs) != sorted([a, s]):
            continue
        host = _sole_consumer_producer(graph, a, 2)
        if host is None or host.op not in FUSION_HOSTS or host.activation is not None:
            continue
        _fuse(graph, host, Activation("Swish"), mul.outputs[0], [sig, mul])
        fused += 1
    return fused


def fuse_activations(graph: Graph) -> int:
    """Fuse an activation (and the x*sigmoid(x) Swish pattern) into the Conv/Gemm/MatMul/Add that
    produces its input, when nothing else reads that input."""
    fused = _fuse_swish(graph)
    for act in [n for n in graph.nodes if n.op in ACTIVATION_OPS]:
        host = _sole_consumer_producer(graph, act.inputs[0])
        if host is None or host.op not in FUSION_HOSTS or host.activation is not None:
            continue
        _fuse(graph, host, _activation(act), act.outputs[0], [act])
        fused += 1
    return fused


def fuse_pad_into_conv(graph: Graph) -> int:
    """Merge a zero-valued constant Pad of H/W into the pads of the Conv that alone reads it (exporters
    write TF-style 'same' padding as a separate Pad: one less kernel call and activation copy)."""
    fused = 0
    for pad in [n for n in graph.nodes if n.op == "Pad"]:
        p = [int(v) for v in pad.attr("pads", [])]
        if pad.attr("mode", "constant") != "constant" or float(pad.attr("value", 0.0)) != 0.0 or len(p) != 8 \
                or any(v < 0 for v in p) or p[0] or p[1] or p[4] or p[5]:
            continue
        y = pad.outputs[0]
        cons = graph.consumers(y)
        if y in graph.outputs or len(cons) != 1 or cons[0].op != "Conv" or cons[0].inputs[0] != y:
            continue
        conv = cons[0]
        cp = conv.attr("pads", [0, 0, 0, 0])
        conv.attrs["pads"] = [cp[0] + p[2], cp[1] + p[3], cp[2] + p[6], cp[3] + p[7]]
        conv.inputs[0] = pad.inputs[0]
        graph.values.pop(y, None)
        graph.nodes.remove(pad)
        fused += 1
    return fused


def optimize(graph: Graph) -> Graph:
    """All passes, in the order that lets each enable the next; returns the (mutated) graph."""
    remove_identities(graph)
    fuse_pad_into_conv(graph)
    fold_batchnorm(graph)
    fuse_activations(graph)
    graph.remove_unused()
    return graph
