"""Thread placement on CPUs with core clusters (big.LITTLE), chosen by measurement (issue 16, item 2).

Why: on a CPU with big and little cores, whether a plan runs faster on all of them or on the big cluster
alone (or, for a small model, on the little one beside other work) depends on the model and the board; the
scheduler does not know. So where the device has two clusters or more, the chosen plan is run on each
placement (device.placement: all cores, then each cluster), its thread counts capped at the placement's
cores, side by side in one alternating run, and the fastest is kept; the plan records it and the executor
pins its pools and each inference there. On a CPU with one kind of core nothing is offered or measured.

Limits: the placement is chosen for the whole plan, from the profile taken wherever the scheduler ran it;
per-segment placements would need a profile per cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from edgetune.device.placement import Placement, placements
from edgetune.graph.ir import Graph
from edgetune.measure.compare import COMPARE_BLOCK, COMPARE_SETTLE_S
from edgetune.measure.timing import time_alternating
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import NodeChoice, Plan

PLACEMENT_MARGIN = 0.03  # a cluster replaces all cores only when that much faster


def placed_plan(plan: Plan, where: Placement) -> Plan:
    """`plan` on `where`'s cpus, every thread count capped at their number."""
    n = len(where.cpus)
    choices = {k: NodeChoice(c.primitive, min(c.threads, n)) for k, c in plan.choices.items()}
    segments = None if plan.segments is None else [replace(s, threads=min(s.threads, n)) for s in plan.segments]
    return replace(plan, choices=choices, segments=segments, placement=where.to_dict(), meta=dict(plan.meta))


def choose_placement(graph: Graph, executor: Executor, feeds: dict[str, np.ndarray], clusters: Sequence[dict[str, Any]],
                     time_cap_s: float, console: Any) -> tuple[dict[str, Any] | None, Executor]:
    """Measure `executor`'s plan on every placement; returns (what was measured and chosen, or None where the
    CPU has one cluster; the executor to keep: `executor` itself unless a cluster won)."""
    options = placements(clusters)
    if not options:
        return None, executor
    runs = {options[0].label: executor}
    for where in options[1:]:
        runs[where.label] = Executor(graph, placed_plan(executor.plan, where))
    console.print(f"placement: timing the plan on {', '.join(runs)} side by side...")
    timings = time_alternating({k: (lambda ex=ex: ex.run(feeds)) for k, ex in runs.items()}, time_cap_s=time_cap_s,
                               target_rel_ci=0.02, block=COMPARE_BLOCK, settle_s=COMPARE_SETTLE_S)
    rows = [{**where.to_dict(), "median_ms": timings[where.label].median_ms} for where in options]
    fastest = min(rows, key=lambda r: r["median_ms"])
    every = rows[0]
    chosen = fastest if fastest["median_ms"] < every["median_ms"] * (1 - PLACEMENT_MARGIN) else every
    console.print("placement: " + ", ".join(f"{r['label']} {r['median_ms']:.2f} ms" for r in rows)
                  + f"; chosen: {chosen['label']}")
    result = {"rows": rows, "chosen": chosen["label"], "placed": chosen is not every}
    return result, runs[chosen["label"]]
