"""Resolve what the user typed as MODEL: a path to an .onnx file or a zoo model name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Graph

DEFAULT_MODEL = "mobilenet_v2"


@dataclass
class ModelSource:
    """The optimised graph plus what peers need: the original ONNX model, and the zoo name when the
    model is a built-in one (torch eager baselines exist only for those)."""

    graph: Graph
    onnx_model: onnx.ModelProto
    zoo_name: str | None

    def torch_module(self) -> Any | None:
        if self.zoo_name is None:
            return None
        from edgetune import zoo

        return zoo.torch_module(self.zoo_name)


def open_model(spec: str, *, batch: int = 1) -> ModelSource:
    """Load the model named by `spec` (file path or zoo name) and optimise its graph."""
    from edgetune import zoo
    from edgetune.graph import load_graph, load_onnx

    path = Path(spec)
    if path.suffix.lower() == ".onnx" or path.exists() or "/" in spec:
        proto = load_onnx(path)
        return ModelSource(load_graph(proto, name=path.stem, batch=batch, origin=str(path)), proto, None)
    names = [e.name for e in zoo.list_models()]
    if spec not in names:
        raise EdgetuneError(f"model {spec!r} is neither an .onnx file nor a zoo model (zoo: {', '.join(names)})")
    proto = zoo.build_onnx(spec)
    return ModelSource(load_graph(proto, name=spec, batch=batch), proto, spec)


def load_model(spec: str, *, batch: int = 1) -> Graph:
    """Just the optimised graph of `spec`."""
    return open_model(spec, batch=batch).graph
