"""Synthetic design spaces with known structure, for tests and benchmarks of the strategies.

Shapes follow real networks: chains, residual blocks (a branch merged by Add) and 3-way Concat
merges. Costs mimic measurements: per-node times spread over a decade, conversions paid only when
formats differ, and a few negative transitions (two nodes fused in one library session).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgetune.search.space import DesignSpace, Option

FORMATS = ("NCHW", "NHWC", "BLOCKED")


def dag_edges(n_nodes: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """A backbone with random residual blocks and 3-way concat blocks; merges list the branch first."""
    edges: list[tuple[int, int]] = []
    tail = 0
    while tail < n_nodes - 1:
        r, left = rng.random(), n_nodes - 1 - tail
        if r < 0.35 and left >= 2:
            edges += [(tail, tail + 1), (tail + 1, tail + 2), (tail, tail + 2)]
            tail += 2
        elif r < 0.55 and left >= 4:
            edges += [(tail, tail + 1), (tail, tail + 2), (tail, tail + 3)]
            edges += [(tail + 1, tail + 4), (tail + 2, tail + 4), (tail + 3, tail + 4)]
            tail += 4
        else:
            edges.append((tail, tail + 1))
            tail += 1
    return edges


RESIDUAL_CONCAT = [(0, 1), (1, 2), (0, 2), (2, 3), (2, 4), (2, 5), (3, 6), (4, 6), (5, 6)]
"""7 nodes: a residual block (0->1->2, 0->2) then a 3-way concat (2->3,4,5 -> 6)."""


def synthetic_space(
    n_nodes: int,
    n_options: int,
    edges: str | Sequence[tuple[int, int]] = "chain",
    seed: int = 0,
    conversion: bool = True,
    negative: float = 0.1,
    dispatch_ms_per_step: float = 0.0,
) -> DesignSpace:
    """A random space: `edges` is "chain", "dag" (random residual/concat blocks) or an edge list.

    Without `conversion` every edge cost is 0 (greedy is then optimal). `negative` is the share of
    option pairs on an edge that get a fusion gain (a negative cost smaller than either node's time).
    Weight and workspace bytes are whole KiB.
    """
    rng = np.random.default_rng(seed)
    if edges == "chain":
        edge_list = [(i, i + 1) for i in range(n_nodes - 1)]
    elif edges == "dag":
        edge_list = dag_edges(n_nodes, rng)
    else:
        edge_list = [(int(i), int(j)) for i, j in edges]
    options: list[list[Option]] = []
    scales = np.exp(rng.uniform(0, np.log(10), size=n_nodes))
    for i in range(n_nodes):
        scale = float(scales[i])
        opts = []
        for a in range(n_options):
            fmt = FORMATS[int(rng.integers(len(FORMATS)))]
            opts.append(
                Option(
                    key=f"n{i}.opt{a}",
                    time_ms=float(scale * rng.uniform(0.6, 1.4)),
                    weight_bytes=int(rng.integers(0, 512)) * 1024,
                    workspace_bytes=int(rng.integers(0, 2048)) * 1024,
                    out_format=fmt,
                    in_formats=[FORMATS[int(rng.integers(len(FORMATS)))]],
                )
            )
        options.append(opts)
    mats = []
    for i, j in edge_list:
        m = np.zeros((n_options, n_options))
        if conversion:
            for a, pa in enumerate(options[i]):
                for b, ob in enumerate(options[j]):
                    if pa.out_format != ob.in_formats[0]:
                        size = 0.5 * (scales[i] + scales[j]) * (1 + 0.5 * (pa.out_format == "BLOCKED"))
                        m[a, b] = rng.uniform(0.05, 0.4) * size
                    if rng.random() < negative:
                        m[a, b] = -rng.uniform(0.0, 0.3) * min(pa.time_ms, ob.time_ms)
        mats.append(m)
    return DesignSpace([f"n{i}" for i in range(n_nodes)], options, edge_list, mats, dispatch_ms_per_step)
