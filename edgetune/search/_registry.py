"""Strategy names -> classes: the one list of strategies, and the lists derived from it.

A strategy is registered by adding its class to the tuple below; everything that enumerates the
strategies (the `tune --strategy` help, the report's comparison runs, bench/search.py, the contract
test) asks the functions here instead of keeping its own list, so nothing else needs editing. The
tuple's order is the order of the help text and of the comparison runs (the report's table and
convergence figure).
"""

from __future__ import annotations

from typing import Any

from edgetune.errors import EdgetuneError
from edgetune.search._anneal import Anneal
from edgetune.search._base import Strategy
from edgetune.search._exact import Exact
from edgetune.search._greedy import Greedy
from edgetune.search._optuna import OptunaTPE
from edgetune.search._qlearning import QLearning
from edgetune.search._random import RandomSearch

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Exact, Greedy, RandomSearch, Anneal, QLearning, OptunaTPE)
}


def _strategy_class(name: str) -> type[Strategy]:
    """The class registered as `name`; one error message, listing the valid names, for every lookup."""
    if name not in STRATEGIES:
        raise EdgetuneError(f"unknown search strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def get_strategy(name: str, **hyper_parameters: Any) -> Strategy:
    """An instance of the strategy called `name`, built with its hyper-parameters."""
    cls = _strategy_class(name)
    try:
        return cls(**hyper_parameters)
    except TypeError as exc:
        raise EdgetuneError(f"bad hyper-parameters for strategy {name!r}: {exc}") from None


def strategy_names() -> tuple[str, ...]:
    """Every registered strategy's name, in registration order (for `choices=` and messages)."""
    return tuple(STRATEGIES)


def strategy_help(default: str, summaries: bool = False) -> str:
    """The `--strategy` help: `default` first, marked, then the others in registration order.

    Plain names ("qlearning (default), exact, greedy, ...") by default; with `summaries`, each name is
    followed by its class's one-line summary ("qlearning (default): QS-DNN ...; exact: ...").
    """
    _strategy_class(default)
    names = [default] + [n for n in STRATEGIES if n != default]

    def label(name: str) -> str:
        text = f"{name} (default)" if name == default else name
        return f"{text}: {STRATEGIES[name].summary}" if summaries and STRATEGIES[name].summary else text

    return ("; " if summaries else ", ").join(label(n) for n in names)


def compared_strategies() -> tuple[str, ...]:
    """The strategies `tune` runs beside the chosen one for the report's convergence figure."""
    return tuple(n for n, cls in STRATEGIES.items() if cls.compared)


def comparison_budget(name: str, budget: int) -> int:
    """The budget of `name`'s comparison run: `budget`, capped by its class's `comparison_budget_cap`."""
    cap = _strategy_class(name).comparison_budget_cap
    return budget if cap is None else min(budget, cap)
