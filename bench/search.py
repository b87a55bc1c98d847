"""Search quality on real measured design spaces: each strategy's best predicted latency as a ratio of
the exact optimum after 10, 100 and 1000 plan evaluations, averaged over seeds.

Usage: .venv/bin/python bench/search.py [--db PATH] [--seeds 5] [--threads 1,2] [--strategies a,b]
[--no-profile] [MODEL ...] (default models: mobilenet_v2 resnet18 efficientnet_lite0 squeezenet1_1
googlenet). Profiles what the database lacks first (minutes per model on a cold database) unless
--no-profile, which builds the spaces from the database as it is. Prints a table (with the seconds
of one run at the largest budget), writes bench/out/search.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from rich.console import Console

import edgetune  # noqa: F401
from edgetune.commands.profile import run_profile, thread_counts
from edgetune.device.cpu import summary_line
from edgetune.measure.db import ProfileDB
from edgetune.planning.design_space import build_space
from edgetune.search import STRATEGIES as REGISTRY
from edgetune.search import compared_strategies, comparison_budget, get_strategy
from edgetune.user_model import load_model

STRATEGIES = compared_strategies()  # from the registry: every strategy but the exact reference
BUDGETS = (10, 100, 1000)


def runs_of(name: str, seeds: int) -> list[tuple[int, int]]:
    """(budget, seeds) to run `name` at, from its class facts: one budget for a strategy that always uses
    the same evaluations, one seed for one that ignores the seed, no budget over its comparison cap
    (optuna's TPE costs ~0.1 s per trial on 60+ categorical parameters)."""
    cls = REGISTRY[name]
    budgets = BUDGETS[:1] if cls.fixed_evaluations is not None else BUDGETS
    return [(b, seeds if cls.seeded else 1) for b in budgets if comparison_budget(name, b) == b]


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*",
                    default=["mobilenet_v2", "resnet18", "efficientnet_lite0", "squeezenet1_1", "googlenet"])
    ap.add_argument("--db")
    ap.add_argument("--threads", default=None)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated (default: all compared)")
    ap.add_argument("--no-profile", action="store_true", help="use the database as it is, measure nothing")
    args = ap.parse_args(argv)
    strategies = [n for n in args.strategies.split(",") if n]
    for name in strategies:
        if name not in STRATEGIES:
            ap.error(f"unknown or uncompared strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    console = Console(stderr=True)
    rows = []
    for model in args.models:
        graph = load_model(model)
        if args.no_profile:
            db = ProfileDB(args.db)
        else:
            db, _ = run_profile(graph, SimpleNamespace(db=args.db, threads=args.threads, time_cap=None,
                                                       kernel_timeout=None, console=console))
        space, _ = build_space(graph, db, thread_counts(args.threads))
        t0 = time.perf_counter()
        exact = get_strategy("exact").search(space, 1)
        exact_s = time.perf_counter() - t0
        opt = exact.best_cost
        rows.append({"model": model, "strategy": "exact", "budget": 1, "ratio": 1.0, "std": 0.0,
                     "optimum_ms": opt, "seconds": exact_s, "log10_size": space.log10_size(),
                     "method": exact.meta.get("method"), "proven_optimal": exact.meta.get("proven_optimal")})
        for name in strategies:
            for budget, seeds in runs_of(name, args.seeds):
                ratios, secs = [], []
                for seed in range(seeds):
                    t0 = time.perf_counter()
                    res = get_strategy(name).search(space, budget, seed)
                    secs.append(time.perf_counter() - t0)
                    ratios.append(res.best_cost / opt)
                rows.append({"model": model, "strategy": name, "budget": budget, "ratio": float(np.mean(ratios)),
                             "std": float(np.std(ratios)), "optimum_ms": opt, "seconds": float(np.mean(secs))})
        console.print(f"{model}: done")
    print(f"CPU: {summary_line()}")
    print("best predicted latency / exact optimum (mean ± std over seeds; 1.000 = optimal)")
    print(f"{'model':<20} {'strategy':<10} {'10 evals':>14} {'100 evals':>14} {'1000 evals':>14} {'s/run':>7}")
    for model in args.models:
        opt_row = next(r for r in rows if r["model"] == model and r["strategy"] == "exact")
        print(f"{model:<20} {'exact':<10} optimum {opt_row['optimum_ms']:.3f} ms predicted, "
              f"10^{opt_row['log10_size']:.0f} plans, {opt_row['method']} in {opt_row['seconds']:.2f} s")
        for name in strategies:
            cells, secs = [], "-"
            for b in BUDGETS:
                r = next((r for r in rows if r["model"] == model and r["strategy"] == name and r["budget"] == b), None)
                cells.append(f"{r['ratio']:.3f}±{r['std']:.3f}" if r else "-")
                secs = f"{r['seconds']:.2f}" if r else secs
            print(f"{'':<20} {name:<10} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14} {secs:>7}")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "search.json").write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
