"""How well the cost model predicts end-to-end latency.

Usage: .venv/bin/python bench/prediction.py [--db PATH] [--threads 1,2] [MODEL ...]
(default models: mobilenet_v2 resnet18). Profiles what the database lacks, then for the BLAS plan, the
per-layer-fastest plan (greedy), the exact optimum and five random plans compares the predicted latency
(sum of node, conversion, fusion and thread-pool switch costs + dispatch) with the latency measured end
to end. Each plan is timed on its own (warm-up, then repeated runs), not alternated with the others:
the model predicts a plan running alone, and alternating fast plans with slow random ones (which
allocate large float64 temporaries) was seen to slow the fast ones by up to 2x through cache and
page-fault pollution. Prints a table and writes bench/out/prediction.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from rich.console import Console

import edgetune  # noqa: F401
from edgetune.commands.profile import run_profile, thread_counts
from edgetune.device.cpu import summary_line
from edgetune.graph.reference import default_feeds
from edgetune.measure.timing import time_callable
from edgetune.planning.candidates import to_plan
from edgetune.planning.design_space import build_space
from edgetune.runtime.executor import Executor
from edgetune.search import get_strategy
from edgetune.user_model import open_model


def blas_choice(space, graph, threads: int) -> list[int]:
    choice = []
    for node, opts in zip(graph.nodes, space.options, strict=True):
        prim = {"Conv": "conv.im2col.numpy", "Gemm": "gemm.numpy", "MatMul": "gemm.numpy"}.get(node.op,
                                                                                              f"ref.{node.op.lower()}")
        keys = [o.key for o in opts]
        choice.append(keys.index(f"{prim}@{threads}") if f"{prim}@{threads}" in keys else keys.index(f"{prim}@1"))
    return choice


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["mobilenet_v2", "resnet18"])
    ap.add_argument("--db")
    ap.add_argument("--threads", default=None)
    ap.add_argument("--random", type=int, default=5)
    ap.add_argument("--time-cap", type=float, default=30.0)
    args = ap.parse_args(argv)
    console = Console(stderr=True)
    rows = []
    for model in args.models:
        src = open_model(model)
        graph = src.graph
        db, _ = run_profile(graph, SimpleNamespace(db=args.db, threads=args.threads, time_cap=None, console=console))
        threads = thread_counts(args.threads)
        space, _ = build_space(graph, db, threads)
        tmax = max(threads)
        plans = {"blas fp32": blas_choice(space, graph, tmax),
                 "per-layer fastest (greedy)": get_strategy("greedy").search(space, 1).best_choice,
                 "exact optimum": get_strategy("exact").search(space, 1).best_choice}
        rng = np.random.default_rng(0)
        for i in range(args.random):
            plans[f"random #{i + 1}"] = [int(rng.integers(len(o))) for o in space.options]
        feeds = default_feeds(graph)
        fns, predicted = {}, {}
        for name, choice in plans.items():
            ex = Executor(graph, to_plan(graph, space, choice, {}), check_input=feeds)
            fns[name] = (lambda e=ex, f=feeds: e.run(f))
            predicted[name] = space.plan_cost(choice)
        console.print(f"{model}: timing {len(fns)} plans, each on its own...")
        timings = {name: time_callable(fn, time_cap_s=args.time_cap / len(fns), max_runs=300, target_rel_ci=0.02)
                   for name, fn in fns.items()}
        for name, t in timings.items():
            rows.append({"model": model, "plan": name, "predicted_ms": predicted[name], "measured_ms": t.median_ms,
                         "p10_ms": t.p10_ms, "p90_ms": t.p90_ms, "disturbed": t.disturbed,
                         "error": (predicted[name] - t.median_ms) / t.median_ms})
    print(f"CPU: {summary_line()}")
    print(f"{'model':<13} {'plan':<28} {'predicted ms':>12} {'measured ms (p10-p90)':>24} {'error':>8}")
    for r in rows:
        print(f"{r['model']:<13} {r['plan']:<28} {r['predicted_ms']:>12.2f} "
              f"{r['measured_ms']:>9.2f} ({r['p10_ms']:.2f}-{r['p90_ms']:.2f}){'':>3} {r['error'] * 100:>+7.1f}%"
              + ("  disturbed" if r["disturbed"] else ""))
    errs = [abs(r["error"]) for r in rows]
    print(f"mean |error| {np.mean(errs) * 100:.1f}%, max {np.max(errs) * 100:.1f}%, "
          f"within 10%: {sum(e <= 0.10 for e in errs)}/{len(errs)}")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "prediction.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
