"""Search: pick one option per node from measured costs (QS-DNN Q-learning, exact, baselines).

Public surface: `DesignSpace`/`Option` (the data), `CostModel` (plan -> latency), `Objective`,
`Strategy`/`SearchResult` (the extension point, see `_base` for the lifecycle), the strategies via
`get_strategy(name)` / `STRATEGIES` and the lists derived from that one registry (`strategy_names`,
`strategy_help`, `compared_strategies`, `comparison_budget`), `pareto_front`, and `synthetic_space`
for tests and benchmarks.
"""

from edgetune.search._anneal import Anneal
from edgetune.search._base import META_KEYS, SearchResult, Strategy
from edgetune.search._exact import Exact, chain_dp
from edgetune.search._greedy import Greedy
from edgetune.search._optuna import OptunaTPE
from edgetune.search._qlearning import QLearning
from edgetune.search._random import RandomSearch
from edgetune.search._registry import (
    STRATEGIES,
    compared_strategies,
    comparison_budget,
    get_strategy,
    strategy_help,
    strategy_names,
)
from edgetune.search.cost_model import CostModel
from edgetune.search.objective import OBJECTIVES, Objective
from edgetune.search.pareto import pareto_front
from edgetune.search.space import DesignSpace, Option
from edgetune.search.synthetic import RESIDUAL_CONCAT, synthetic_space

__all__ = [
    "META_KEYS",
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
    "compared_strategies",
    "comparison_budget",
    "get_strategy",
    "pareto_front",
    "strategy_help",
    "strategy_names",
    "synthetic_space",
]
