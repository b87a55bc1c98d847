"""Quick synthetic benchmark of the search strategies: best/optimum at 10, 100, 1000 evaluations.

Usage: .venv/bin/python bench/search_synthetic.py [--nodes 60] [--options 8] [--seeds 3]
The optimum comes from the exact MILP on a random DAG (residual and 3-way concat blocks) with
conversion costs and some fusion gains; also times the MILP on a ~150 x 15 DAG.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from edgetune.search import get_strategy, pareto_front, synthetic_space


def main() -> None:
    """Print one table row per strategy."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=60)
    ap.add_argument("--options", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budgets", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--big", action="store_true", help="also time exact on 150 nodes x 15 options")
    args = ap.parse_args()
    space = synthetic_space(args.nodes, args.options, "dag", seed=0)
    t0 = time.perf_counter()
    ex = get_strategy("exact").search(space, 1)
    print(
        f"space: {args.nodes} nodes x {args.options} options, {len(space.edges)} edges, "
        f"10^{space.log10_size():.0f} plans; exact {ex.best_cost:.3f} ms in {time.perf_counter() - t0:.2f} s "
        f"({ex.meta['milp_status']}, gap {ex.meta['mip_gap']}, pruned {ex.meta['pruned_options']})"
    )
    print(f"{'strategy':<10}" + "".join(f"{b:>16}" for b in args.budgets) + f"{'s @max':>9}")
    for name in ("greedy", "random", "anneal", "qlearning", "optuna"):
        cells, secs = [], 0.0
        for b in args.budgets:
            ratios = []
            for seed in range(args.seeds):
                t = time.perf_counter()
                r = get_strategy(name).search(space, b, seed=seed)
                secs = time.perf_counter() - t
                ratios.append(r.best_cost / ex.best_cost)
            cells.append(f"{np.mean(ratios):.4f}+-{np.std(ratios):.4f}")
        print(f"{name:<10}" + "".join(f"{c:>16}" for c in cells) + f"{secs:>9.2f}")
    t = time.perf_counter()
    front = pareto_front(space, points=8)
    print(f"pareto front: {len(front)} points in {time.perf_counter() - t:.2f} s")
    for lat, mem, _ in front:
        print(f"  {lat:9.3f} ms  {mem / 2**20:8.2f} MiB")
    if args.big:
        big = synthetic_space(150, 15, "dag", seed=1)
        t = time.perf_counter()
        r = get_strategy("exact").search(big, 1)
        print(
            f"exact on 150 x 15 DAG ({len(big.edges)} edges): {time.perf_counter() - t:.2f} s, "
            f"{r.meta['milp_status']}, gap {r.meta['mip_gap']}, pruned {r.meta['pruned_options']}, "
            f"vars {r.meta['variables']}"
        )
        t = time.perf_counter()
        r = get_strategy("exact", prune=False).search(big, 1)
        print(f"  without pruning: {time.perf_counter() - t:.2f} s, {r.meta['milp_status']}")
        t = time.perf_counter()
        r = get_strategy("exact").search(big, 1, max_memory=int(r.meta["memory_bytes"] * 0.8))
        print(f"  with max_memory = 0.8 x unconstrained: {time.perf_counter() - t:.2f} s, {r.meta['milp_status']}")


if __name__ == "__main__":
    main()
