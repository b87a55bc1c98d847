"""Simulated annealing with single-node moves and a geometric temperature schedule."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgetune.search._base import Evaluator, Strategy
from edgetune.search.space import DesignSpace


class Anneal(Strategy):
    """Simulated annealing over plans.

    Starts from the greedy plan (1 evaluation). Each step changes one random node (among those with
    more than one option) to a different random option and evaluates the whole plan (1 evaluation);
    a worse plan is accepted with probability exp(-delta / T). T falls geometrically from
    `t_start * |start score|` to `t_end * |start score|` over the budget, so the schedule is scale-free
    (ms or bytes alike).

    Hyper-parameters: t_start (default 0.05), t_end (default 1e-4), both relative to the start score.
    """

    name = "anneal"
    summary = "simulated annealing from the greedy plan, one layer changed per step"

    def __init__(self, t_start: float = 0.05, t_end: float = 1e-4) -> None:
        self.t_start = t_start
        self.t_end = t_end

    def _run(self, space: DesignSpace, evaluate: Evaluator, rng: np.random.Generator) -> dict[str, Any]:
        meta = {"t_start": self.t_start, "t_end": self.t_end, "start": "greedy", "accepted": 0}
        cur = evaluate.scorer.greedy_choice()
        cur_s = evaluate(cur)
        movable = [i for i, k in enumerate(space.n_options) if k > 1]
        steps = evaluate.remaining
        if not movable or steps <= 0:
            return meta
        scale = abs(cur_s) or 1.0
        t0, t1 = self.t_start * scale, self.t_end * scale
        ratio = (t1 / t0) ** (1.0 / max(1, steps - 1))
        temp = t0
        while evaluate.remaining > 0:
            i = movable[int(rng.integers(len(movable)))]
            k = space.n_options[i]
            new = int(rng.integers(k - 1))
            new += new >= cur[i]  # a different option, uniformly
            cand = list(cur)
            cand[i] = new
            s = evaluate(cand)
            if s <= cur_s or rng.random() < math.exp(-(s - cur_s) / temp):
                cur, cur_s = cand, s
                meta["accepted"] += 1
            temp *= ratio
        return meta
