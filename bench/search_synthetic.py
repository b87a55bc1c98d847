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
    ap.add_argument("--optuna-max", type=int, default=100, help="TPE takes ~0.1 s per trial at 1000 trials")
    ap.add_argument("--big", action="store_true", help="also time exact on 150 nodes x 15 options")
    args = ap.parse_args()
    space = synthetic_space(args.nodes, args.options, "dag", seed=0)
    t0 = time.perf_counter()
    ex = get_strategy("exact").search(space, 1)
    print(
        f"space: {args.nodes} nodes x {args.options} options, {len(space.edges)} edges, "
        f"10^{space.log10_size():.0f} plans; exact {ex.best_cost:.3f} ms in {time.perf_counter() - t0:.2f} s "
        f"({ex.meta['method']}, proven optimal {ex.meta['proven_optimal']}, pruned {ex.meta['pruned_options']})"
    )
    print(f"{'strategy':<20}" + "".join(f"{b:>16}" for b in args.budgets) + f"{'s @max':>9}")
    rows = [("greedy", {}), ("random", {}), ("anneal", {}), ("qlearning", {}), ("qlearning", {"alpha": 0.5})]
    rows.append(("optuna", {}))
    for name, kw in rows:
        cells, secs = [], 0.0
        for b in args.budgets:
            if name == "optuna" and b > args.optuna_max:
                cells.append("skipped")
                continue
            ratios = []
            for seed in range(args.seeds):
                t = time.perf_counter()
                r = get_strategy(name, **kw).search(space, b, seed=seed)
                secs = time.perf_counter() - t
                ratios.append(r.best_cost / ex.best_cost)
            cells.append(f"{np.mean(ratios):.4f}+-{np.std(ratios):.4f}")
        label = name + "".join(f" {k}={v}" for k, v in kw.items())
        print(f"{label:<20}" + "".join(f"{c:>16}" for c in cells) + f"{secs:>9.2f}")
    t = time.perf_counter()
    mi = get_strategy("exact", method="milp").search(space, 1)
    print(f"exact via MILP: {mi.best_cost:.3f} ms in {time.perf_counter() - t:.2f} s ({mi.meta['milp_status']})")
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
            f"{r.meta['method']}, largest table {r.meta['largest_table']}, pruned {r.meta['pruned_options']}"
        )
        t = time.perf_counter()
        r = get_strategy("exact", method="milp").search(big, 1)
        print(f"  via MILP: {time.perf_counter() - t:.2f} s, {r.meta['milp_status']}, gap {r.meta['mip_gap']}")
        t = time.perf_counter()
        r = get_strategy("exact").search(big, 1, max_memory=int(r.meta["memory_bytes"] * 0.8))
        print(f"  with max_memory = 0.8 x unconstrained: {time.perf_counter() - t:.2f} s, {r.meta['milp_status']}")


if __name__ == "__main__":
    main()
