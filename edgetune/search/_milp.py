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


@dataclass
class _EdgeBlock:
    """The y variables of one non-separable edge i -> j: a (row classes x column classes) grid from
    column `offset`; `row_of[a]` / `col_of[b]` give the class of i's option a / j's option b."""

    i: int
    j: int
    offset: int
    row_of: np.ndarray
    col_of: np.ndarray


class _Rows:
    """Constraint rows as COO triplets, appended block by block; `count` is the next free row, so each
    block numbers its rows without the caller tracking an offset."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.count = 0

    def add(self, rows: list[np.ndarray], cols: list[np.ndarray], vals: list[np.ndarray], n_rows: int) -> None:
        """Append triplets whose row indices are already absolute, then claim `n_rows` rows."""
        self.rows += rows
        self.cols += cols
        self.vals += vals
        self.count += n_rows

    def matrix(self, nvar: int) -> Any:
        """The rows so far as a CSR matrix with `nvar` columns."""
        data = (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols)))
        return coo_array(data, shape=(self.count, nvar)).tocsr()


class MilpModel:
    """The program for one space (and pruned option sets), solvable for several objectives/limits."""

    def __init__(self, space: DesignSpace, keep: list[np.ndarray], memory: bool) -> None:
        self.space = space
        self.keep = keep
        self.memory = memory
        self.sizes = [len(k) for k in keep]
        self.x_off = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.nx = nx = int(self.x_off[-1])
        lat, blocks, y_cost, ny = self._edge_variables()
        self.nvar = ny + (1 if memory else 0)
        self.c_lat = self._latency_objective(lat, y_cost, ny)
        rows = _Rows()
        self._one_option_rows(rows)
        self._marginal_rows(rows, blocks)
        n_eq = rows.count
        lb_w = 0.0
        if memory:
            self.c_mem = self._memory_objective(w_col=ny)
            lb_w = self._workspace_rows(rows, w_col=ny)
        self.base = self._base_constraint(rows, n_eq)
        self.integrality = np.zeros(self.nvar)
        self.integrality[:nx] = 1
        self.bounds = self._bounds(lb_w)
        self.n_constraints = rows.count

    def _edge_variables(self) -> tuple[list[np.ndarray], list[_EdgeBlock], list[np.ndarray], int]:
        """Per node the latency of its kept options, with separable edges folded in (they need no y), and
        the y blocks of the other edges, identical rows/columns merged into classes to shrink the program.

        Returns (node latencies, edge blocks, each block's costs flattened, first column after the y)."""
        model, keep = self.space.cost_model, self.keep
        lat = [model.node_table[i][keep[i]].copy() for i in range(len(self.space.nodes))]
        blocks: list[_EdgeBlock] = []
        y_cost: list[np.ndarray] = []
        ny = self.nx
        for e, (i, j) in enumerate(self.space.edges):
            m = model.edge_table[e][np.ix_(keep[i], keep[j])]
            sep = m[:, :1] + m[:1, :] - m[0, 0]
            if np.abs(m - sep).max() <= 1e-12 * max(1.0, np.abs(m).max()):
                lat[i] += m[:, 0]
                lat[j] += m[0, :] - m[0, 0]
                continue
            rows_u, row_of = np.unique(m, axis=0, return_inverse=True)
            cols_u, col_of = np.unique(rows_u, axis=1, return_inverse=True)
            blocks.append(_EdgeBlock(i, j, ny, row_of.ravel(), col_of.ravel()))
            y_cost.append(cols_u.ravel())
            ny += cols_u.size
        return lat, blocks, y_cost, ny

    def _latency_objective(self, lat: list[np.ndarray], y_cost: list[np.ndarray], ny: int) -> np.ndarray:
        """Latency coefficients (ms): node costs on x, conversion costs on y, 0 on w."""
        c_lat = np.zeros(self.nvar)
        c_lat[: self.nx] = np.concatenate(lat)
        if y_cost:
            c_lat[self.nx : ny] = np.concatenate(y_cost)
        return c_lat

    def _one_option_rows(self, rows: _Rows) -> None:
        """sum_a x[i,a] = 1 per node: every node runs exactly one option."""
        for i, size in enumerate(self.sizes):
            r = rows.count
            rows.add([np.full(size, r)], [np.arange(self.x_off[i], self.x_off[i + 1])], [np.ones(size)], 1)

    def _marginal_rows(self, rows: _Rows, blocks: list[_EdgeBlock]) -> None:
        """Per edge block, sum_b y = x[i,a] per row class and sum_a y = x[j,b] per column class: with x
        binary these force y to the product of the two choices (see the module docstring)."""
        for b in blocks:
            ki, kj = int(b.row_of.max()) + 1, int(b.col_of.max()) + 1
            grid = b.offset + np.arange(ki * kj).reshape(ki, kj)
            r = rows.count
            rows.add(
                [np.repeat(r + np.arange(ki), kj), r + b.row_of],
                [grid.ravel(), self.x_off[b.i] + np.arange(self.sizes[b.i])],
                [np.ones(ki * kj), -np.ones(self.sizes[b.i])],
                ki,
            )
            r = rows.count
            rows.add(
                [np.tile(r + np.arange(kj), ki), r + b.col_of],
                [grid.ravel(), self.x_off[b.j] + np.arange(self.sizes[b.j])],
                [np.ones(ki * kj), -np.ones(self.sizes[b.j])],
                kj,
            )

    def _memory_objective(self, w_col: int) -> np.ndarray:
        """Memory coefficients (KiB, to keep them well scaled): weight bytes on x plus the workspace w."""
        weights = self.space.weight_table()
        c_mem = np.zeros(self.nvar)
        c_mem[: self.nx] = np.concatenate([weights[i][k] for i, k in enumerate(self.keep)]) / KIB
        c_mem[w_col] = 1.0
        return c_mem

    def _workspace_rows(self, rows: _Rows, w_col: int) -> float:
        """sum_a ws[i,a] x[i,a] <= w per node (KiB), so w is at least the largest chosen workspace.

        A node whose kept options share one workspace size needs no row: it only raises w's lower bound,
        which is returned."""
        n = len(self.space.nodes)
        ws = self.space.workspace_table()
        lb_w = 0.0
        for i in range(n):
            wsi = ws[i][self.keep[i]] / KIB
            if wsi.min() == wsi.max():
                lb_w = max(lb_w, float(wsi[0]))
                continue
            r = rows.count
            rows.add(
                [np.full(self.sizes[i], r), np.array([r])],
                [np.arange(self.x_off[i], self.x_off[i + 1]), np.array([w_col])],
                [wsi, np.array([-1.0])],
                1,
            )
        return lb_w

    def _base_constraint(self, rows: _Rows, n_eq: int) -> LinearConstraint:
        """All rows as one constraint: the first n_eq are equalities (= 1 for the one-option rows, one
        per node, = 0 for the marginals), the workspace rows after them are <= 0."""
        n = len(self.space.nodes)
        lo = np.concatenate([np.r_[np.ones(n), np.zeros(n_eq - n)], np.full(rows.count - n_eq, -np.inf)])
        hi = np.concatenate([np.r_[np.ones(n), np.zeros(n_eq - n)], np.zeros(rows.count - n_eq)])
        return LinearConstraint(rows.matrix(self.nvar), lo, hi)

    def _bounds(self, lb_w: float) -> Bounds:
        """x and y in [0, 1]; w (the last variable, when memory matters) in [lb_w, inf)."""
        ub = np.ones(self.nvar)
        lb = np.zeros(self.nvar)
        if self.memory:
            ub[-1], lb[-1] = np.inf, lb_w
        return Bounds(lb, ub)

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
