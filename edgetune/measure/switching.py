"""The cost of switching between libraries' thread pools (and thread counts) from one step to the next.

Why: a kernel timed alone runs with its library's workers awake and its caches warm; in a plan that
alternates libraries, each switch wakes another pool's sleeping workers (and on a VM, sleeping virtual
CPUs). On this project's machines an alternating torch/ORT plan of ~0.3 ms layers paid ~0.1-0.2 ms per
switch, which made mixed plans measure 1.5-1.8x their predicted time. The profiler measures, for each
pair of (pool, threads) states, a small depthwise convolution of each alternating against each alone;
the space builder charges the difference on every pair of consecutive steps that changes state.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgetune.graph.ir import Graph, Node, Value
from edgetune.kernels import registry
from edgetune.kernels.base import PrepareContext
from edgetune.kernels.threads import set_threads
from edgetune.measure.timing import Timing, time_callable

SWITCH_KEY = "switch"
def pool(library: str) -> str:
    """The thread pool a library runs on (`Library.pool`): libraries sharing one switch for free."""
    return registry.pool_of(library).name


def _probes() -> dict[str, str]:
    """The representative kernel of each installed pool that has one (`ThreadPool.probe`): a 3x3
    depthwise convolution, 64 channels at 28x28 (~0.1 ms)."""
    return {p.name: p.probe for p in registry.pools() if p.probe}


def switch_key(a: tuple[str, int], b: tuple[str, int]) -> str:
    """DB key of the switch between states (pool, threads), order-independent."""
    (pa, ta), (pb, tb) = sorted([a, b])
    return f"{SWITCH_KEY}:{pa}@{ta}<->{pb}@{tb}"


def _probe_graph() -> tuple[Graph, Node, np.ndarray]:
    rng = np.random.default_rng(0)
    c = 64
    node = Node("probe", "Conv", ["x", "w"], ["y"], {"strides": [1, 1], "dilations": [1, 1], "pads": [1, 1, 1, 1],
                                                     "group": c, "kernel_shape": [3, 3]})
    w = (rng.standard_normal((c, 1, 3, 3)) / 3).astype(np.float32)
    x = rng.standard_normal((1, c, 28, 28)).astype(np.float32)
    g = Graph("switch-probe", [node], ["x"], ["y"], {"x": Value("x", x.shape), "y": Value("y", x.shape)}, {"w": w})
    return g, node, x


def states(libraries: Sequence[str], threads: Sequence[int]) -> list[tuple[str, int]]:
    pools = sorted({pool(lib) for lib in libraries} & set(_probes()))
    return [(p, t) for p in pools for t in sorted(set(threads))]


def measure_switches(pairs: Sequence[tuple[tuple[str, int], tuple[str, int]]], time_cap_s: float = 0.4
                     ) -> dict[str, Timing]:
    """Switch cost per pair of states: (alternating pair - each alone) / 2, as a Timing in ms."""
    g, node, x = _probe_graph()
    kernels: dict[tuple[str, int], Any] = {}

    def kernel(state: tuple[str, int]) -> Any:
        if state not in kernels:
            set_threads(state[1])
            kernels[state] = registry.get(_probes()[state[0]]).prepare(node, PrepareContext(g, state[1]))
        return kernels[state]

    out = {}
    for a, b in pairs:
        ka, kb = kernel(a), kernel(b)

        def alone_a(k: Any = ka, t: int = a[1]) -> None:
            set_threads(t)
            k(x)

        def alone_b(k: Any = kb, t: int = b[1]) -> None:
            set_threads(t)
            k(x)

        def both() -> None:
            alone_a()
            alone_b()

        iso_a = time_callable(alone_a, time_cap_s=time_cap_s, quiet_wait_s=0.3)
        iso_b = time_callable(alone_b, time_cap_s=time_cap_s, quiet_wait_s=0.3)
        alt = time_callable(both, time_cap_s=time_cap_s, quiet_wait_s=0.3)
        # each call of `both` switches twice: a -> b inside, b -> a into the next call
        pen = (alt.median_ms - iso_a.median_ms - iso_b.median_ms) / 2
        out[switch_key(a, b)] = Timing(median_ms=max(pen, 0.0), p10_ms=alt.p10_ms, p90_ms=alt.p90_ms,
                                       min_ms=alt.min_ms, spread=alt.spread, runs=alt.runs,
                                       foreign_cores=alt.foreign_cores,
                                       disturbed=alt.disturbed or iso_a.disturbed or iso_b.disturbed,
                                       ci_rel=alt.ci_rel)
    return out


def all_pairs(state_list: Sequence[tuple[str, int]]) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    return list(itertools.combinations(state_list, 2))
