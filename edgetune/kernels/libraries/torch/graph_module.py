"""A run of IR nodes as one `torch.nn.Module`, ready to trace (`segments.py` compiles it).

Why a module: TorchScript's freezing folds a module's buffers into the graph as constants (so oneDNN can
prepack the convolution weights and fold what follows them) and `torch.jit.trace` records only the torch
calls, not the Python that wires the nodes together. Each node's constants are buffers of the module, its
computation the lowering's function (`lowering.py`), its fused activation applied after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from edgetune.graph.ir import Activation, Graph, Node
from edgetune.kernels.libraries.torch.lowering import Fn, activation, lower


@dataclass(frozen=True)
class _Step:
    """One node in the module: the values it reads and writes, its buffers, its function."""

    inputs: tuple[str, ...]
    buffers: tuple[str, ...]
    outputs: tuple[str, ...]
    fn: Fn
    activation: Activation | None


class SegmentModule(torch.nn.Module):
    """`nodes` of `graph` computed from the values `ins` (positional arguments) to the values `outs` (a tuple
    of contiguous tensors)."""

    def __init__(self, graph: Graph, nodes: list[Node], ins: list[str], outs: list[str]) -> None:
        super().__init__()
        self.ins, self.outs = list(ins), list(outs)
        self.steps: list[_Step] = [self._step(graph, n) for n in nodes]

    def _step(self, graph: Graph, node: Node) -> _Step:
        low = lower(node, graph)
        names = []
        for c in low.constants:
            name = f"c{len(self._buffers)}"
            self.register_buffer(name, torch.from_numpy(c if c.flags.writeable else c.copy()))
            names.append(name)
        return _Step(tuple(graph.dynamic_inputs(node)), tuple(names), tuple(o for o in node.outputs if o), low.fn,
                     node.activation)

    @property
    def weight_bytes(self) -> int:
        """Bytes of the constants the module holds (before TorchScript folds or repacks them)."""
        return sum(b.numel() * b.element_size() for b in self.buffers())

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env = dict(zip(self.ins, xs, strict=True))
        for s in self.steps:
            ys = s.fn([env[v] for v in s.inputs], [getattr(self, b) for b in s.buffers])
            if s.activation is not None:
                ys = [activation(ys[0], s.activation), *ys[1:]]
            env.update(zip(s.outputs, ys, strict=True))
        return tuple(env[o].contiguous() for o in self.outs)


def zeros_for(graph: Graph, values: list[str]) -> tuple[torch.Tensor, ...]:
    """Zero tensors of the values' shapes: what the module is traced on (no lowering branches on data)."""
    return tuple(torch.from_numpy(np.zeros(graph.shape(v), np.float32)) for v in values)
