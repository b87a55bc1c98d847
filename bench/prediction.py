"""How well the cost model predicts end-to-end latency.

Usage: .venv/bin/python bench/prediction.py [--db PATH] [--threads 1,2] [--random N] [MODEL ...] (default
models: mobilenet_v2 resnet18). Profiles what the database lacks, then for the BLAS plan, the per-layer-
fastest plan (greedy), the exact optimum, QS-DNN's best, the whole graph on each backend that compiled it, N
random per-node plans and N random mixes of measured segments (each segment taken whole or not at all, the
rest per-layer fastest) compares the predicted latency (segments measured whole, node, conversion and thread-
pool switch costs, dispatch, and the boundary costs a `tune` fitted to its end-to-end measurements where the
DB has them: planning/closed_loop.py) with the latency measured end to end. The random plans and mixes are
held out: no tune measured them. Each plan is timed on its own (warm-up, then repeated runs), not alternated
with the others: the model predicts a plan running alone, and alternating fast plans with slow random ones
(which allocate large float64 temporaries) was seen to slow the fast ones by up to 2x through cache and page-
fault pollution. Prints a table and writes bench/out/prediction.json.
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
from edgetune.planning.candidates import to_plan, whole_graph_candidates
from edgetune.planning.closed_loop import OBSERVED
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


def segment_mix(space, rng: np.random.Generator) -> list[int]:
    """A random plan of measured segments: groups in random order, each taken with probability 1/2 where it
    overlaps none taken, every other node on its fastest option outside any segment."""
    choice = [min((k for k, o in enumerate(opts) if o.group is None), key=lambda k: opts[k].time_ms, default=0)
              for opts in space.options]
    groups: dict[int, list[tuple[int, int]]] = {}
    for i, opts in enumerate(space.options):
        for k, o in enumerate(opts):
            if o.group is not None:
                groups.setdefault(o.group, []).append((i, k))
    taken: set[int] = set()
    for gid in rng.permutation(sorted(groups)):
        members = groups[int(gid)]
        if rng.random() < 0.5 and not any(i in taken for i, _ in members):
            for i, k in members:
                choice[i] = k
                taken.add(i)
    return space.repair(choice)


def plans_to_measure(space, graph, tmax: int, n_random: int) -> dict[str, list[int]]:
    """The named plans and the held-out random ones, distinct (a plan reached twice keeps its first name)."""
    plans = {"blas fp32": blas_choice(space, graph, tmax),
             "per-layer fastest (greedy)": get_strategy("greedy").search(space, 1).best_choice,
             "exact optimum": get_strategy("exact").search(space, 1).best_choice,
             "QS-DNN best (1000)": get_strategy("qlearning").search(space, 1000).best_choice}
    plans.update(dict(whole_graph_candidates(space)))
    rng = np.random.default_rng(0)
    for i in range(n_random):
        plans[f"random #{i + 1} (held out)"] = space.repair([int(rng.integers(len(o))) for o in space.options])
        plans[f"segment mix #{i + 1} (held out)"] = segment_mix(space, rng)
    out, seen = {}, set()
    for name, choice in plans.items():
        if tuple(choice) not in seen:
            seen.add(tuple(choice))
            out[name] = list(choice)
    return out


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
        fitted = {k: round(v, 3) for k, v in db.converters_like(OBSERVED).items()}
        console.print(f"{model}: boundary costs fitted by earlier tunes: {fitted or 'none'}")
        plans = plans_to_measure(space, graph, tmax, args.random)
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
    print(f"{'model':<13} {'plan':<40} {'predicted ms':>12} {'measured ms (p10-p90)':>24} {'error':>8}")
    for r in rows:
        print(f"{r['model']:<13} {r['plan']:<40} {r['predicted_ms']:>12.2f} "
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
