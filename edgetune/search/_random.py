"""Random search: uniform random plans, best of the budget. The floor every strategy must beat."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetune.search._base import Evaluator, Strategy
from edgetune.search.space import DesignSpace


class RandomSearch(Strategy):
    """Draws `budget` plans uniformly (each node's option independently) and keeps the best."""

    name = "random"
    summary = "uniform random plans, the best of the budget"

    def _run(self, space: DesignSpace, evaluate: Evaluator, rng: np.random.Generator) -> dict[str, Any]:
        counts = np.array(space.n_options)
        while evaluate.remaining > 0:
            evaluate(rng.integers(0, counts))
        return {}
