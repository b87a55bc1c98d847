"""Per-node precision from the measured design space: the exact optimum when nodes may also run in bf16
(torch's oneDNN bf16 kernels, as autocast runs them) or in int8 on uint8 edges (ONNX Runtime's QLinearConv, its
parameters on the edges' formats: consecutive int8 nodes stay int8, and every quantise / dequantise where
int8 meets float is a measured converter), as more configurations for the precision search.

Why: OpenVINO's precision hint puts a whole segment in bf16; a per-node bf16 primitive lets the search put
only the layers where bf16 pays (large convolutions on AMX: ~2x per layer) in bf16, at their measured cost with
every conversion and thread-pool switch around them, the rest as the fp32 search would. Its accuracy is then
measured on the evaluation split like every configuration: the budget decides, not the layer's tolerance.
"""

from __future__ import annotations

from edgetune.graph.ir import Graph
from edgetune.kernels import registry
from edgetune.measure.db import ProfileDB
from edgetune.planning.candidates import to_plan
from edgetune.planning.design_space import measure_space
from edgetune.runtime.plan import Plan
from edgetune.search import get_strategy
from edgetune.search.space import Option

NODE_PRECISIONS = ("bf16", "int8")  # per-node precisions with primitives of their own (kernels' `precision`)


def _admitted(option: Option) -> bool:
    """int8 options only of primitives quantising with the graph's calibration (the plan's spec, on real
    data); the other int8 kernels calibrate on stand-in samples, which says nothing of real accuracy."""
    if option.precision != "int8":
        return True
    try:
        return registry.get(str(option.meta.get("primitive"))).graph_calibrated
    except KeyError:
        return False


def node_precision_plans(graph: Graph, db: ProfileDB, threads: list[int], objective: str = "latency"
                         ) -> list[tuple[str, Plan, float]]:
    """(name, plan, predicted ms) of the design space's exact optimum with each per-node precision allowed
    beside fp32, where the profile measured some node in it and the optimum uses it."""
    out = []
    measured = measure_space(graph, db, threads, {"fp32", *NODE_PRECISIONS})  # the DB read once, viewed per precision
    for precision in NODE_PRECISIONS:
        space = measured.view({"fp32", precision}, admit=_admitted)[0]
        if not any(o.precision == precision for opts in space.options for o in opts):
            continue
        best = get_strategy("exact").search(space, 1, 0, objective, None)
        plan = to_plan(graph, space, best.best_choice, {"node_precision": precision})
        n = sum(1 for i, c in enumerate(best.best_choice) if space.options[i][c].precision == precision)
        if n:
            out.append((f"per-node {precision} ({n} nodes) + fp32, exact optimum of the measured space", plan,
                        space.cost_model.predict(best.best_choice)))
    return out
