"""Plan -> predicted latency, from the measured tables.

Kept tiny on purpose: the prediction is linear in the per-node and per-edge tables, which is what lets
the exact solver (DP / MILP) optimise precisely what the heuristics evaluate. The per-step dispatch
overhead (measured elsewhere: the executor's cost of launching one step) is folded into those tables,
so it stays linear: every node is one step, and an edge whose transition cost is positive runs one
converter step; a zero cost (formats match) or a negative one (two nodes fused into one library
session) adds no step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class CostModel:
    """Predicts a plan's latency in ms = node times + edge costs + dispatch_ms_per_step * steps.

    `node_ms[i]` holds one time per option of node i, `edge_ms[e]` an (options of producer, options of
    consumer) matrix for `edges[e]`. `node_table` / `edge_table` are the same tables with the dispatch
    overhead folded in; strategies read those so that they optimise exactly `predict`.
    """

    def __init__(
        self,
        node_ms: Sequence[Sequence[float]],
        edges: Sequence[tuple[int, int]],
        edge_ms: Sequence[np.ndarray],
        dispatch_ms_per_step: float = 0.0,
    ) -> None:
        self.edges = [(int(i), int(j)) for i, j in edges]
        self.dispatch_ms_per_step = float(dispatch_ms_per_step)
        d = self.dispatch_ms_per_step
        self._edge_raw = [np.asarray(m, dtype=np.float64) for m in edge_ms]
        self.node_table = [np.asarray(t, dtype=np.float64) + d for t in node_ms]
        self.edge_table = [m + d * (m > 0) for m in self._edge_raw]
        # Flat copies so one plan is predicted with two gathers instead of Python loops.
        counts = np.array([len(t) for t in self.node_table], dtype=np.int64)
        self._node_off = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self._node_flat = np.concatenate(self.node_table) if self.node_table else np.zeros(0)
        self._src = np.array([i for i, _ in self.edges], dtype=np.int64)
        self._dst = np.array([j for _, j in self.edges], dtype=np.int64)
        self._ncols = np.array([m.shape[1] for m in self.edge_table], dtype=np.int64)
        sizes = np.array([m.size for m in self.edge_table], dtype=np.int64)
        self._edge_off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if len(sizes) else sizes
        self._edge_flat = np.concatenate([m.ravel() for m in self.edge_table]) if self.edge_table else np.zeros(0)

    def predict(self, choice: Sequence[int]) -> float:
        """Latency in ms of the plan that runs option `choice[i]` on node i."""
        return float(self.predict_many(np.asarray(choice, dtype=np.int64)[None, :])[0])

    def predict_many(self, choices: np.ndarray) -> np.ndarray:
        """Latency of each row of a (plans, nodes) integer array; vectorised for batch strategies."""
        c = np.asarray(choices, dtype=np.int64)
        total = self._node_flat[self._node_off[None, :] + c].sum(axis=1)
        if len(self.edges):
            idx = self._edge_off[None, :] + c[:, self._src] * self._ncols[None, :] + c[:, self._dst]
            total = total + self._edge_flat[idx].sum(axis=1)
        return total

    def steps(self, choice: Sequence[int]) -> int:
        """Executor steps the plan runs: one per node plus one per converter (positive edge cost)."""
        n_conv = sum(int(self._edge_raw[e][choice[i], choice[j]] > 0) for e, (i, j) in enumerate(self.edges))
        return len(self.node_table) + n_conv
