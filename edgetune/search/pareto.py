"""The exact latency/memory Pareto front, by the epsilon-constraint method over the MILP.

Each point comes from two solves: the fastest plan under a memory limit, then the smallest plan that
is no slower (so every point is truly non-dominated, not just fastest-at-its-limit).
"""

from __future__ import annotations

import numpy as np

from edgetune.errors import EdgetuneError
from edgetune.search._milp import MilpModel, MilpSolution, prune
from edgetune.search.objective import Objective, Scorer
from edgetune.search.space import DesignSpace

ParetoPoint = tuple[float, int, list[int]]


def pareto_front(
    space: DesignSpace,
    points: int = 12,
    exhaustive: bool = False,
    time_limit: float = 60.0,
    max_points: int = 1000,
) -> list[ParetoPoint]:
    """(latency ms, memory bytes, choice) points, fastest first, mutually non-dominated.

    The two ends are always the latency optimum and the memory optimum. In between, `points` memory
    limits evenly spaced between the two ends are swept; with `exhaustive` every Pareto point is
    found instead by stepping the limit one byte below the last point (up to `max_points`).
    """
    if points < 2:
        raise EdgetuneError(f"pareto_front needs points >= 2, got {points}")
    scorer = Scorer(space, Objective("latency"))
    milp = MilpModel(space, prune(space, memory=True), memory=True)

    def point(max_memory: int | None) -> ParetoPoint | None:
        fast = milp.solve("latency", max_memory=max_memory, time_limit=time_limit)
        if fast.choice is None:
            return None
        lat = space.cost_model.predict(fast.choice)
        small = milp.solve("memory", max_latency=lat + 1e-9 * max(1.0, abs(lat)), time_limit=time_limit)
        best = _pick(space, scorer, fast, small)
        return space.cost_model.predict(best), scorer.memory(best), best

    top = point(None)
    low = milp.solve("memory", time_limit=time_limit)
    if top is None or low.choice is None:
        raise EdgetuneError("pareto_front: the solver found no plan")
    bottom = point(scorer.memory(low.choice))
    found = [top] + ([bottom] if bottom is not None else [])
    m_hi, m_lo = top[1], found[-1][1]
    if exhaustive:
        cur = m_hi
        while cur > m_lo and len(found) < max_points:
            p = point(cur - 1)
            if p is None or p[1] >= cur:
                break
            found.append(p)
            cur = p[1]
    else:
        for lim in np.linspace(m_lo, m_hi, points)[1:-1]:
            p = point(int(lim))
            if p is not None:
                found.append(p)
    return _non_dominated(found)


def _pick(space: DesignSpace, scorer: Scorer, fast: MilpSolution, small: MilpSolution) -> list[int]:
    """The second-stage plan when it is valid and no worse; the first-stage one otherwise."""
    if small.choice is None:
        return list(fast.choice or [])
    lf, ls = space.cost_model.predict(fast.choice), space.cost_model.predict(small.choice)
    if ls <= lf + 1e-9 * max(1.0, abs(lf)) and scorer.memory(small.choice) <= scorer.memory(fast.choice):
        return small.choice
    return list(fast.choice or [])


def _non_dominated(pts: list[ParetoPoint]) -> list[ParetoPoint]:
    """Drop duplicates and dominated points; sort by latency (memory falls along the list)."""
    out: list[ParetoPoint] = []
    for p in sorted(pts, key=lambda p: (p[0], p[1])):
        if not out or p[1] < out[-1][1]:
            if out and p[0] <= out[-1][0]:  # same latency within float noise but smaller: replace
                out[-1] = p
            else:
                out.append(p)
    return out
