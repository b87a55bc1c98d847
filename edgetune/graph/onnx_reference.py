"""Ground truth for ops edgetune's reference executor has no kernel for: ONNX's own `onnx.reference`.

Why: ONNX ships a Python reference implementation of every standard op; running a one-node model of
the node through it is the honest ground truth for Resize, ConvTranspose, GridSample, Einsum, ... that
edgetune does not implement itself. Float inputs go in as float64 where the evaluator accepts it
(one rounding at the end, like the rest of the reference), else as they are.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import onnx

from edgetune.errors import EdgetuneError, UnsupportedModelError
from edgetune.graph.generic import single_node_model
from edgetune.graph.ir import Node

LATEST_OPSET = 0  # 0: the newest the installed onnx knows (nodes made by passes carry no opset)
_EVALUATORS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_CACHE_SIZE = 64


def _evaluator(node: Node, names: list[str], arrays: list[np.ndarray]) -> Any:
    """A cached ReferenceEvaluator of the one-node model for these input types."""
    from onnx.reference import ReferenceEvaluator  # loaded on demand: ~0.3 s, only for ops without a kernel

    opset = node.opset or LATEST_OPSET or onnx.defs.onnx_opset_version()
    key = (node.op, repr(sorted(node.attrs.items(), key=lambda kv: kv[0])), tuple(node.inputs),
           tuple(node.outputs), tuple((a.shape, a.dtype.str) for a in arrays), opset)
    hit = _EVALUATORS.get(key)
    if hit is not None:
        _EVALUATORS.move_to_end(key)
        return hit
    typed = [(n, tuple(a.shape), a.dtype.name) for n, a in zip(names, arrays, strict=True)]
    model = single_node_model(node, typed, {}, opset)
    ev = ReferenceEvaluator(model)
    _EVALUATORS[key] = ev
    if len(_EVALUATORS) > _CACHE_SIZE:
        _EVALUATORS.popitem(last=False)
    return ev


def _run(node: Node, inputs: list[np.ndarray | None], widen: bool) -> list[np.ndarray]:
    names, arrays = [], []
    for name, x in zip(node.inputs, inputs, strict=False):
        if name and x is not None:
            a = np.asarray(x)
            if widen and a.dtype == np.float32:
                a = a.astype(np.float64)
            if name not in names:
                names.append(name)
                arrays.append(a)
    ev = _evaluator(node, names, arrays)
    outs = ev.run(None, dict(zip(names, arrays, strict=True)))
    return [np.asarray(o) for o in outs]


def run_onnx_reference(node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """The node's outputs from onnx.reference (activation not applied: the caller does it)."""
    if not onnx.defs.has(node.op):
        raise UnsupportedModelError(f"no reference kernel for {node.op} (node {node.name})")
    try:
        return _run(node, inputs, widen=True)
    except Exception:  # noqa: BLE001 - some kernels insist on float32; retry as given
        pass
    try:
        return _run(node, inputs, widen=False)
    except Exception as e:  # noqa: BLE001
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise EdgetuneError(f"reference {node.op} node {node.name} (onnx.reference): {msg}") from None
