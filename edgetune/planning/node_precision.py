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

from dataclasses import dataclass

from edgetune.graph.ir import Graph
from edgetune.kernels import registry
from edgetune.measure.db import ProfileDB
from edgetune.planning.candidates import to_plan
from edgetune.planning.design_space import MeasuredSpace, measure_space
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


PerNodePlan = tuple[str, Plan, float]  # (name, plan, predicted ms)


@dataclass
class NodePrecisionPlanner:
    """The measured space read once, from which the exact optimum with a per-node precision allowed is made,
    and made again with some nodes held in fp32 (the precision search's bisection over the most sensitive)."""

    graph: Graph
    measured: MeasuredSpace
    objective: str = "latency"

    def plan(self, precision: str, float_nodes: frozenset[str] = frozenset()) -> PerNodePlan | None:
        """The optimum with `precision` allowed beside fp32 on every node but `float_nodes`; None when the
        profile measured no node in it or the optimum takes none."""
        held = {id(o) for name, opts in zip(self.measured.nodes, self.measured.options, strict=True)
                if name in float_nodes for o in opts if o.precision == precision}
        space = self.measured.view({"fp32", precision}, admit=lambda o: _admitted(o) and id(o) not in held)[0]
        if not any(o.precision == precision for opts in space.options for o in opts):
            return None
        best = get_strategy("exact").search(space, 1, 0, self.objective, None)
        n = sum(1 for i, c in enumerate(best.best_choice) if space.options[i][c].precision == precision)
        if not n:
            return None
        meta = {"node_precision": precision, **({"held_fp32": sorted(float_nodes)} if float_nodes else {})}
        plan = to_plan(self.graph, space, best.best_choice, meta)
        held_note = f", {len(float_nodes)} most sensitive held fp32" if float_nodes else ""
        return (f"per-node {precision} ({n} nodes{held_note}) + fp32, exact optimum of the measured space", plan,
                space.cost_model.predict(best.best_choice))

    def plans(self) -> list[PerNodePlan]:
        """The optimum per per-node precision, where it takes some node in that precision."""
        return [p for p in (self.plan(precision) for precision in NODE_PRECISIONS) if p is not None]


def node_precision_planner(graph: Graph, db: ProfileDB, threads: list[int], objective: str = "latency"
                           ) -> NodePrecisionPlanner:
    """The planner over the DB's measurements of every per-node precision (the DB read once)."""
    return NodePrecisionPlanner(graph, measure_space(graph, db, threads, {"fp32", *NODE_PRECISIONS}), objective)


def node_precision_plans(graph: Graph, db: ProfileDB, threads: list[int], objective: str = "latency"
                         ) -> list[PerNodePlan]:
    """(name, plan, predicted ms) of the design space's exact optimum with each per-node precision allowed
    beside fp32, where the profile measured some node in it and the optimum uses it."""
    return node_precision_planner(graph, db, threads, objective).plans()
