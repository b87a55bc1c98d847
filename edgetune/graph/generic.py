"""Generic nodes: standard ONNX ops edgetune has no shape function or lifting rule for.

Why: every standard op should import, not only the ones edgetune rewrites. A generic node keeps its
ONNX inputs and attributes exactly as in the (upgraded) file, so the one-node model built here is what
ONNX Runtime and `onnx.reference` run. Its output shapes and dtypes come from ONNX shape inference on
that one-node model; where inference leaves a dim symbolic (data-dependent ops), the node is run once
on stand-in inputs with `onnx.reference` and the shapes of that run are taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgetune.errors import UnsupportedModelError
from edgetune.graph.ir import Graph, Node, Value

Typed = tuple[str, tuple[int, ...] | None, str]
"""(value name, shape or None, numpy dtype name) of a one-node model's input."""


def onnx_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """IR attributes as `helper.make_node` keyword arguments (numpy arrays become tensors)."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if isinstance(v, np.ndarray):
            v = numpy_helper.from_array(v)
        elif isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, (list, tuple)):
            if not v:
                continue
            v = [numpy_helper.from_array(x) if isinstance(x, np.ndarray) else x for x in v]
        if v is None:
            continue
        out[k] = v
    return out


def single_node_model(node: Node, inputs: Sequence[Typed], initializers: dict[str, np.ndarray],
                      opset: int) -> onnx.ModelProto:
    """A model of `node` alone (no activation) with typed inputs, constant initializers and untyped
    outputs, at `opset`."""
    proto = helper.make_node(node.op, list(node.inputs), list(node.outputs), name=node.name,
                             **onnx_attrs(node.attrs))
    vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(dt)),
                                        list(shape) if shape is not None else None) for n, shape, dt in inputs]
    vo = [helper.make_empty_tensor_value_info(o) for o in node.outputs if o]
    inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in initializers.items()]
    g = helper.make_graph([proto], f"edgetune_{node.op}", vi, vo, inits)
    op = helper.make_opsetid("", opset)
    model = helper.make_model(g, opset_imports=[op])
    model.ir_version = min(helper.find_min_ir_version_for([op]), onnx.IR_VERSION)
    return model


def _graph_model(node: Node, graph: Graph) -> onnx.ModelProto:
    dyn = list(dict.fromkeys(graph.dynamic_inputs(node)))
    typed = [(v, graph.shape(v), graph.dtype(v)) for v in dyn]
    consts = {i: graph.initializers[i] for i in node.inputs if i and i in graph.initializers}
    return single_node_model(node, typed, consts, node.opset or graph.opset)


def _inferred(model: onnx.ModelProto, node: Node) -> dict[str, tuple[list[int | None], int]]:
    """Output name -> (dims, None where symbolic; ONNX elem type) from ONNX shape inference."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as e:  # noqa: BLE001 - onnx raises InferenceError and friends
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UnsupportedModelError(f"node {node.name} ({node.op}): ONNX shape inference failed: {msg}") \
            from None
    found: dict[str, tuple[list[int | None], int]] = {}
    for v in list(inferred.graph.output) + list(inferred.graph.value_info):
        tt = v.type.tensor_type
        if not v.type.HasField("tensor_type") or not tt.elem_type:
            continue
        dims: list[int | None] = [int(d.dim_value) if d.HasField("dim_value") else None for d in tt.shape.dim] \
            if tt.HasField("shape") else [None]
        found[v.name] = (dims, tt.elem_type)
    return found


def stand_in(shape: Sequence[int], dtype: str, rng: np.random.Generator) -> np.ndarray:
    """A plausible input of `shape`: N(0, 1) floats, zeros for integers (always valid indices), True."""
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.floating):
        return rng.standard_normal(tuple(shape)).astype(dt)
    if dt == np.bool_:
        return np.ones(tuple(shape), dt)
    return np.zeros(tuple(shape), dt)


def _run_once(model: onnx.ModelProto, node: Node, graph: Graph) -> list[np.ndarray]:
    """The node's outputs on stand-in inputs, through onnx.reference, else ONNX Runtime."""
    # loaded on demand: only a generic node whose shapes inference leaves open needs a run
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(0)
    feeds = {v.name: stand_in(graph.shape(v.name), graph.dtype(v.name), rng) for v in model.graph.input}
    try:
        return list(ReferenceEvaluator(model).run(None, feeds))
    except Exception:  # noqa: BLE001 - some evaluator kernels are incomplete; ORT may still run it
        pass
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return list(sess.run(None, feeds))
    except Exception as e:  # noqa: BLE001 - nothing runs it: the shape stays unknown
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UnsupportedModelError(f"node {node.name} ({node.op}): output shape is data-dependent and "
                                    f"running it once failed: {msg}") from None


def infer_generic(node: Node, graph: Graph) -> None:
    """Set `graph.values` (static shape, dtype) for the outputs of a generic node."""
    try:
        model = _graph_model(node, graph)
    except Exception as e:  # noqa: BLE001 - attributes onnx.helper cannot write back
        raise UnsupportedModelError(f"node {node.name} ({node.op}): cannot build its one-node model: "
                                    f"{(str(e).splitlines() or [type(e).__name__])[0][:200]}") from None
    found = _inferred(model, node)
    outs = [o for o in node.outputs if o]
    if any(o not in found or None in found[o][0] for o in outs):
        ran = dict(zip(node.outputs, _run_once(model, node, graph), strict=False))
        for o in outs:
            arr = np.asarray(ran[o])
            graph.values[o] = Value(o, tuple(int(d) for d in arr.shape), arr.dtype.name)
        return
    for o in outs:
        dims, elem = found[o]
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem)).name
        graph.values[o] = Value(o, tuple(int(d) for d in dims if d is not None), dtype)
