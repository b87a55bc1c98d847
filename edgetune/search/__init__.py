"""Search: pick one option per node from measured costs (QS-DNN Q-learning, exact, baselines).

Public surface: `DesignSpace`/`Option` (the data), `CostModel` (plan -> latency), `Objective`,
`Strategy`/`SearchResult` (the extension point, see `_base` for the lifecycle), the strategies via
`get_strategy(name)` / `STRATEGIES`, `pareto_front`, and `synthetic_space` for tests and benchmarks.
"""

from edgetune.search._anneal import Anneal
from edgetune.search._base import SearchResult, Strategy
from edgetune.search._exact import Exact, chain_dp
from edgetune.search._greedy import Greedy
from edgetune.search._optuna import OptunaTPE
from edgetune.search._qlearning import QLearning
from edgetune.search._random import RandomSearch
from edgetune.search._registry import STRATEGIES, get_strategy
from edgetune.search.cost_model import CostModel
from edgetune.search.objective import OBJECTIVES, Objective
from edgetune.search.pareto import pareto_front
from edgetune.search.space import DesignSpace, Option
from edgetune.search.synthetic import RESIDUAL_CONCAT, synthetic_space

__all__ = [
    "OBJECTIVES",
    "RESIDUAL_CONCAT",
    "STRATEGIES",
    "Anneal",
    "CostModel",
    "DesignSpace",
    "Exact",
    "Greedy",
    "Objective",
    "OptunaTPE",
    "Option",
    "QLearning",
    "RandomSearch",
    "SearchResult",
    "Strategy",
    "chain_dp",
    "get_strategy",
    "pareto_front",
    "search",
    "synthetic_space",
]


def search(
    space: DesignSpace,
    strategy: str = "qlearning",
    budget: int = 1000,
    seed: int = 0,
    objective: str | Objective = "latency",
    max_memory: int | None = None,
) -> SearchResult:
    """Convenience: `get_strategy(strategy).search(space, budget, seed, objective, max_memory)`."""
    return get_strategy(strategy).search(space, budget, seed, objective, max_memory)
