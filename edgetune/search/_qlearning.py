"""Tabular Q-learning over the layers, after QS-DNN (de Prado et al., DATE 2019).

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


def default_schedule(explore_share: float = 0.3) -> list[tuple[float, float]]:
    """QS-DNN style: epsilon 1.0 for `explore_share` of the episodes, the rest split over 0.9..0.1."""
    rest = (1.0 - explore_share) / len(LEVELS)
    return [(1.0, explore_share)] + [(eps, rest) for eps in LEVELS]


@dataclass
class _Walk:
    """The facts of the space one episode needs at every step, looked up once per search."""

    counts: list[int]
    preds: list[list[tuple[int, int]]]  # per node, (edge, producer) of every edge into it
    main: np.ndarray  # per node, the producer of its first incoming edge (-1 without one): the state
    memory: bool  # reward in bytes (memory objective) rather than ms
    node_table: list[np.ndarray]
    edge_table: list[np.ndarray]
    weights: list[np.ndarray]
    workspace: list[np.ndarray]

    @classmethod
    def of(cls, space: DesignSpace, memory: bool) -> _Walk:
        """Gather the tables from `space` (the cost model's, as the scorer uses them)."""
        preds = [space.predecessors(t) for t in range(len(space.nodes))]
        main = np.array([p[0][1] if p else -1 for p in preds], dtype=np.int64)
        model = space.cost_model
        return cls(list(space.n_options), preds, main, memory, model.node_table, model.edge_table,
                   space.weight_table(), space.workspace_table())

    def step_latency(self, t: int, a: int, choice: np.ndarray) -> float:
        """Node t's time with option a plus the conversions from its already-chosen producers."""
        c = self.node_table[t][a]
        for e, p in self.preds[t]:
            c += self.edge_table[e][choice[p], a]
        return c

    def q_entries(self) -> int:
        """Reachable (node, state, action) entries: options of t times options of its main producer."""
        c, m = self.counts, self.main
        return int(sum(c[t] * (c[m[t]] if m[t] >= 0 else 1) for t in range(len(c))))


class _Replay:
    """FIFO buffer of past episodes (states, actions, rewards), replayed in random batches."""

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

    State at node t: (t, option chosen for t's main predecessor), the main predecessor being the
    producer of the first edge into t (0 for a node without one). Action: t's option. Reward: minus
    (t's time + the conversion costs of every edge into t from its already-chosen producers), so an
    episode's rewards sum to minus the plan's latency. For the memory objective the reward is minus
    (t's weight bytes + the growth of the largest workspace so far); when a plan breaks `max_memory`,
    the penalty (see `objective.Scorer`) is added to the last step's cost.

    Hyper-parameters (all reported in `meta`):
    - alpha: learning rate of Q(s,a) += alpha * (r + gamma * max_a' Q(s',a') - Q(s,a)); default 0.5:
      measured costs are deterministic, so a high rate learns faster (60x8 DAG, 1000 episodes: 1.02x the
      optimum at 0.5 against 1.29x at QS-DNN's 0.05; bench/search_synthetic.py).
    - gamma: discount; default 0.9 (QS-DNN).
    - schedule: list of (epsilon, share of the episodes); default epsilon 1.0 for 30 % of the episodes
      then 0.9, 0.8, ..., 0.1 sharing the rest equally (QS-DNN's stepped epsilon-greedy).
    - replay_capacity: episodes kept in the replay buffer (FIFO); default 512.
    - replay_batch: past episodes replayed after each episode; default 8.
    - q_init: initial Q value; default 0.0 (optimistic, as all rewards are costs).
    - final_greedy: spend the last evaluation on the pure greedy policy (epsilon 0); default True.
    Q updates sweep each episode backwards (last node first) so costs propagate in one pass; a replay
    batch is updated layer by layer, vectorised over the episodes of the batch.
    The best plan seen in any episode is returned.
    """

    name = "qlearning"
    summary = "QS-DNN tabular Q-learning with experience replay"

    def __init__(
        self,
        alpha: float = 0.5,
        gamma: float = 0.9,
        schedule: Sequence[tuple[float, float]] | None = None,
        replay_capacity: int = 512,
        replay_batch: int = 8,
        q_init: float = 0.0,
        final_greedy: bool = True,
    ) -> None:
        self.alpha = alpha
        self.gamma = gamma
        self.schedule = list(schedule) if schedule is not None else default_schedule()
        if not self.schedule or any(s < 0 for _, s in self.schedule) or sum(s for _, s in self.schedule) <= 0:
            raise EdgetuneError(f"bad epsilon schedule {self.schedule!r}")
        self.replay_capacity = replay_capacity
        self.replay_batch = replay_batch
        self.q_init = q_init
        self.final_greedy = final_greedy

    def hyper_parameters(self) -> dict[str, Any]:
        """The settings, for the report."""
        return {
            "alpha": self.alpha,
            "gamma": self.gamma,
            "schedule": [list(x) for x in self.schedule],
            "replay_capacity": self.replay_capacity,
            "replay_batch": self.replay_batch,
            "q_init": self.q_init,
            "final_greedy": self.final_greedy,
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
        walk = _Walk.of(space, evaluate.scorer.objective.kind == "memory")
        q = self._initial_q(space.n_options)
        replay = _Replay(self.replay_capacity, len(space.nodes))
        episodes = evaluate.remaining
        eps_of = self._episode_epsilons(episodes)
        final_cost = None
        for ep in range(episodes):
            state, choice, reward = self._episode(walk, q, eps_of[ep], rng)
            score = evaluate(choice)
            value = -reward.sum()
            reward[-1] -= score - value  # the memory-limit penalty, if any (0 otherwise up to rounding)
            if ep == episodes - 1 and eps_of[ep] == 0.0:
                final_cost = score
            replay.store(state, choice, reward)
            self._update(q, state[None, :], choice[None, :], reward[None, :])
            if self.replay_batch > 0 and replay.size > 1:
                self._update(q, *replay.sample(self.replay_batch, rng))
        meta = self.hyper_parameters()
        meta.update(episodes=episodes, q_entries=walk.q_entries(), final_policy_score=final_cost)
        return meta

    def _initial_q(self, counts: Sequence[int]) -> np.ndarray:
        """Q[t, s, a] = q_init, padded to the widest node; padding is -inf so an invalid action never wins a max."""
        amax = max(counts)
        q = np.full((len(counts), amax, amax), self.q_init, dtype=np.float64)
        for t, k in enumerate(counts):
            q[t, :, k:] = -np.inf
        return q

    def _episode_epsilons(self, episodes: int) -> np.ndarray:
        """Epsilon per episode: the schedule over the exploring episodes, then 0 for the final greedy one."""
        explore = episodes - 1 if self.final_greedy and episodes > 1 else episodes
        return np.concatenate([self._epsilons(explore), np.zeros(episodes - explore)])

    def _episode(
        self, walk: _Walk, q: np.ndarray, eps: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One epsilon-greedy walk over the nodes in order: (states, actions = the plan, rewards)."""
        n = len(walk.counts)
        choice = np.zeros(n, dtype=np.int64)
        state = np.zeros(n, dtype=np.int64)
        reward = np.zeros(n, dtype=np.float64)
        ws_max = 0
        for t in range(n):
            s = int(choice[walk.main[t]]) if walk.main[t] >= 0 else 0
            state[t] = s
            if rng.random() < eps:
                a = int(rng.integers(walk.counts[t]))
            else:
                row = q[t, s, : walk.counts[t]]
                best = np.flatnonzero(row == row.max())
                a = int(best[0] if len(best) == 1 else best[rng.integers(len(best))])
            choice[t] = a
            if walk.memory:
                grow = max(0, int(walk.workspace[t][a]) - ws_max)
                ws_max += grow
                reward[t] = -float(walk.weights[t][a] + grow)
            else:
                reward[t] = -walk.step_latency(t, a, choice)
        return state, choice, reward

    def _update(self, q: np.ndarray, s: np.ndarray, a: np.ndarray, r: np.ndarray) -> None:
        """Q-learning update of a batch of episodes (s, a, r: (batch, nodes)), swept backwards so each
        layer's target uses the next layer's Q already updated: costs propagate in one pass."""
        n = q.shape[0]
        for t in range(n - 1, -1, -1):
            nxt = q[t + 1, s[:, t + 1], :].max(axis=1) if t + 1 < n else 0.0
            cur = q[t, s[:, t], a[:, t]]
            q[t, s[:, t], a[:, t]] = cur + self.alpha * (r[:, t] + self.gamma * nxt - cur)
