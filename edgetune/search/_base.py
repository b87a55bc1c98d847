"""The one extension point of the search: `Strategy`.

Lifecycle (who calls what, when):
1. The caller (the `tune` command, a benchmark, a test) builds a `DesignSpace` from measurements and
   picks a strategy by name with `get_strategy(name, **hyper_parameters)`.
2. It calls `strategy.search(space, budget, seed, objective)`. The base class validates the input
   (budget >= 1, known objective), builds a `Scorer` for the objective and an `Evaluator` that owns the
   evaluation budget, then calls the subclass's `_run(space, evaluator, rng)` exactly once.
3. `_run` proposes whole plans and asks `evaluator(choice)` for each one's score. The evaluator is
   the only way to score a plan: it counts every call honestly, keeps the best plan and the trace,
   and raises `BudgetExhausted` on the call after the budget is spent (the base class catches it, so a
   strategy may simply loop until it is stopped). `_run` returns a dict of strategy facts (its
   hyper-parameters, solver status...) that lands in `SearchResult.meta`.
4. The base class returns a `SearchResult` with the best plan seen, its objective value, the number of
   evaluations and the (evaluations, best so far) trace.

Adding a strategy: subclass `Strategy`, set its class facts (`name`, `summary`, `compared`,
`comparison_budget_cap`, `fixed_evaluations`, `seeded`) and add the class to the tuple in
`_registry.py`, the one list of strategies. The `tune` help, the report's comparison runs and
bench/search.py derive from it, and tests/test_search.py's contract test checks every registered
strategy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from edgetune.errors import EdgetuneError
from edgetune.search.objective import Objective, Scorer
from edgetune.search.space import DesignSpace

# The keys every SearchResult.meta has, whatever the strategy: callers (the tune loop, the report) read
# them without knowing which strategy ran.
META_KEYS = ("strategy", "objective", "max_memory", "seed", "feasible", "latency_ms", "memory_bytes")


class BudgetExhausted(Exception):
    """Raised by the evaluator when a strategy asks for one evaluation more than its budget."""


@dataclass
class SearchResult:
    """The outcome of one search.

    best_cost is the best plan's objective value (ms for latency, bytes for memory); `trace` holds
    (evaluations, best score so far) at every improvement and at the end, where a score equals the
    objective value for feasible plans (see `objective.Scorer` for the penalty of infeasible ones).
    meta always has the keys of `META_KEYS` (set by `Strategy.search`, whatever the strategy).
    """

    best_choice: list[int]
    best_cost: float
    evaluations: int
    trace: list[tuple[int, float]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


class Evaluator:
    """Scores whole plans within a budget and remembers the best one and the trace."""

    def __init__(self, scorer: Scorer, budget: int, repair: Callable[[Sequence[int]], list[int]] | None = None
                 ) -> None:
        self.scorer = scorer
        self.repair = repair  # makes a proposed plan feasible (all-or-nothing groups) before it is scored
        self.budget = budget
        self.evaluations = 0
        self.best_choice: list[int] | None = None
        self.best_score = float("inf")
        self.trace: list[tuple[int, float]] = []

    @property
    def remaining(self) -> int:
        """Evaluations left."""
        return self.budget - self.evaluations

    def __call__(self, choice: Sequence[int]) -> float:
        """Score one plan (one evaluation); raises BudgetExhausted when the budget is spent."""
        if self.evaluations >= self.budget:
            raise BudgetExhausted
        self.evaluations += 1
        if self.repair is not None:
            choice = self.repair(choice)
        s = self.scorer.score(choice)
        if s < self.best_score:
            self.best_score = s
            self.best_choice = [int(c) for c in choice]
            self.trace.append((self.evaluations, s))
        return s


class Strategy(ABC):
    """Picks one option per node; subclasses implement `_run` (see the module docstring).

    The class facts below are read by the registry (`_registry.py`) so that the lists built from the
    strategies (help text, the comparison runs of the report) need no editing when one is added.
    """

    # The name users pass to `get_strategy` and `--strategy`.
    name: ClassVar[str] = "strategy"
    # One line for the help text: what it does, in a few words.
    summary: ClassVar[str] = ""
    # Run by `tune` beside the chosen strategy for the report's convergence figure. False for the exact
    # optimum, which `tune` always runs as the reference.
    compared: ClassVar[bool] = True
    # At most this many evaluations in those comparison runs, for a strategy too slow per evaluation
    # to spend the full budget there (None: the budget as given).
    comparison_budget_cap: ClassVar[int | None] = None
    # The number of evaluations it always uses whatever the budget (None: it spends up to the budget),
    # so a benchmark need not run it at several budgets.
    fixed_evaluations: ClassVar[int | None] = None
    # False when the result does not depend on the seed, so a benchmark need not repeat it over seeds.
    seeded: ClassVar[bool] = True

    def search(
        self,
        space: DesignSpace,
        budget: int,
        seed: int = 0,
        objective: str | Objective | None = "latency",
        max_memory: int | None = None,
    ) -> SearchResult:
        """Search `space` with at most `budget` plan evaluations; deterministic for a given seed."""
        if not isinstance(budget, int | np.integer) or isinstance(budget, bool) or budget < 1:
            raise EdgetuneError(f"search budget must be a positive number of evaluations, got {budget!r}")
        obj = Objective.parse(objective, max_memory)
        scorer = Scorer(space, obj)
        ev = Evaluator(scorer, int(budget), space.repair)
        rng = np.random.default_rng(seed)
        try:
            meta = dict(self._run(space, ev, rng) or {})
        except BudgetExhausted:
            meta = {}
        if ev.best_choice is None:  # only possible if a strategy never evaluated anything
            raise EdgetuneError(f"strategy {self.name} returned no plan")
        if ev.trace and ev.trace[-1][0] != ev.evaluations:
            ev.trace.append((ev.evaluations, ev.best_score))
        choice = ev.best_choice
        meta.update(
            strategy=self.name,
            objective=obj.kind,
            max_memory=obj.max_memory,
            seed=seed,
            feasible=scorer.feasible(choice),
            latency_ms=space.cost_model.predict(choice),
            memory_bytes=scorer.memory(choice),
        )
        return SearchResult(choice, scorer.value(choice), ev.evaluations, ev.trace, meta)

    @abstractmethod
    def _run(self, space: DesignSpace, evaluate: Evaluator, rng: np.random.Generator) -> dict[str, Any] | None:
        """Propose plans through `evaluate` until done or stopped; return strategy facts for meta."""
