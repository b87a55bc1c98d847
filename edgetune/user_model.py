"""Resolve what the user typed as MODEL: a path to an .onnx file or a zoo name, with the concrete input
shapes (`--input-shape`) and example inputs (`--inputs FILE.npz`) it is tuned for."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgetune.errors import EdgetuneError
from edgetune.graph import load_graph, load_onnx
from edgetune.graph.ir import Graph
from edgetune.kernels.backends import check_runnable

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
        from edgetune import zoo  # loads torch on demand: `edgetune --help` and .onnx models do without

        return zoo.torch_module(self.zoo_name)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The flags every command that loads a model shares."""
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=1x3x224x224",
                   help="concrete shape for an input with symbolic dims (repeatable; default batch 1)")
    p.add_argument("--inputs", default=None, metavar="FILE.npz",
                   help="example inputs, one array per input name (default: generated from dtype and shape)")


def parse_input_shapes(specs: list[str] | None) -> dict[str, tuple[int, ...]]:
    """`["x=1x3x224x224", ...]` -> {"x": (1, 3, 224, 224)}; a malformed one is a one-line error."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs or []:
        name, sep, dims = spec.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d < 1 for d in shape):
            raise EdgetuneError(f"--input-shape {spec!r}: expected NAME=DxDx... with positive dims, "
                                f"e.g. input=1x3x224x224")
        shapes[name] = shape
    return shapes


def load_inputs(path: str, graph: Graph) -> dict[str, np.ndarray]:
    """Example inputs from an .npz file: every graph input by name, with its shape and dtype."""
    p = Path(path)
    if not p.is_file():
        raise EdgetuneError(f"inputs file not found: {path}")
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except (ValueError, OSError) as e:
        raise EdgetuneError(f"{path}: not an .npz file of arrays ({e})") from None
    missing = [i for i in graph.inputs if i not in arrays]
    if missing:
        raise EdgetuneError(f"{path}: no array for input(s) {', '.join(missing)} (has {', '.join(arrays)})")
    feeds = {}
    for name in graph.inputs:
        x, shape, dtype = arrays[name], graph.shape(name), graph.dtype(name)
        if tuple(x.shape) != tuple(shape):
            raise EdgetuneError(f"{path}: input {name!r} has shape {tuple(x.shape)}, the model expects {shape}")
        if np.dtype(dtype).kind != x.dtype.kind:
            raise EdgetuneError(f"{path}: input {name!r} is {x.dtype}, the model expects {dtype}")
        feeds[name] = np.ascontiguousarray(x, dtype=dtype)
    return feeds


def _prepare(graph: Graph, source: str, inputs: str | None) -> Graph:
    """Refuse nodes no backend runs; attach the example inputs."""

    check_runnable(graph, source)
    if inputs:
        graph.example_feeds = load_inputs(inputs, graph)
    return graph


def open_model(spec: str, *, batch: int = 1, input_shapes: dict[str, tuple[int, ...]] | None = None,
               inputs: str | None = None) -> ModelSource:
    """Load the model named by `spec` (file path or zoo name) and optimise its graph, for the concrete
    `input_shapes` where the model has symbolic dims and with the example `inputs` (.npz) if given."""
    path = Path(spec)
    if path.suffix.lower() == ".onnx" or path.exists() or "/" in spec:
        proto = load_onnx(path)
        graph = load_graph(proto, name=path.stem, batch=batch, input_shapes=input_shapes, origin=str(path))
        return ModelSource(_prepare(graph, str(path), inputs), proto, None)
    try:
        from edgetune import zoo  # the zoo's builders are torch modules: loaded only for zoo names
    except ImportError as e:
        raise EdgetuneError(f"zoo model {spec!r} needs {e.name or 'torch'}, which is not installed here; "
                            "give an .onnx file instead") from None
    names = zoo.names()
    if spec not in names:
        raise EdgetuneError(f"model {spec!r} is neither an .onnx file nor a zoo model (zoo: {', '.join(names)})")
    proto = zoo.build_onnx(spec)
    graph = load_graph(proto, name=spec, batch=batch, input_shapes=input_shapes)
    return ModelSource(_prepare(graph, spec, inputs), proto, spec)


def open_model_args(args: argparse.Namespace) -> ModelSource:
    """`open_model` for a command's parsed arguments (model, --input-shape, --inputs)."""
    return open_model(args.model, input_shapes=parse_input_shapes(getattr(args, "input_shape", None)),
                      inputs=getattr(args, "inputs", None))


def load_model(spec: str, *, batch: int = 1, input_shapes: dict[str, tuple[int, ...]] | None = None,
               inputs: str | None = None) -> Graph:
    """Just the optimised graph of `spec`."""
    return open_model(spec, batch=batch, input_shapes=input_shapes, inputs=inputs).graph


def load_model_args(args: argparse.Namespace) -> Graph:
    """`load_model` for a command's parsed arguments."""
    return open_model_args(args).graph
