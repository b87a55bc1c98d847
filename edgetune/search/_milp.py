"""The exact formulation of plan selection as a mixed-integer linear program (HiGHS via scipy).

Variables: binary x[i,a] (node i runs option a), continuous y[e,a,b] in [0,1] (edge e sees the pair
(a,b)), and, when memory matters, a continuous w >= every chosen workspace. Constraints: one option
per node; per edge the marginals sum_b y[e,a,b] = x[i,a] and sum_a y[e,a,b] = x[j,b]. With x binary
the marginals force y[e,a,b] = x[i,a] * x[j,b] (they also imply y <= x, so those rows are left out) and
make the LP relaxation tight on trees. An edge whose matrix is separable (M[a,b] = u[a] + v[b], e.g.
all zeros) needs no y: u and v are folded into the node costs. Options with identical rows (or
columns) of an edge matrix, typical when the cost depends only on formats, share one y row (column):
the marginals then sum their x, which stays exact. Memory is counted in KiB to keep the
coefficients well scaled; limits are rounded to whole bytes with half a byte of slack.

`prune` drops options that are provably never needed: option a of node i goes if another kept option
a' costs less in every context (a's best case > a''s worst case over the neighbours' kept options) and,
when memory matters, a' also has no more weight and workspace bytes. Then some optimal (and every
Pareto-optimal trade-off) plan survives, so the pruned problem has the same optimum.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from edgetune.search.space import DesignSpace

KIB = 1024.0
STATUS = {0: "optimal", 1: "limit reached", 2: "infeasible", 3: "unbounded", 4: "solver error"}


def prune(space: DesignSpace, memory: bool, rounds: int = 5) -> list[np.ndarray]:
    """Per node, the original indices of the options worth keeping (see the module docstring)."""
    model = space.cost_model
    n = len(space.nodes)
    keep = [np.arange(k) for k in space.n_options]
    weights, ws = space.weight_table(), space.workspace_table()
    incident: list[list[tuple[int, int, bool]]] = [[] for _ in range(n)]
    for e, (i, j) in enumerate(space.edges):
        incident[i].append((e, j, True))
        incident[j].append((e, i, False))
    for _ in range(rounds):
        changed = False
        for i in range(n):
            if len(keep[i]) < 2:
                continue
            opts = keep[i]
            best = model.node_table[i][opts].copy()
            worst = best.copy()
            for e, other, out in incident[i]:
                m = model.edge_table[e]
                sub = m[np.ix_(opts, keep[other])] if out else m[np.ix_(keep[other], opts)].T
                best += sub.min(axis=1)
                worst += sub.max(axis=1)
            drop = np.zeros(len(opts), dtype=bool)
            for a in range(len(opts)):
                for b in range(len(opts)):
                    if b == a or drop[b] or not best[a] > worst[b]:
                        continue
                    if memory and (weights[i][opts[b]] > weights[i][opts[a]] or ws[i][opts[b]] > ws[i][opts[a]]):
                        continue
                    drop[a] = True
                    break
            if drop.any():
                keep[i] = opts[~drop]
                changed = True
        if not changed:
            break
    return keep


@dataclass
class MilpSolution:
    """A solved program: the plan (original option indices) and the solver's report."""

    choice: list[int] | None
    status: int
    message: str
    objective: float | None
    mip_gap: float | None
    dual_bound: float | None
    seconds: float

    @property
    def optimal(self) -> bool:
        """HiGHS proved optimality (status 0)."""
        return self.status == 0 and self.choice is not None

    def report(self) -> dict[str, Any]:
        """Facts for SearchResult.meta."""
        return {
            "milp_status": STATUS.get(self.status, str(self.status)),
            "milp_message": self.message,
            "mip_gap": self.mip_gap,
            "mip_dual_bound": self.dual_bound,
            "proven_optimal": self.optimal,
            "solve_s": round(self.seconds, 4),
        }


