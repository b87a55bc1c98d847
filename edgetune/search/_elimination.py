"""Exact min-sum by variable elimination: dynamic programming generalised from chains to DAGs.

The plan cost is a sum of unary terms (node times) and pairwise terms (edge costs), so eliminating
nodes one at a time (min over the node's options of everything that mentions it) is exact for any
graph; the cost is exponential only in the size of the largest intermediate table. DNN graphs are
chains of blocks (residual, concat), whose tables stay small (options^2 or options^3 entries), so this
solves them in milliseconds where the MILP's LP relaxation is fractional on every block's cycle. The
elimination order is greedy min-fill; if a table would exceed `max_entries` we give up and the caller
falls back to the MILP.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Factor = tuple[tuple[int, ...], np.ndarray]


def _order(n: int, neighbours: list[set[int]], sizes: Sequence[int], max_entries: int) -> tuple[list[int], int] | None:
    """Greedy elimination order (fewest fill edges, then smallest table); None if a table is too big."""
    nb = [set(s) for s in neighbours]
    alive = set(range(n))
    order: list[int] = []
    largest = 1
    while alive:
        best, best_key = -1, None
        for v in alive:
            nv = nb[v]
            fill = sum(1 for a in nv for b in nv if a < b and b not in nb[a])
            entries = int(np.prod([sizes[u] for u in nv], dtype=np.float64)) * sizes[v]
            key = (fill, entries, v)
            if best_key is None or key < best_key:
                best, best_key = v, key
        entries = best_key[1] if best_key else 1
        if entries > max_entries:
            return None
        largest = max(largest, entries)
        for a in nb[best]:
            nb[a] |= nb[best] - {a}
            nb[a].discard(best)
        alive.discard(best)
        order.append(best)
    return order, largest


def _expand(factor: Factor, scope: tuple[int, ...]) -> np.ndarray:
    """The factor's table transposed and reshaped to broadcast over `scope`."""
    vars_, table = factor
    perm = sorted(range(len(vars_)), key=lambda k: scope.index(vars_[k]))
    t = np.transpose(table, perm)
    shape = [1] * len(scope)
    for k in perm:
        shape[scope.index(vars_[k])] = table.shape[k]
    return t.reshape(shape)


def eliminate(
    unary: Sequence[np.ndarray],
    pairs: Sequence[tuple[int, int, np.ndarray]],
    max_entries: int = 4_000_000,
) -> tuple[list[int], float, int] | None:
    """Minimise sum_i unary[i][x_i] + sum (i, j, M) M[x_i, x_j]; returns (choice, cost, largest table).

    Returns None when min-fill elimination would build a table over `max_entries` entries.
    """
    n = len(unary)
    sizes = [len(u) for u in unary]
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for i, j, _ in pairs:
        if i != j:
            neighbours[i].add(j)
            neighbours[j].add(i)
    found = _order(n, neighbours, sizes, max_entries)
    if found is None:
        return None
    order, largest = found
    factors: list[Factor] = [((i,), np.asarray(u, dtype=np.float64)) for i, u in enumerate(unary)]
    factors += [((i, j), np.asarray(m, dtype=np.float64)) for i, j, m in pairs]
    trace: list[tuple[int, tuple[int, ...], np.ndarray]] = []
    constant = 0.0
    for v in order:
        mine = [f for f in factors if v in f[0]]
        factors = [f for f in factors if v not in f[0]]
        scope = tuple(sorted({u for f in mine for u in f[0]}))
        total = sum(_expand(f, scope) for f in mine)
        total = np.broadcast_to(total, [sizes[u] for u in scope])
        ax = scope.index(v)
        rest = scope[:ax] + scope[ax + 1 :]
        trace.append((v, rest, np.argmin(total, axis=ax)))
        reduced = np.min(total, axis=ax)
        if rest:
            factors.append((rest, reduced))
        else:
            constant += float(reduced)
    choice = [0] * n
    for v, rest, arg in reversed(trace):
        choice[v] = int(arg[tuple(choice[u] for u in rest)]) if rest else int(arg)
    return choice, constant, largest
