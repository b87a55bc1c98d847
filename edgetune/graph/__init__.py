"""edgetune's graph layer: the IR, ONNX import/export, constant folding, shapes, passes, statistics.

`load_graph` is the one entry point most code needs: ONNX file or proto in, an optimised IR with
static shapes out.
"""

from __future__ import annotations

from pathlib import Path

from onnx import ModelProto

from edgetune.graph import passes
from edgetune.graph.constant_ops import eval_constant_node
from edgetune.graph.ir import Activation, Graph, Node, Value
from edgetune.graph.onnx_export import to_onnx
from edgetune.graph.onnx_import import import_model, load_onnx
from edgetune.graph.passes import (
    fold_batchnorm,
    fuse_activations,
    fuse_pad_into_conv,
    optimize,
    remove_identities,
)
from edgetune.graph.shapes import infer_shapes
from edgetune.graph.stats import layer_table, layer_totals, node_macs, node_params

__all__ = [
    "Activation", "Graph", "Node", "Value", "eval_constant_node", "fold_batchnorm", "fuse_activations",
    "fuse_pad_into_conv", "import_model", "infer_shapes", "layer_table", "layer_totals", "load_graph",
    "load_onnx", "node_macs", "node_params", "optimize", "remove_identities", "to_onnx",
]


def load_graph(source: str | Path | ModelProto, *, name: str | None = None, batch: int = 1,
               optimize: bool = True, input_shapes: dict[str, tuple[int, ...]] | None = None,
               origin: str | None = None) -> Graph:
    """Import an ONNX model (path or proto): upgrade opsets < 13, fold constants, infer static shapes
    (a symbolic batch dim becomes `batch`, `input_shapes` gives whole input shapes), and unless
    `optimize=False` fold BN, fuse activations and drop identities. `origin` names a proto's file in
    error messages."""

    if isinstance(source, ModelProto):
        name = name or source.graph.name or "model"
        graph = import_model(source, name, batch=batch, source=origin or name, input_shapes=input_shapes)
    else:
        path = Path(source)
        graph = import_model(load_onnx(path), name or path.stem, batch=batch, source=str(path),
                             input_shapes=input_shapes)
    if optimize:
        passes.optimize(graph)
    return graph
