"""The optimum: dynamic programming on chains, variable elimination on DAGs, a MILP (HiGHS) otherwise."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgetune.errors import EdgetuneError
from edgetune.search._base import Evaluator, Strategy
from edgetune.search._elimination import eliminate
from edgetune.search._milp import MilpModel, prune
from edgetune.search.space import DesignSpace

METHODS = ("auto", "dp", "ve", "milp")


def chain_dp(space: DesignSpace) -> tuple[list[int], float]:
    """Viterbi over a chain: min latency plan and its cost, O(nodes * options^2)."""
    if not space.is_chain():
        raise EdgetuneError("dynamic programming needs a chain; use method 'milp' for a DAG")
    model = space.cost_model
    edge_of = {i: e for e, (i, _) in enumerate(space.edges)}
    best = model.node_table[0].copy()
    back: list[np.ndarray] = []
    for j in range(1, len(space.nodes)):
        tot = best[:, None] + model.edge_table[edge_of[j - 1]] + model.node_table[j][None, :]
        back.append(np.argmin(tot, axis=0))
        best = tot.min(axis=0)
    choice = [int(np.argmin(best))]
    for bp in reversed(back):
        choice.append(int(bp[choice[-1]]))
    return choice[::-1], float(best.min())


class Exact(Strategy):
    """Proven-optimal plan (1 evaluation).

    method "auto", for the plain latency objective: dynamic programming on a chain, else variable
    elimination (`_elimination`, exact on any DAG, fast while its tables stay under `max_entries`),
    else the MILP (see `_milp`); memory objectives and limits always use the MILP. "dp", "ve", "milp"
    force one. `prune` (default True) first drops provably dominated options. `time_limit` (s) bounds
    HiGHS; if it is hit, meta says so (proven_optimal False, mip_gap). For the memory objective the
    MILP runs twice: minimum memory, then the fastest plan with that memory. A memory limit no plan can
    meet raises EdgetuneError.
    """

    name = "exact"
    summary = "the proven optimum (chain DP, variable elimination or MILP), 1 evaluation"
    compared = False
    fixed_evaluations = 1
    seeded = False

    def __init__(
        self, method: str = "auto", prune: bool = True, time_limit: float = 60.0, max_entries: int = 4_000_000
    ) -> None:
        if method not in METHODS:
            raise EdgetuneError(f"unknown exact method {method!r}; valid: {', '.join(METHODS)}")
        self.method = method
        self.prune = prune
        self.time_limit = time_limit
        self.max_entries = max_entries

    def _run(self, space: DesignSpace, evaluate: Evaluator, rng: np.random.Generator) -> dict[str, Any]:
        obj = evaluate.scorer.objective
        use_dp = self.method == "dp" or (self.method == "auto" and not obj.uses_memory and space.is_chain())
        if use_dp:
            if obj.uses_memory:
                raise EdgetuneError("dynamic programming only handles the latency objective without a memory limit")
            choice, cost = chain_dp(space)
            evaluate(choice)
            return {"method": "dp", "proven_optimal": True, "dp_cost": cost}
        keep = prune(space, obj.uses_memory) if self.prune else [np.arange(k) for k in space.n_options]
        pruned = int(sum(space.n_options) - sum(len(k) for k in keep))
        if self.method in ("auto", "ve") and not obj.uses_memory:
            meta = self._eliminate(space, keep, evaluate)
            if meta is not None:
                meta["pruned_options"] = pruned
                return meta
            if self.method == "ve":
                raise EdgetuneError(f"variable elimination needs a table over {self.max_entries} entries; use 'milp'")
        elif self.method == "ve":
            raise EdgetuneError("variable elimination only handles the latency objective without a memory limit")
        milp = MilpModel(space, keep, obj.uses_memory)
        meta: dict[str, Any] = {
            "method": "milp",
            "pruned_options": pruned,
            "variables": milp.nvar,
            "constraints": milp.n_constraints,
        }
        if obj.kind == "memory":
            first = milp.solve("memory", max_memory=obj.max_memory, time_limit=self.time_limit)
            self._check(first, obj.max_memory, space)
            meta["min_memory_bytes"] = first.objective
            sol = milp.solve("latency", max_memory=evaluate.scorer.memory(first.choice), time_limit=self.time_limit)
            if sol.choice is None:
                sol = first
            meta.update(sol.report())
            meta["proven_optimal"] = first.optimal
        else:
            sol = milp.solve("latency", max_memory=obj.max_memory, time_limit=self.time_limit)
            self._check(sol, obj.max_memory, space)
            meta.update(sol.report())
        evaluate(sol.choice)
        return meta

    def _eliminate(self, space: DesignSpace, keep: list[np.ndarray], evaluate: Evaluator) -> dict[str, Any] | None:
        """Solve by variable elimination over the kept options; None when the tables grow too big."""
        model = space.cost_model
        unary = [model.node_table[i][k] for i, k in enumerate(keep)]
        pairs = [(i, j, model.edge_table[e][np.ix_(keep[i], keep[j])]) for e, (i, j) in enumerate(space.edges)]
        t0 = time.perf_counter()
        found = eliminate(unary, pairs, self.max_entries)
        if found is None:
            return None
        sub, cost, largest = found
        evaluate([int(keep[i][c]) for i, c in enumerate(sub)])
        return {
            "method": "ve",
            "proven_optimal": True,
            "ve_cost": cost,
            "largest_table": largest,
            "solve_s": round(time.perf_counter() - t0, 4),
        }

    def _check(self, sol: Any, max_memory: int | None, space: DesignSpace) -> None:
        """Turn an infeasible or failed solve into a one-line EdgetuneError."""
        if sol.status == 2 and max_memory is not None:
            raise EdgetuneError(f"no plan fits in max_memory={max_memory} bytes")
        if sol.choice is None:
            raise EdgetuneError(f"exact search failed: {sol.message}")
