"""Strategy names -> classes; the one place a new strategy is registered."""

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
    cls.name: cls for cls in (QLearning, Exact, Greedy, RandomSearch, Anneal, OptunaTPE)
}


def get_strategy(name: str, **hyper_parameters: Any) -> Strategy:
    """An instance of the strategy called `name`, built with its hyper-parameters."""
    if name not in STRATEGIES:
        raise EdgetuneError(f"unknown search strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    try:
        return STRATEGIES[name](**hyper_parameters)
    except TypeError as exc:
        raise EdgetuneError(f"bad hyper-parameters for strategy {name!r}: {exc}") from None
