"""All-or-nothing option groups (segments measured whole) in the pure search: repaired, never half taken."""

from __future__ import annotations

import numpy as np
import pytest

from edgetune.search import STRATEGIES, DesignSpace, Option, get_strategy


def _chain_with_group(group_ms: float) -> DesignSpace:
    """Three nodes in a chain; each has two plain options (1 ms, 2 ms) and one option of group 7, which
    costs group_ms / 3 per node; a plan taking the group on some nodes only pays a 1e6 ms edge."""
    opts = [[Option("a", 1.0), Option("b", 2.0), Option("g", group_ms / 3, group=7)] for _ in range(3)]
    edge = np.zeros((3, 3))
    edge[2, :2] = edge[:2, 2] = 1e6
    return DesignSpace(nodes=["n0", "n1", "n2"], options=opts, edges=[(0, 1), (1, 2)], edge_cost=[edge, edge])


def test_repair_drops_a_half_taken_group_and_keeps_a_whole_one() -> None:
    space = _chain_with_group(1.5)
    assert space.repair([2, 2, 2]) == [2, 2, 2]
    assert space.repair([2, 1, 2]) == [0, 1, 0]  # the members that took it fall back to their fastest plain option
    assert space.repair([1, 0, 1]) == [1, 0, 1]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_no_strategy_reports_a_half_taken_group(name: str) -> None:
    space = _chain_with_group(1.5)
    r = get_strategy(name).search(space, 200, 0)
    taken = [c == 2 for c in r.best_choice]
    assert all(taken) or not any(taken)
    assert r.best_cost < 1e6


def test_the_exact_optimum_takes_a_group_when_it_pays() -> None:
    assert get_strategy("exact").search(_chain_with_group(1.5), 1, 0).best_choice == [2, 2, 2]
    assert get_strategy("exact").search(_chain_with_group(9.0), 1, 0).best_choice == [0, 0, 0]
