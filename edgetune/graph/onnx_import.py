"""ONNX -> edgetune IR: read the file, upgrade old opsets, convert protos to plain Python, fold
constants, infer shapes.

Why a strict importer: everything downstream assumes static shapes, so unsupported input (an opset the
version converter cannot lift, a symbolic dim without a concrete shape, an op with no ONNX schema)
must fail here, once, with every offending op named, instead of deep in a kernel. Any standard op is
accepted: the ones edgetune knows are rewritten into its lifted forms, the others stay "generic"
(their ONNX inputs and attributes as in the file, shapes from ONNX shape inference).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import psutil
from google.protobuf.message import DecodeError
from onnx import AttributeProto, ModelProto, helper, numpy_helper, version_converter

from edgetune.errors import EdgetuneError, UnsupportedModelError
from edgetune.graph.constant_ops import CONSTANT_OPS, eval_constant_node, np_dtype
from edgetune.graph.fold import fold_and_infer
from edgetune.graph.ir import Graph, Node, Value
from edgetune.graph.passes import remove_identities
from edgetune.graph.shapes import SHAPE_FNS

MIN_OPSET = 7
MAX_OPSET = int(onnx.defs.onnx_opset_version())
"""Opsets edgetune reads: the oldest the ONNX version converter upgrades from, to the newest the
installed onnx knows."""
UPGRADE_BELOW, UPGRADE_TO = 13, 13
"""Models older than opset 13 are upgraded to 13 at load: the exporter writes one-node and segment
models at >= 13, and a generic node's inputs and attributes must mean the same there (Split, Squeeze,
Softmax changed at 13)."""
KNOWN_OPS: frozenset[str] = frozenset(SHAPE_FNS) | CONSTANT_OPS | {"ReduceMean"}
"""Op types edgetune itself knows (shape function, constant evaluation or a lifting rewrite); any other
standard op is imported as a generic node."""


def load_onnx(path: str | Path) -> ModelProto:
    """Read an ONNX file, with its external data files; a bad file raises EdgetuneError naming it."""
    path = Path(path)
    if path.is_dir():
        raise EdgetuneError(f"{path}: is a directory, expected an .onnx model file")
    if not path.is_file():
        raise EdgetuneError(f"model file not found: {path}")
    if path.stat().st_size == 0:
        raise EdgetuneError(f"{path}: empty file, not an ONNX model")
    try:
        model = onnx.load(str(path), load_external_data=True)
    except DecodeError as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise EdgetuneError(f"{path}: not a readable ONNX model (truncated or wrong format: {first})") \
            from None
    except Exception as e:  # onnx raises assorted types for missing or corrupt external data
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise EdgetuneError(f"{path}: cannot load the model or its external data ({first})") from None
    if not model.ir_version or not model.HasField("graph") or not model.graph.output:
        raise EdgetuneError(f"{path}: not an ONNX model, or truncated (no graph outputs)")
    return model


def _attr(a: AttributeProto) -> Any:
    """An ONNX attribute as plain Python: ints, floats, str, lists, numpy arrays for tensors."""
    t = a.type
    if t == AttributeProto.FLOAT:
        return float(a.f)
    if t == AttributeProto.INT:
        return int(a.i)
    if t == AttributeProto.STRING:
        return a.s.decode("utf-8", "replace")
    if t == AttributeProto.TENSOR:
        return np.array(numpy_helper.to_array(a.t))
    if t == AttributeProto.FLOATS:
        return [float(v) for v in a.floats]
    if t == AttributeProto.INTS:
        return [int(v) for v in a.ints]
    if t == AttributeProto.STRINGS:
        return [s.decode("utf-8", "replace") for s in a.strings]
    if t == AttributeProto.TENSORS:
        return [np.array(numpy_helper.to_array(x)) for x in a.tensors]
    return None  # graphs and sparse tensors: only used by ops edgetune rejects anyway


def _opset(model: ModelProto, source: str) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise UnsupportedModelError(f"{source}: no default-domain opset import")
    v = int(versions[0])
    if not MIN_OPSET <= v <= MAX_OPSET:
        raise UnsupportedModelError(f"{source}: opset {v} is not supported (edgetune reads "
                                    f"{MIN_OPSET}..{MAX_OPSET})")
    return v


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _failing_op(model: ModelProto, opset: int) -> str | None:
    """The first op type whose nodes, alone, the version converter cannot upgrade (to name it)."""
    seen: set[str] = set()
    for n in model.graph.node:
        if n.op_type in seen:
            continue
        seen.add(n.op_type)
        ins = [helper.make_tensor_value_info(i, onnx.TensorProto.FLOAT, None) for i in n.input if i]
        outs = [helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None) for o in n.output if o]
        one = helper.make_model(helper.make_graph([n], "one", ins, outs),
                                opset_imports=[helper.make_opsetid("", opset)])
        try:
            version_converter.convert_version(one, UPGRADE_TO)
        except Exception:  # noqa: BLE001 - this is the op we are looking for
            return n.op_type
    return None


def upgrade_opset(model: ModelProto, source: str) -> tuple[ModelProto, int | None]:
    """(model at opset >= 13, the opset it was upgraded from or None); ONNX's version converter does the
    work, a failure is one line naming the op it failed on."""
    v = _opset(model, source)
    if v >= UPGRADE_BELOW:
        return model, None
    try:
        upgraded = version_converter.convert_version(model, UPGRADE_TO)
    except Exception as e:  # noqa: BLE001 - the converter raises assorted C++ error types
        op = _failing_op(model, v)
        at = f" at op {op}" if op else ""
        raise UnsupportedModelError(f"{source}: upgrading from opset {v} to {UPGRADE_TO} failed{at}: "
                                    f"{_first_line(e)}") from None
    return upgraded, v


def _check_ops(nodes: list[onnx.NodeProto], source: str) -> None:
    """One error listing every op type that is not standard ONNX (no schema in the installed onnx, or
    another domain), with the names of its nodes."""
    bad: dict[str, list[str]] = {}
    for i, n in enumerate(nodes):
        domain_ok = n.domain in ("", "ai.onnx")
        if not domain_ok or not (n.op_type in KNOWN_OPS or onnx.defs.has(n.op_type)):
            op = n.op_type if domain_ok else f"{n.domain}.{n.op_type}"
            bad.setdefault(op, []).append(n.name or f"#{i}")
    if bad:
        raise UnsupportedModelError(f"unsupported ops in {source}: " + ", ".join(
            f"{op} ({', '.join(names)})" for op, names in bad.items()))


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def _given_shape(vi: onnx.ValueInfoProto, declared: list[int | str], given: tuple[int, ...],
                 source: str) -> tuple[int, ...]:
    """A user-given concrete shape, checked against the declared rank and fixed dims."""
    if len(given) != len(declared) or any(isinstance(d, int) and d != g for d, g in zip(declared, given,
                                                                                        strict=False)):
        want = "x".join(str(d) for d in declared)
        raise EdgetuneError(f"{source}: --input-shape {vi.name}={_fmt_shape(given)} does not match the "
                            f"declared shape {want}")
    return given


def _input_value(vi: onnx.ValueInfoProto, batch: int, source: str,
                 given: tuple[int, ...] | None = None) -> Value:
    """A graph input with a concrete shape: the declared one, `given` (from --input-shape) when set,
    `batch` for a symbolic first dim; any other symbolic dim is an error asking for --input-shape."""
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not tt.HasField("shape"):
        raise UnsupportedModelError(f"{source}: input {vi.name!r} is not a tensor with a known rank")
    declared: list[int | str] = [int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0
                                 else (d.dim_param or "?") for d in tt.shape.dim]
    dtype = np_dtype(tt.elem_type).name
    if given is not None:
        return Value(vi.name, _given_shape(vi, declared, given, source), dtype)
    dims: list[int] = []
    for i, d in enumerate(declared):
        if isinstance(d, int):
            dims.append(d)
        elif i == 0:
            dims.append(batch)
        else:
            example = _fmt_shape(tuple(x if isinstance(x, int) else 1 for x in declared))
            raise UnsupportedModelError(f"{source}: input {vi.name!r} has a symbolic dim {d!r} at "
                                        f"position {i}; give a concrete shape with --input-shape "
                                        f"{vi.name}={example}")
    return Value(vi.name, tuple(dims), dtype)


def _check_weights_finite(inits: dict[str, np.ndarray], source: str) -> None:
    """NaN or Inf in a float initializer makes every output garbage; say which one instead of blaming
    a kernel or a plan later."""
    for name, arr in inits.items():
        if arr.dtype.kind != "f" or arr.size == 0:
            continue
        finite = np.isfinite(arr)
        if not finite.all():
            what = "NaN" if np.isnan(arr).any() else "Inf"
            raise EdgetuneError(f"{source}: initializer {name!r} {tuple(arr.shape)} contains {what} values "
                                f"({int(arr.size - finite.sum())} of {arr.size} not finite)")


def _check_wiring(g: onnx.GraphProto, inits: set[str], source: str) -> None:
    """Each value produced once, and every node input provided by the graph inputs, an initializer or a
    node: duplicate names and dangling inputs get their own message (not "a cycle")."""
    producer: dict[str, str] = {}
    for i, n in enumerate(g.node):
        for o in n.output:
            if not o:
                continue
            if o in producer:
                raise EdgetuneError(f"{source}: value {o!r} is produced twice (by {producer[o]} and "
                                    f"{n.name or f'#{i}'}); ONNX value names must be unique")
            producer[o] = n.name or f"#{i}"
    provided = set(producer) | inits | {vi.name for vi in g.input} | {""}
    for i, n in enumerate(g.node):
        for name in n.input:
            if name not in provided:
                raise EdgetuneError(f"{source}: node {n.name or f'#{i}'} ({n.op_type}) reads {name!r}, which no "
                                    "graph input, initializer or node provides")
    for vi in g.output:
        if vi.name not in provided:
            raise EdgetuneError(f"{source}: graph output {vi.name!r} is not produced by any node")


def _unique_names(nodes: list[onnx.NodeProto]) -> list[str]:
    seen: set[str] = set()
    names = []
    for i, n in enumerate(nodes):
        # protobuf hands back bytes for a name that is not valid UTF-8
        raw = n.name.decode("utf-8", "replace") if isinstance(n.name, bytes) else n.name
        base = raw or f"{n.op_type}_{i}"
        name, k = base, 1
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name)
        names.append(name)
    return names


def convert(model: ModelProto, name: str, batch: int = 1, source: str | None = None,
            input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """Protos -> IR without folding: nodes, attributes, initializers (Constant nodes included). Opsets
    below 11 are upgraded first; `input_shapes` gives concrete shapes for inputs with symbolic dims."""
    source = source or name
    model, upgraded_from = upgrade_opset(model, source)
    opset = _opset(model, source)
    g = model.graph
    _check_ops(list(g.node), source)
    try:
        # writable copies: onnx returns read-only views, which torch.from_numpy warns about
        inits = {t.name: np.array(numpy_helper.to_array(t)) for t in g.initializer}
    except Exception as e:  # external data missing or corrupt
        raise EdgetuneError(f"{source}: cannot read initializers ({str(e).splitlines()[0]})") from None
    _check_weights_finite(inits, source)
    _check_wiring(g, set(inits), source)
    values = {}
    inputs = []
    shapes = dict(input_shapes or {})
    runtime_inputs = [vi for vi in g.input if vi.name not in inits]
    unknown = sorted(set(shapes) - {vi.name for vi in runtime_inputs})
    if unknown:
        raise EdgetuneError(f"{source}: --input-shape names unknown input(s) {', '.join(unknown)} "
                            f"(inputs: {', '.join(vi.name for vi in runtime_inputs)})")
    for vi in runtime_inputs:
        values[vi.name] = _input_value(vi, batch, source, shapes.get(vi.name))
        inputs.append(vi.name)
    for vi in g.output:
        tt = vi.type.tensor_type
        dtype = np_dtype(tt.elem_type).name if tt.elem_type else "float32"
        values.setdefault(vi.name, Value(vi.name, None, dtype))
    nodes = []
    for node_name, n in zip(_unique_names(list(g.node)), g.node, strict=True):
        attrs = {a.name: _attr(a) for a in n.attribute}
        node = Node(node_name, n.op_type, list(n.input), list(n.output), attrs, opset=opset)
        if n.op_type == "Constant":
            inits[n.output[0]] = eval_constant_node(node, [])[0]
            continue
        nodes.append(node)
    graph = Graph(name, nodes, inputs, [o.name for o in g.output], values, inits, opset)
    graph.upgraded_from = upgraded_from
    try:
        graph.toposort()
    except ValueError:
        placed = _placeable(graph)
        stuck = [n.name for n in graph.nodes if n.name not in placed]
        raise EdgetuneError(f"{source}: the graph has a cycle through nodes {', '.join(map(str, stuck[:6]))}") \
            from None
    return graph


def _placeable(graph: Graph) -> set[str]:
    """Names of the nodes a topological sweep can reach (the rest sit on or behind a cycle)."""
    available = set(graph.inputs) | set(graph.initializers) | {""}
    placed: set[str] = set()
    progressed = True
    while progressed:
        progressed = False
        for n in graph.nodes:
            if n.name not in placed and all(i in available for i in n.inputs):
                placed.add(n.name)
                available.update(n.outputs)
                progressed = True
    return placed


def _check_memory(graph: Graph, source: str) -> None:
    """A declared shape too large for this machine's memory fails here, not as a MemoryError in a kernel."""
    total = psutil.virtual_memory().total
    for name, v in graph.values.items():
        if v.shape is None:
            continue
        nbytes = int(np.prod(v.shape, dtype=np.float64)) * np.dtype(v.dtype).itemsize
        if nbytes > total:
            raise EdgetuneError(f"{source}: value {name!r} of shape {tuple(v.shape)} needs {nbytes / 1e9:.1f} GB, "
                                f"more than this machine's {total / 1e9:.1f} GB of memory")


def import_model(model: ModelProto, name: str, batch: int = 1, source: str | None = None,
                 input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """ONNX model -> IR with constants folded, static shapes on every value, resolved attributes and
    Identity/Dropout removed. `batch` replaces a symbolic first input dim, `input_shapes` gives whole
    concrete input shapes; `source` names the model in error messages (default: `name`)."""

    if batch < 1:
        raise EdgetuneError(f"batch must be >= 1, got {batch}")
    try:
        graph = convert(model, name, batch, source, input_shapes)
        _check_memory(graph, source or name)
        fold_and_infer(graph, source or name)
    except EdgetuneError as e:  # name the model file in every import error
        where = source or name
        if where in str(e):
            raise
        raise type(e)(f"{where}: {e}") from None
    _check_memory(graph, source or name)
    remove_identities(graph, only_identity=True)
    graph.remove_unused()
    for out in graph.outputs:
        if out not in graph.values and out not in graph.initializers:
            raise EdgetuneError(f"{source or name}: graph output {out!r} is not produced by any node")
    for out, v in graph.values.items():
        if v.shape is None and out not in graph.initializers:
            raise EdgetuneError(f"{source or name}: no shape inferred for value {out!r}")
    return graph
