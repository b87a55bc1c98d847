"""Per-layer statistics: multiply-accumulates, parameters, activation bytes (for `edgetune inspect`).

Why: the size of a layer explains its cost; a table of MACs and parameters next to the measured times
shows where a model's time goes and what a primitive choice can win.

Convention: Conv, Gemm and MatMul count their multiply-accumulates exactly (no bias); pooling counts
one per window element per output; elementwise arithmetic (Add, Sub, Mul, Div, BatchNormalization)
one per output element; LRN `size` per output element; data movement and standalone activations 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetune.graph.ir import Graph, Node

_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "BatchNormalization"}


def _prod(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape)) if shape else 1


def node_macs(node: Node, graph: Graph) -> int:
    """Multiply-accumulates of one inference of the node (see the module docstring for conventions)."""
    out = graph.shape(node.outputs[0])
    op = node.op
    if op == "Conv":
        w = graph.shape(node.inputs[1])
        return _prod(out) * _prod(w[1:])
    if op == "Gemm":
        a = graph.shape(node.inputs[0])
        k = a[0] if node.attr("transA", 0) else a[1]
        return _prod(out) * k
    if op == "MatMul":
        return _prod(out) * graph.shape(node.inputs[0])[-1]
    if op in ("MaxPool", "AveragePool"):
        return _prod(out) * _prod(tuple(node.attr("kernel_shape", ())))
    if op == "GlobalAveragePool":
        return _prod(graph.shape(node.inputs[0]))
    if op in _ELEMENTWISE:
        return _prod(out)
    if op == "LRN":
        return _prod(out) * int(node.attr("size", 1))
    return 0


def node_params(node: Node, graph: Graph) -> int:
    """Number of constant weights the node reads (each distinct initializer counted once)."""
    return sum(int(graph.initializers[i].size) for i in dict.fromkeys(node.inputs) if i in graph.initializers)


def _activation_label(node: Node) -> str:
    return node.activation.op if node.activation is not None else ""


def layer_table(graph: Graph) -> list[dict[str, Any]]:
    """One row per node: name, op, input_shapes (dynamic inputs), output_shape, macs, params,
    activation_bytes (the first output's size), activation (the fused activation's op or "")."""
    rows = []
    for node in graph.nodes:
        out = graph.outputs[0] if not node.outputs else node.outputs[0]
        rows.append({
            "name": node.name,
            "op": node.op,
            "input_shapes": [list(graph.shape(i)) for i in graph.dynamic_inputs(node)],
            "output_shape": list(graph.shape(out)),
            "macs": node_macs(node, graph),
            "params": node_params(node, graph),
            "activation_bytes": graph.values[out].nbytes if out in graph.values else 0,
            "activation": _activation_label(node),
        })
    return rows


def layer_totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Sums over a `layer_table`: node count, MACs, parameters, activation bytes."""
    return {
        "nodes": len(rows),
        "macs": sum(int(r["macs"]) for r in rows),
        "params": sum(int(r["params"]) for r in rows),
        "activation_bytes": sum(int(r["activation_bytes"]) for r in rows),
    }
