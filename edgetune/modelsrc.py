"""Resolve what the user typed as MODEL: a path to an .onnx file or a zoo model name."""

from __future__ import annotations

from pathlib import Path

from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Graph

DEFAULT_MODEL = "mobilenet_v2"


def load_model(spec: str, *, batch: int = 1) -> Graph:
    """Load and optimise the model named by `spec` (file path or zoo name)."""
    from edgetune import zoo
    from edgetune.graph import load_graph

    path = Path(spec)
    looks_like_file = path.suffix.lower() == ".onnx" or path.exists() or "/" in spec
    if looks_like_file:
        if not path.exists():
            raise EdgetuneError(f"model file not found: {spec}")
        return load_graph(path, name=path.stem, batch=batch)
    names = [e.name for e in zoo.list_models()]
    if spec not in names:
        raise EdgetuneError(
            f"model {spec!r} is neither an .onnx file nor a zoo model (zoo: {', '.join(names)})"
        )
    return load_graph(zoo.build_onnx(spec), name=spec, batch=batch)
