"""PyTorch primitives for the decoder and transformer ops the edge zoo brought: ConvTranspose (U-Net
and detector decoders) and LayerNormalization (every transformer block).

Why: beside ONNX Runtime's one-node sessions (`op.ort`) these are the layers where a second library
can win, and the search can only pick what it can measure. Weights are constant and held as torch
tensors from prepare on; the fused activation is applied on the output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.base import FunctionKernel, Kernel, PrepareContext, Primitive
from edgetune.kernels.libraries.torch.conv import torch_activation


def _nbytes(*tensors: torch.Tensor | None) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def _float32_constants(node: Node, graph: Graph, first: int) -> str | None:
    """None when every input from `first` on is a constant (or omitted) and all data is float32."""
    for i in node.inputs[first:]:
        if i and i not in graph.initializers:
            return f"input {i!r} must be constant"
    if any(i and graph.dtype(i) != "float32" for i in node.inputs):
        return "float32 tensors only"
    return None


class TorchConvTranspose(Primitive):
    """2-D ConvTranspose as F.conv_transpose2d (oneDNN deconvolution on x86)."""

    name = "convtranspose.torch"
    library = "torch"
    op_types = frozenset({"ConvTranspose"})

    def supports(self, node: Node, graph: Graph) -> str | None:
        reason = _float32_constants(node, graph, 1)
        if reason:
            return reason
        if len(graph.shape(node.inputs[0])) != 4:
            return "only 2-D (4-D input)"
        if node.attr("output_shape") is not None or node.attr("auto_pad", "NOTSET") not in ("NOTSET", ""):
            return "output_shape / auto_pad are not supported (explicit pads only)"
        pads = list(node.attr("pads", [0, 0, 0, 0]))
        if pads[:2] != pads[2:]:
            return "asymmetric pads"
        return None

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        g = ctx.graph
        w = torch.from_numpy(np.ascontiguousarray(g.initializers[node.inputs[1]], np.float32))
        b_name = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        b = torch.from_numpy(np.ascontiguousarray(g.initializers[b_name], np.float32)) if b_name else None
        pads = list(node.attr("pads", [0, 0, 0, 0]))
        kw: dict[str, Any] = {
            "stride": tuple(node.attr("strides", [1, 1])), "padding": tuple(pads[:2]),
            "output_padding": tuple(node.attr("output_padding", [0, 0])), "groups": int(node.attr("group", 1)),
            "dilation": tuple(node.attr("dilations", [1, 1])),
        }
        act = node.activation

        def run(x: np.ndarray) -> list[Any]:
            with torch.inference_mode():
                y = F.conv_transpose2d(torch.from_numpy(x), w, b, **kw)
                torch_activation(y, act)
                return [np.ascontiguousarray(y.numpy())]

        return FunctionKernel(run, weight_bytes=_nbytes(w, b))


class TorchLayerNorm(Primitive):
    """LayerNormalization over the trailing axes as F.layer_norm (constant scale and bias)."""

    name = "layernorm.torch"
    library = "torch"
    op_types = frozenset({"LayerNormalization"})

    def supports(self, node: Node, graph: Graph) -> str | None:
        if any(o for o in node.outputs[1:]):
            return "only the first output (mean / inv std dev outputs are not computed)"
        return _float32_constants(node, graph, 1)

    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        g = ctx.graph
        rank = len(g.shape(node.inputs[0]))
        axis = int(node.attr("axis", -1)) % rank
        shape = tuple(g.shape(node.inputs[0])[axis:])
        scale = np.broadcast_to(g.initializers[node.inputs[1]], shape)
        w = torch.from_numpy(np.array(scale, np.float32))  # a writable copy (broadcast views are read-only)
        b_name = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        b = torch.from_numpy(np.array(np.broadcast_to(g.initializers[b_name], shape), np.float32)) \
            if b_name else None
        eps = float(node.attr("epsilon", 1e-5))
        act = node.activation

        def run(x: np.ndarray) -> list[Any]:
            with torch.inference_mode():
                y = F.layer_norm(torch.from_numpy(x), shape, w, b, eps)
                torch_activation(y, act)
                return [y.numpy()]

        return FunctionKernel(run, weight_bytes=_nbytes(w, b))


PRIMITIVES = [TorchConvTranspose(), TorchLayerNorm()]
