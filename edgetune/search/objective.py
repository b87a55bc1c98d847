"""What a search minimises: latency or memory, optionally under a memory limit.

Heuristic strategies need one number per plan, so a plan over `max_memory` gets a penalised score
that is larger than any feasible plan's (a big-M bound from the tables) and grows with the excess;
among feasible plans the score is the plain objective value. The exact solver uses the limit as a
constraint instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgetune.errors import EdgetuneError
from edgetune.search.space import DesignSpace

OBJECTIVES = ("latency", "memory")


@dataclass(frozen=True)
class Objective:
    """`kind` "latency" (ms) or "memory" (bytes, see `DesignSpace.plan_memory`); `max_memory` in bytes."""

    kind: str = "latency"
    max_memory: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in OBJECTIVES:
            raise EdgetuneError(f"unknown objective {self.kind!r}; valid: {', '.join(OBJECTIVES)}")
        if self.max_memory is not None and self.max_memory <= 0:
            raise EdgetuneError(f"max_memory must be a positive number of bytes, got {self.max_memory}")

    @classmethod
    def parse(cls, objective: str | Objective | None = None, max_memory: int | None = None) -> Objective:
        """Accept an Objective, a name, or None (latency); `max_memory` overrides the limit."""
        if isinstance(objective, Objective):
            return objective if max_memory is None else cls(objective.kind, int(max_memory))
        if objective is None:
            objective = "latency"
        if not isinstance(objective, str):
            raise EdgetuneError(f"objective must be a name or an Objective, got {objective!r}")
        return cls(objective, None if max_memory is None else int(max_memory))

    @property
    def uses_memory(self) -> bool:
        """True when memory enters the objective or a constraint (the exact solver needs its terms)."""
        return self.kind == "memory" or self.max_memory is not None


class Scorer:
    """Computes a plan's objective value, feasibility and penalised score on one space."""

    def __init__(self, space: DesignSpace, objective: Objective) -> None:
        self.space = space
        self.objective = objective
        self.model = space.cost_model
        self._weights = space.weight_table()
        self._ws = space.workspace_table()
        # Big-M: the spread between the best and worst conceivable objective value, plus one.
        if objective.kind == "latency":
            lo = sum(t.min() for t in self.model.node_table) + sum(m.min() for m in self.model.edge_table)
            hi = sum(t.max() for t in self.model.node_table) + sum(m.max() for m in self.model.edge_table)
        else:
            lo = sum(int(w.min()) for w in self._weights) + max(int(w.min()) for w in self._ws)
            hi = sum(int(w.max()) for w in self._weights) + max(int(w.max()) for w in self._ws)
        self.big_m = float(hi - lo) + 1.0

    def memory(self, choice: Sequence[int]) -> int:
        """Bytes of the plan (weights + largest workspace)."""
        w = sum(int(self._weights[i][c]) for i, c in enumerate(choice))
        return w + max(int(self._ws[i][c]) for i, c in enumerate(choice))

    def value(self, choice: Sequence[int]) -> float:
        """The raw objective value (ms or bytes)."""
        if self.objective.kind == "latency":
            return self.model.predict(choice)
        return float(self.memory(choice))

    def feasible(self, choice: Sequence[int]) -> bool:
        """True when the plan respects `max_memory` (always true without a limit)."""
        lim = self.objective.max_memory
        return lim is None or self.memory(choice) <= lim

    def score(self, choice: Sequence[int]) -> float:
        """Objective value, plus big-M * (1 + relative excess) when over the memory limit."""
        v = self.value(choice)
        lim = self.objective.max_memory
        if lim is not None:
            mem = self.memory(choice)
            if mem > lim:
                v += self.big_m * (1.0 + (mem - lim) / lim)
        return v

    def greedy_choice(self) -> list[int]:
        """Per node the best option in isolation (fastest, or smallest for memory); ignores edges."""
        if self.objective.kind == "latency":
            return [int(np.argmin(t)) for t in self.model.node_table]
        return [int(np.lexsort((ws, w))[0]) for w, ws in zip(self._weights, self._ws, strict=True)]
