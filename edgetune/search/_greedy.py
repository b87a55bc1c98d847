"""Greedy baseline: each node's best option in isolation, ignoring conversion costs (1 evaluation).

This is what a library does when it picks its fastest kernel per layer; the gap to `exact` measures
what conversion-aware search buys.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetune.search._base import Evaluator, Strategy
from edgetune.search.space import DesignSpace


class Greedy(Strategy):
    """Fastest option per node (smallest for the memory objective); one evaluation."""

    name = "greedy"
    summary = "each layer's best option alone, ignoring conversions, 1 evaluation"
    fixed_evaluations = 1
    seeded = False

    def _run(self, space: DesignSpace, evaluate: Evaluator, rng: np.random.Generator) -> dict[str, Any]:
        evaluate(evaluate.scorer.greedy_choice())
        return {}