class MilpModel:
    """The program for one space (and pruned option sets), solvable for several objectives/limits."""

    def __init__(self, space: DesignSpace, keep: list[np.ndarray], memory: bool) -> None:
        model = space.cost_model
        self.space = space
        self.keep = keep
        n = len(space.nodes)
        sizes = [len(k) for k in keep]
        self.x_off = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        nx = int(self.x_off[-1])
        lat = [model.node_table[i][keep[i]].copy() for i in range(n)]
        y_cost: list[np.ndarray] = []
        y_edges: list[tuple[int, int, int, np.ndarray, np.ndarray]] = []  # (i, j, offset, row/col class)
        ny = nx
        for e, (i, j) in enumerate(space.edges):
            m = model.edge_table[e][np.ix_(keep[i], keep[j])]
            sep = m[:, :1] + m[:1, :] - m[0, 0]
            if np.abs(m - sep).max() <= 1e-12 * max(1.0, np.abs(m).max()):
                lat[i] += m[:, 0]
                lat[j] += m[0, :] - m[0, 0]
                continue
            rows_u, row_of = np.unique(m, axis=0, return_inverse=True)
            cols_u, col_of = np.unique(rows_u, axis=1, return_inverse=True)
            y_edges.append((i, j, ny, row_of.ravel(), col_of.ravel()))
            y_cost.append(cols_u.ravel())
            ny += cols_u.size
        self.memory = memory
        nvar = ny + (1 if memory else 0)
        self.nvar, self.nx = nvar, nx
        self.c_lat = np.zeros(nvar)
        self.c_lat[:nx] = np.concatenate(lat)
        if y_cost:
            self.c_lat[nx:ny] = np.concatenate(y_cost)
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        r = 0
        for i in range(n):  # one option per node
            rows.append(np.full(sizes[i], r))
            cols.append(np.arange(self.x_off[i], self.x_off[i + 1]))
            vals.append(np.ones(sizes[i]))
            r += 1
        for i, j, off, row_of, col_of in y_edges:  # marginals, per row class and per column class
            ki, kj = int(row_of.max()) + 1, int(col_of.max()) + 1
            grid = off + np.arange(ki * kj).reshape(ki, kj)
            rows += [np.repeat(r + np.arange(ki), kj), r + row_of]
            cols += [grid.ravel(), self.x_off[i] + np.arange(sizes[i])]
            vals += [np.ones(ki * kj), -np.ones(sizes[i])]
            r += ki
            rows += [np.tile(r + np.arange(kj), ki), r + col_of]
            cols += [grid.ravel(), self.x_off[j] + np.arange(sizes[j])]
            vals += [np.ones(ki * kj), -np.ones(sizes[j])]
            r += kj
        n_eq = r
        lb_w = 0.0
        if memory:
            w_col = ny
            weights, ws = space.weight_table(), space.workspace_table()
            self.c_mem = np.zeros(nvar)
            self.c_mem[:nx] = np.concatenate([weights[i][keep[i]] for i in range(n)]) / KIB
            self.c_mem[w_col] = 1.0
            for i in range(n):
                wsi = ws[i][keep[i]] / KIB
                if wsi.min() == wsi.max():
                    lb_w = max(lb_w, float(wsi[0]))
                    continue
                rows += [np.full(sizes[i], r), np.array([r])]
                cols += [np.arange(self.x_off[i], self.x_off[i + 1]), np.array([w_col])]
                vals += [wsi, np.array([-1.0])]
                r += 1
        a = coo_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, nvar)).tocsr()
        lo = np.concatenate([np.r_[np.ones(n), np.zeros(n_eq - n)], np.full(r - n_eq, -np.inf)])
        hi = np.concatenate([np.r_[np.ones(n), np.zeros(n_eq - n)], np.zeros(r - n_eq)])
        self.base = LinearConstraint(a, lo, hi)
        self.integrality = np.zeros(nvar)
        self.integrality[:nx] = 1
        ub = np.ones(nvar)
        lb = np.zeros(nvar)
        if memory:
            ub[-1], lb[-1] = np.inf, lb_w
        self.bounds = Bounds(lb, ub)
        self.n_constraints = r

    def solve(
        self,
        minimise: str = "latency",
        max_memory: int | None = None,
        max_latency: float | None = None,
        time_limit: float = 60.0,
    ) -> MilpSolution:
        """Minimise "latency" (ms) or "memory" (bytes) under optional limits; returns the plan.

        HiGHS accepts x within 1e-6 of an integer, which times a large byte coefficient can let a plan
        exceed a limit by a little; the chosen plan is therefore checked with exact arithmetic and, if
        it breaks a limit, a no-good cut (sum of its x <= nodes - 1) excludes exactly that plan and the
        program is solved again. No feasible plan is lost, so the result stays exact.
        """
        mem_rhs = None if max_memory is None else (max_memory + 0.5) / KIB
        cuts: list[list[int]] = []
        sol = self._solve_once(minimise, mem_rhs, max_latency, time_limit, cuts)
        for _ in range(50):
            if sol.choice is None:
                break
            over_mem = max_memory is not None and self.space.plan_memory(sol.choice) > max_memory
            lat = self.space.cost_model.predict(sol.choice)
            over_lat = max_latency is not None and lat > max_latency + 1e-9 * max(1.0, abs(max_latency))
            if not (over_mem or over_lat):
                break
            cuts.append(sol.choice)
            sol = self._solve_once(minimise, mem_rhs, max_latency, time_limit, cuts)
        return sol

    def _solve_once(
        self, minimise: str, mem_rhs: float | None, lat_rhs: float | None, time_limit: float, cuts: list[list[int]]
    ) -> MilpSolution:
        """One HiGHS run with the limits as given right-hand sides (KiB, ms) and no-good cuts."""
        cons = [self.base]
        for plan in cuts:
            row = np.zeros(self.nvar)
            for i, c in enumerate(plan):
                row[self.x_off[i] + int(np.flatnonzero(self.keep[i] == c)[0])] = 1.0
            cons.append(LinearConstraint(row[None, :], -np.inf, len(plan) - 1))
        if mem_rhs is not None:
            cons.append(LinearConstraint(self.c_mem[None, :], -np.inf, mem_rhs))
        if lat_rhs is not None:
            cons.append(LinearConstraint(self.c_lat[None, :], -np.inf, lat_rhs))
        c = self.c_lat if minimise == "latency" else self.c_mem
        t0 = time.perf_counter()
        with _quiet_stdout():
            res = milp(
                c,
                integrality=self.integrality,
                bounds=self.bounds,
                constraints=cons,
                options={"time_limit": time_limit, "mip_rel_gap": 0.0, "presolve": True, "disp": False},
            )
        secs = time.perf_counter() - t0
        choice = None
        if res.x is not None:
            x = res.x
            choice = [int(k[np.argmax(x[self.x_off[i] : self.x_off[i + 1]])]) for i, k in enumerate(self.keep)]
        scale = 1.0 if minimise == "latency" else KIB
        fun = None if res.fun is None else float(res.fun) * scale
        bound = getattr(res, "mip_dual_bound", None)
        return MilpSolution(
            choice=choice,
            status=int(res.status),
            message=str(res.message),
            objective=fun,
            mip_gap=None if getattr(res, "mip_gap", None) is None else float(res.mip_gap),
            dual_bound=None if bound is None else float(bound) * scale,
            seconds=secs,
        )


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """HiGHS prints some diagnostics from C straight to file descriptor 1, which would corrupt
    `edgetune ... --json` output: point fd 1 at /dev/null while it solves."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
