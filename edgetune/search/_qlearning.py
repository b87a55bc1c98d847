"""Tabular Q-learning over the layers, after QS-DNN (de Prado et al., DATE 2019 / TCAD 2021).

The agent walks the nodes in topological order and picks one option per node; one episode builds one
whole plan, which is one evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgetune.errors import EdgetuneError
from edgetune.search._base import Evaluator, Strategy
from edgetune.search.space import DesignSpace

LEVELS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)
STATES = ("frontier", "inputs")


def qsdnn_schedule(explore_share: float = 0.3) -> list[tuple[float, float]]:
    """QS-DNN's stepped epsilon-greedy: epsilon 1.0 for `explore_share` of the episodes, the rest split
    equally over 0.9, 0.8, ..., 0.1."""
    rest = (1.0 - explore_share) / len(LEVELS)
    return [(1.0, explore_share)] + [(eps, rest) for eps in LEVELS]


def default_schedule() -> list[tuple[float, float]]:
    """Epsilon 0 throughout: with the optimistic initial Q (q_init "greedy") the greedy policy explores
    by itself, trying an untried option wherever its optimistic value beats what the tried ones
    returned. Random actions mostly spend evaluations on plans with some slow kernel (bench/search.py)."""
    return [(0.0, 1.0)]


def _row_classes(rows: np.ndarray) -> tuple[np.ndarray, int]:
    """Per row of `rows` (options of a producer x columns), the index of its distinct row, and how many."""
    if rows.shape[1] == 0:
        return np.zeros(rows.shape[0], dtype=np.int64), 1
    _, inverse = np.unique(rows, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    return inverse, int(inverse.max()) + 1


@dataclass
class _Walk:
    """The facts of the space one episode needs at every step, looked up once per search.

    The state at node t is a signature of the options already chosen that the cost still depends on:
    per node u in `signature[t]`, the class of u's option among the options of u whose rows in the edge
    tables of u's relevant out-edges are identical (two options with the same rows cost the same on
    those edges whatever is chosen downstream), packed into one integer.
    """

    counts: list[int]
    preds: list[list[tuple[int, int]]]  # per node, (edge, producer) of every edge into it
    signature: list[list[tuple[int, np.ndarray, int]]]  # per node, (decided node, class per option, radix)
    memory: bool  # reward in bytes (memory objective) rather than ms
    node_table: list[np.ndarray]
    edge_table: list[np.ndarray]
    weights: list[np.ndarray]
    workspace: list[np.ndarray]
    rest: np.ndarray  # per node t, a lower bound on the cost of the nodes after t (optimistic future)

    @classmethod
    def of(cls, space: DesignSpace, memory: bool, state: str) -> _Walk:
        """Gather the tables from `space` (the cost model's, as the scorer uses them)."""
        n = len(space.nodes)
        model = space.cost_model
        preds = [space.predecessors(t) for t in range(n)]
        out: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for e, (i, j) in enumerate(space.edges):
            out[i].append((e, j))
        signature: list[list[tuple[int, np.ndarray, int]]] = []
        for t in range(n):
            sig = []
            if not memory:
                if state == "frontier":  # decided nodes with an edge into t or beyond: the cost to go
                    users = [(u, [e for e, v in out[u] if v >= t]) for u in range(t)]
                else:  # "inputs": t's producers, what t's own cost depends on
                    users = [(p, [e]) for e, p in preds[t]]
                radix = 1
                for u, es in users:
                    if not es:
                        continue
                    klass, k = _row_classes(np.concatenate([model.edge_table[e] for e in es], axis=1))
                    if k > 1:
                        sig.append((u, klass, radix))
                        radix *= k
            signature.append(sig)
        if memory:
            lows = [float(w.min()) for w in space.weight_table()]
        else:  # each node's cheapest option with the cheapest entry of each edge into it
            lows = []
            for t in range(n):
                c = model.node_table[t].copy()
                for e, _ in preds[t]:
                    c += model.edge_table[e].min(axis=0)
                lows.append(float(c.min()))
        rest = np.concatenate([np.cumsum(lows[::-1])[::-1][1:], [0.0]])
        return cls(list(space.n_options), preds, signature, memory, model.node_table, model.edge_table,
                   space.weight_table(), space.workspace_table(), rest)

    def costs(self, t: int, choice: np.ndarray, ws_max: int) -> np.ndarray:
        """The immediate cost of every option of node t given the options chosen before it: its time plus
        the conversions from its producers (ms), or its weights plus the growth of the largest workspace."""
        if self.memory:
            return (self.weights[t] + np.maximum(self.workspace[t] - ws_max, 0)).astype(np.float64)
        c = self.node_table[t].copy()
        for e, p in self.preds[t]:
            c += self.edge_table[e][choice[p]]
        return c

    def key(self, t: int, choice: np.ndarray, ws_max: int) -> int:
        """The state at node t: the packed signature of the decided options (the largest workspace so far
        for the memory objective, which is all the cost to go depends on there)."""
        if self.memory:
            return ws_max
        return sum(int(klass[choice[u]]) * radix for u, klass, radix in self.signature[t])

    def next_keys(self, t: int, choice: np.ndarray, ws_max: int) -> list[int]:
        """The state at node t + 1 after each option of t (the options before t as in `choice`); Python
        integers, as a wide frontier's packed signature may not fit 64 bits."""
        if self.memory:
            return np.maximum(self.workspace[t], ws_max).tolist()
        base, mine = 0, None
        for u, klass, radix in self.signature[t + 1]:
            if u == t:
                mine = (klass, radix)
            else:
                base += int(klass[choice[u]]) * radix
        if mine is None:
            return [base] * self.counts[t]
        return [base + int(c) * mine[1] for c in mine[0]]


class _QTable:
    """Q per node: a row of action values per state met so far (states are created when first visited)."""

    def __init__(self, counts: Sequence[int]) -> None:
        self.index: list[dict[int, int]] = [{} for _ in counts]
        self.q = [np.zeros((8, k)) for k in counts]

    def row(self, t: int, key: int) -> tuple[int, bool]:
        """The row of state `key` at node t, and whether it is new (its values are then to be set)."""
        index = self.index[t]
        r = index.get(key)
        if r is not None:
            return r, False
        r = index[key] = len(index)
        if r == len(self.q[t]):
            self.q[t] = np.concatenate([self.q[t], np.zeros_like(self.q[t])])
        return r, True

    @property
    def entries(self) -> int:
        """(state, action) entries created."""
        return sum(len(i) * q.shape[1] for i, q in zip(self.index, self.q, strict=True))


class _Replay:
    """FIFO buffer of past episodes (state rows, actions, rewards), replayed in random batches."""

    def __init__(self, capacity: int, n: int) -> None:
        self.capacity = capacity
        self.s = np.zeros((capacity, n), dtype=np.int64)
        self.a = np.zeros((capacity, n), dtype=np.int64)
        self.r = np.zeros((capacity, n), dtype=np.float64)
        self.stored = 0

    @property
    def size(self) -> int:
        """Episodes held (at most the capacity)."""
        return min(self.stored, self.capacity)

    def store(self, s: np.ndarray, a: np.ndarray, r: np.ndarray) -> None:
        """Keep one episode, overwriting the oldest when full."""
        slot = self.stored % self.capacity
        self.s[slot], self.a[slot], self.r[slot] = s, a, r
        self.stored += 1

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Up to `batch` held episodes drawn uniformly with replacement."""
        pick = rng.integers(0, self.size, size=min(batch, self.size))
        return self.s[pick], self.a[pick], self.r[pick]


class QLearning(Strategy):
    """QS-DNN's tabular Q-learning with epsilon-greedy exploration and experience replay.

    Episodes walk the nodes in topological order; at node t the agent picks t's option (the action)
    in a state that carries what the cost depends on (`state`):
    - "frontier" (default): the options already chosen for every node before t with an edge into t or
      into a later node, i.e. all the cost of the rest of the plan depends on (t's producers, the inputs
      of residual Adds and Concats still to come, long skip edges), so the process is Markov and Q
      can converge to the optimum's values;
    - "inputs": only t's producers, what t's own cost depends on (fewer states, but the value of an
      action then averages over the skip edges it cannot see).
    Each chosen option enters the state as its class of options with identical rows in the tables of
    the edges concerned (the two cost the same there whatever comes next), packed into one integer;
    states get a Q row when first met. For the memory objective the state is the largest workspace
    chosen so far (all the rest of the plan's bytes depend on).

    Reward: minus the cost model's incremental cost, t's time + the conversion on every edge into t
    (its producers are all chosen: the order is topological), so with gamma 1 the return of an episode
    is minus `CostModel.predict` of its plan. For the memory objective the reward is minus (t's weight
    bytes + the growth of the largest workspace so far), summing to `DesignSpace.plan_memory`; when a
    plan breaks `max_memory`, the penalty (see `objective.Scorer`) is added to the last step's cost.

    Hyper-parameters (all reported in `meta`):
    - alpha: learning rate of Q(s,a) += alpha * (r + gamma * max_a' Q(s',a') - Q(s,a)); default 1.0:
      the costs are deterministic and the default state Markov, so the target needs no averaging.
    - gamma: discount; default 1.0, so Q estimates minus the latency of the rest of the plan
      (QS-DNN: 0.9, which weighs a layer 60 layers ahead 0.002 and so ignores it).
    - schedule: list of (epsilon, share of the episodes); default `default_schedule()`, epsilon 0
      throughout, as the optimistic initial Q explores; `qsdnn_schedule()` is QS-DNN's (epsilon 1.0
      for 30 % of the episodes then 0.9, ..., 0.1).
    - replay_capacity: episodes kept in the replay buffer (FIFO); default 512.
    - replay_batch: past episodes replayed after each episode; default 8.
    - replay_best: also replay the best episode so far after each episode; default True.
    - q_init: Q of a state's actions when the state is first met. "greedy" (default): minus (the
      action's immediate cost, known from the tables, + the value of the state it leads to: that
      state's best Q when it has been met, else a lower bound on the rest of the plan, each later
      node's cheapest option with the cheapest entry of each edge into it). Optimistic: an untried
      action looks at least as good as it can be, so the greedy policy tries it where it may beat the
      tried ones, and the first episode is the conversion-aware greedy plan. A number: that value for
      all (QS-DNN: 0).
    - final_greedy: spend the last evaluation on the pure greedy policy (epsilon 0); default True.
    - state: "frontier" (default) or "inputs", see above.
    Q updates sweep each episode backwards (last node first) so costs propagate in one pass; a replay
    batch is updated layer by layer, vectorised over the episodes of the batch.
    The best plan seen in any episode is returned. Nothing is evaluated but the episodes' plans: the
    tables are read only for the rewards and the initial Q (no solver runs).
    """

    name = "qlearning"
    summary = "QS-DNN tabular Q-learning with experience replay"

    def __init__(
        self,
        alpha: float = 1.0,
        gamma: float = 1.0,
        schedule: Sequence[tuple[float, float]] | None = None,
        replay_capacity: int = 512,
        replay_batch: int = 8,
        replay_best: bool = True,
        q_init: str | float = "greedy",
        final_greedy: bool = True,
        state: str = "frontier",
    ) -> None:
        self.alpha = alpha
        self.gamma = gamma
        self.schedule = list(schedule) if schedule is not None else default_schedule()
        if not self.schedule or any(s < 0 for _, s in self.schedule) or sum(s for _, s in self.schedule) <= 0:
            raise EdgetuneError(f"bad epsilon schedule {self.schedule!r}")
        if q_init != "greedy" and not (isinstance(q_init, int | float) and not isinstance(q_init, bool)):
            raise EdgetuneError(f"q_init must be 'greedy' or a number, got {q_init!r}")
        if state not in STATES:
            raise EdgetuneError(f"unknown Q-learning state {state!r}; valid: {', '.join(STATES)}")
        self.replay_capacity = replay_capacity
        self.replay_batch = replay_batch
        self.replay_best = replay_best
        self.q_init = q_init
        self.final_greedy = final_greedy
        self.state = state

    def hyper_parameters(self) -> dict[str, Any]:
        """The settings, for the report."""
        return {
            "alpha": self.alpha,
            "gamma": self.gamma,
            "schedule": [list(x) for x in self.schedule],
            "replay_capacity": self.replay_capacity,
            "replay_batch": self.replay_batch,
            "replay_best": self.replay_best,
            "q_init": self.q_init,
            "final_greedy": self.final_greedy,
            "state": self.state,
        }

    def _epsilons(self, episodes: int) -> np.ndarray:
        """Epsilon for every episode, following the schedule's shares (rounded, in order)."""
        shares = np.array([s for _, s in self.schedule], dtype=np.float64)
        bounds = np.round(np.cumsum(shares) / shares.sum() * episodes).astype(int)
        eps = np.empty(episodes)
        start = 0
        for (e, _), end in zip(self.schedule, bounds, strict=True):
            eps[start:end] = e
            start = end
        return eps

    def _run(self, space: DesignSpace, evaluate: Evaluator, rng: np.random.Generator) -> dict[str, Any]:
        walk = _Walk.of(space, evaluate.scorer.objective.kind == "memory", self.state)
        table = _QTable(walk.counts)
        replay = _Replay(self.replay_capacity, len(space.nodes))
        episodes = evaluate.remaining
        eps_of = self._episode_epsilons(episodes)
        final_cost = None
        best: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None
        for ep in range(episodes):
            rows, choice, reward = self._episode(walk, table, eps_of[ep], rng)
            score = evaluate(choice)
            value = -reward.sum()
            reward[-1] -= score - value  # the memory-limit penalty, if any (0 otherwise up to rounding)
            if ep == episodes - 1 and eps_of[ep] == 0.0:
                final_cost = score
            replay.store(rows, choice, reward)
            self._update(table, rows[None, :], choice[None, :], reward[None, :])
            if best is None or score < best[0]:
                best = (score, rows, choice, reward)
            if self.replay_batch > 0 and replay.size > 1:
                self._update(table, *replay.sample(self.replay_batch, rng))
            if self.replay_best:
                self._update(table, best[1][None, :], best[2][None, :], best[3][None, :])
        meta = self.hyper_parameters()
        meta.update(episodes=episodes, q_entries=table.entries, final_policy_score=final_cost)
        return meta

    def _initial_q(self, walk: _Walk, table: _QTable, t: int, costs: np.ndarray, choice: np.ndarray,
                   ws_max: int) -> np.ndarray:
        """Q of a state met for the first time at node t, whose actions cost `costs` now (see q_init)."""
        if self.q_init != "greedy":
            return np.full(len(costs), float(self.q_init))
        future = np.full(len(costs), -walk.rest[t])
        if t + 1 < len(walk.counts):
            index, q = table.index[t + 1], table.q[t + 1]
            for a, key in enumerate(walk.next_keys(t, choice, ws_max)):
                r = index.get(key)
                if r is not None:
                    future[a] = q[r].max()
        return -costs + self.gamma * future

    def _episode_epsilons(self, episodes: int) -> np.ndarray:
        """Epsilon per episode: the schedule over the exploring episodes, then 0 for the final greedy one."""
        explore = episodes - 1 if self.final_greedy and episodes > 1 else episodes
        return np.concatenate([self._epsilons(explore), np.zeros(episodes - explore)])

    def _episode(
        self, walk: _Walk, table: _QTable, eps: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One epsilon-greedy walk over the nodes in order: (state rows, actions = the plan, rewards)."""
        n = len(walk.counts)
        choice = np.zeros(n, dtype=np.int64)
        rows = np.zeros(n, dtype=np.int64)
        reward = np.zeros(n, dtype=np.float64)
        ws_max = 0
        for t in range(n):
            costs = walk.costs(t, choice, ws_max)
            r, new = table.row(t, walk.key(t, choice, ws_max))
            if new:
                table.q[t][r] = self._initial_q(walk, table, t, costs, choice, ws_max)
            rows[t] = r
            if rng.random() < eps:
                a = int(rng.integers(walk.counts[t]))
            else:
                q = table.q[t][r]
                best = np.flatnonzero(q == q.max())
                a = int(best[0] if len(best) == 1 else best[rng.integers(len(best))])
            choice[t] = a
            reward[t] = -costs[a]
            if walk.memory:
                ws_max = max(ws_max, int(walk.workspace[t][a]))
        return rows, choice, reward

    def _update(self, table: _QTable, s: np.ndarray, a: np.ndarray, r: np.ndarray) -> None:
        """Q-learning update of a batch of episodes (s: state rows, a, r: (batch, nodes)), swept backwards
        so each layer's target uses the next layer's Q already updated: costs propagate in one pass."""
        n = len(table.q)
        for t in range(n - 1, -1, -1):
            nxt = table.q[t + 1][s[:, t + 1]].max(axis=1) if t + 1 < n else 0.0
            q = table.q[t]
            cur = q[s[:, t], a[:, t]]
            q[s[:, t], a[:, t]] = cur + self.alpha * (r[:, t] + self.gamma * nxt - cur)
