"""edgetune's graph IR: a small, mutable, ONNX-shaped representation we control.

Why our own IR: passes (BN folding, activation fusion), per-node primitive choice and the executor
all need a graph that is easy to rewrite and carries resolved static shapes, which ONNX protos are
not. Values are named by strings; constant tensors (weights) live in `Graph.initializers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Value:
    """A tensor edge: a static shape (every dim an int after shape inference) and a numpy dtype name."""

    name: str
    shape: tuple[int, ...] | None = None
    dtype: str = "float32"

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape is not None else 0

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass
class Activation:
    """An elementwise activation fused into its producer (applied to the producer's single output).

    op is one of: Relu, Clip (params min, max), LeakyRelu (alpha), Sigmoid, HardSigmoid (alpha, beta),
    HardSwish, Tanh, Swish (x * sigmoid(x), from a Sigmoid+Mul pair).
    """

    op: str
    params: dict[str, float] = field(default_factory=dict)


@dataclass
class Node:
    """One operation. `op` is the ONNX op_type; `attrs` hold ONNX attributes as plain Python values
    (ints, floats, strings, lists, numpy arrays for tensor attributes). An empty input name means an
    omitted optional input. `opset` is the default-domain opset the node's inputs and attributes
    follow (set by the importer; None for nodes a pass created, which use edgetune's lifted forms)."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    activation: Activation | None = None
    opset: int | None = None

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


class Graph:
    """Nodes in topological order, the values between them, constant initializers and the graph's
    inputs/outputs. Producers and consumers are derived on demand (the graph is small)."""

    def __init__(
        self,
        name: str,
        nodes: list[Node],
        inputs: list[str],
        outputs: list[str],
        values: dict[str, Value],
        initializers: dict[str, np.ndarray],
        opset: int = 17,
    ) -> None:
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.values = values
        self.initializers = initializers
        self.opset = opset
        self.upgraded_from: int | None = None  # the file's opset when the importer upgraded it
        self.example_feeds: dict[str, np.ndarray] | None = None  # user-given inputs (--inputs FILE.npz)
        # uint8 (scale, zero point) per activation value from a calibration on real data (a plan's
        # quantisation spec), read by the primitives that keep int8 on their edges (kernels/int8_calib.py)
        self.activation_qparams: dict[str, tuple[float, int]] | None = None

    # ---- lookups -------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def producer(self, value: str) -> Node | None:
        for n in self.nodes:
            if value in n.outputs:
                return n
        return None

    def consumers(self, value: str) -> list[Node]:
        return [n for n in self.nodes if value in n.inputs]

    def is_constant(self, value: str) -> bool:
        return value in self.initializers

    def shape(self, value: str) -> tuple[int, ...]:
        v = self.values.get(value)
        if v is None or v.shape is None:
            if value in self.initializers:
                return tuple(self.initializers[value].shape)
            raise KeyError(f"no shape known for value {value!r}")
        return v.shape

    def dtype(self, value: str) -> str:
        if value in self.initializers:
            return str(self.initializers[value].dtype)
        return self.values[value].dtype

    def weights(self, node: Node) -> list[np.ndarray | None]:
        """The constant inputs of a node, positionally (None where an input is not a constant)."""
        return [self.initializers.get(i) if i else None for i in node.inputs]

    def dynamic_inputs(self, node: Node) -> list[str]:
        """The node's non-constant, non-empty inputs (what flows at run time)."""
        return [i for i in node.inputs if i and i not in self.initializers]

    # ---- mutation helpers ------------------------------------------------------------------
    def toposort(self) -> None:
        """Reorder `nodes` topologically (stable: keeps the existing order where it is valid)."""
        available = set(self.inputs) | set(self.initializers) | {""}
        pending = list(self.nodes)
        ordered: list[Node] = []
        while pending:
            progressed = False
            rest = []
            for n in pending:
                if all(i in available for i in n.inputs):
                    ordered.append(n)
                    available.update(n.outputs)
                    progressed = True
                else:
                    rest.append(n)
            if not progressed:
                missing = sorted({i for n in rest for i in n.inputs if i not in available})
                raise ValueError(f"graph has a cycle or undefined values: {missing[:5]}")
            pending = rest
        self.nodes = ordered

    def rename_value(self, old: str, new: str) -> None:
        """Make every consumer (and graph output) of `old` read `new` instead."""
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove_unused(self) -> None:
        """Drop nodes whose outputs nobody reads, initializers and values no node uses."""
        changed = True
        while changed:
            used = set(self.outputs) | {i for n in self.nodes for i in n.inputs}
            keep = [n for n in self.nodes if any(o in used for o in n.outputs)]
            changed = len(keep) != len(self.nodes)
            self.nodes = keep
        used = set(self.outputs) | {i for n in self.nodes for i in n.inputs}
        self.initializers = {k: v for k, v in self.initializers.items() if k in used}
        live = used | {o for n in self.nodes for o in n.outputs} | set(self.inputs)
        self.values = {k: v for k, v in self.values.items() if k in live}

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.nodes)} nodes, inputs={self.inputs}, outputs={self.outputs})"
