"""How a plan's segment computes beyond fp32: its int8 nodes quantised as the plan's "quantization" says
(edgetune.quant's QDQ model of the segment's subgraph) and its float part at the segment's precision.

Why here and not in kernels: the kernels layer compiles whatever ONNX model it is handed (a
`SegmentVariant`'s rewrite); which nodes are int8 and with which ranges is the plan's decision, made with
the quantiser that sits above the kernels.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Graph
from edgetune.kernels.library import FP32_SEGMENT, SegmentVariant
from edgetune.quant import QuantSpec, equalize, quantize
from edgetune.runtime.plan import Plan, PlanSegment


@functools.lru_cache(maxsize=8)
def _spec(text: str) -> QuantSpec:
    return QuantSpec.from_dict(json.loads(text))


def plan_spec(plan: Plan) -> QuantSpec:
    """The plan's quantisation spec (parsed once per distinct spec); a malformed one is a one-line error."""
    if plan.quantization is None:
        raise EdgetuneError("plan: a segment has int8 nodes but the plan has no 'quantization'")
    try:
        return _spec(json.dumps(plan.quantization, sort_keys=True))
    except EdgetuneError as e:
        raise EdgetuneError(f"plan: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise EdgetuneError(f"plan: its 'quantization' is not a valid quantisation spec ({e})") from None


def segment_variant(plan: Plan, seg: PlanSegment) -> SegmentVariant:
    """What the segment compiles: plain fp32, or its subgraph rewritten with its int8 nodes quantised."""
    if seg.plain:
        return FP32_SEGMENT
    if not seg.int8:
        return SegmentVariant(precision=seg.precision)
    spec, nodes = plan_spec(plan), frozenset(seg.int8)

    def rewrite(model: Any) -> Any:
        present = nodes & {n.name for n in model.graph.node}
        if spec.equalize_iterations:  # the ranges were calibrated on the equalised float model
            model = equalize(model, spec.equalize_iterations)
        return quantize(model, spec, sorted(present))

    return SegmentVariant(rewrite=rewrite, precision=seg.precision)


def calibrated_graph(graph: Graph, plan: Plan) -> Graph:
    """`graph` carrying the plan's calibrated activation ranges, which the primitives that keep int8 on their
    edges quantise with (`Graph.activation_qparams`); a shallow copy, so the caller's graph keeps its own.
    `graph` itself when the plan has no quantisation."""
    if plan.quantization is None:
        return graph
    spec = plan_spec(plan)
    out = copy.copy(graph)
    out.activation_qparams = {t: r.qparams() for t, r in spec.tensors.items()}
    return out
