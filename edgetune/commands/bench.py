"""`edgetune bench MODEL [--plan PLAN]`: the plan against the BLAS baseline and production runtimes,
timed side by side (alternating, in one run), with memory."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from edgetune.commands.run import batch_of, resolve_plan
from edgetune.modelsrc import add_model_arguments, open_model_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo model name or path to an .onnx file")
    add_model_arguments(p)
    p.add_argument("--plan", help="a plan .json to include (tuned by `edgetune tune`)")
    p.add_argument("--threads", type=int, default=None, help="threads for every variant (default: all cores)")
    p.add_argument("--time-cap", type=float, default=20.0, help="seconds of alternating timing at most")
    p.add_argument("--no-int8", action="store_true", help="skip the ONNX Runtime static int8 peer")
    p.add_argument("--allow-foreign-plan", action="store_true", help="run a plan tuned elsewhere")


# Each variant per alternating round: untimed calls for COMPARE_SETTLE_S (at least one), then COMPARE_BLOCK - 1
# timed ones (see measure.timing.time_alternating: spinning pools steal the next variant's cores).
COMPARE_BLOCK = 6
COMPARE_SETTLE_S = 0.06


def compare(src: Any, variants: dict[str, Any], *, threads: int, time_cap: float, console: Any,
            int8: bool = True) -> list[dict[str, Any]]:
    """Time the given executors/callables together with the peers, alternating; one row per variant.

    `variants` maps a name to an Executor (memory planned) or to a (callable, weight_bytes) pair."""
    from edgetune.measure.timing import time_alternating
    from edgetune.peers import build_peers
    from edgetune.runtime.executor import Executor, default_feeds

    feeds = default_feeds(src.graph)
    fns: dict[str, Any] = {}
    memory: dict[str, dict[str, Any]] = {}
    for name, v in variants.items():
        if isinstance(v, Executor):
            fns[name] = (lambda ex=v: ex.run(feeds))
            memory[name] = v.memory().to_dict()
        else:
            fns[name], wb = v
            memory[name] = {"weight_bytes": wb}
    torch_module = src.torch_module()
    names = ["ONNX Runtime fp32", *(["ONNX Runtime int8"] if int8 else []), *(["torch eager"] if torch_module else [])]
    console.print(f"preparing peers ({', '.join(names)})...")
    for peer in build_peers(src.graph, src.onnx_model, feeds, threads, int8=int8, torch_module=torch_module):
        fns[peer.name] = peer.fn
        memory[peer.name] = {"weight_bytes": peer.weight_bytes, "note": peer.note}
    console.print(f"timing {len(fns)} variants side by side (alternating rounds, up to {time_cap:.0f} s)...")
    timings = time_alternating(fns, time_cap_s=time_cap, max_runs=500, target_rel_ci=0.02, block=COMPARE_BLOCK,
                               settle_s=COMPARE_SETTLE_S)
    rows = []
    for name, t in timings.items():
        rows.append({"variant": name, "median_ms": t.median_ms, "p10_ms": t.p10_ms, "p90_ms": t.p90_ms,
                     "runs": t.runs, "spread": t.spread, "disturbed": t.disturbed,
                     "foreign_cores": t.foreign_cores, "memory": memory.get(name, {})})
    return rows


def execute(args: argparse.Namespace) -> dict[str, Any]:
    from edgetune.commands import checks
    from edgetune.runtime.executor import Executor

    threads = checks.threads(args.threads, console=args.console)
    checks.positive(args.time_cap, "--time-cap")
    src = open_model_args(args)
    variants: dict[str, Any] = {"edgetune blas fp32 (baseline)": Executor(src.graph, resolve_plan("blas", src.graph,
                                                                                                   threads))}
    if args.plan:
        plan = resolve_plan(args.plan, src.graph, threads, args.allow_foreign_plan)
        variants["edgetune plan"] = Executor(src.graph, plan)
    rows = compare(src, variants, threads=threads, time_cap=args.time_cap, console=args.console,
                   int8=not args.no_int8)
    base = rows[0]["median_ms"]
    for r in rows:
        r["speedup_vs_blas"] = base / r["median_ms"]
    return {"model": src.graph.name, "batch": batch_of(src.graph), "threads": threads, "rows": rows}


def render(result: dict[str, Any], console: Any) -> None:
    t = Table(title=f"edgetune bench {result['model']}: batch {result.get('batch', 1)}, {result['threads']} "
                    "threads, wall-clock per inference, all variants alternated in one run")
    for col in ("variant", "median ms", "p10-p90 ms", "runs", "x vs BLAS", "weights MB", "planned total MB"):
        t.add_column(col, justify="left" if col == "variant" else "right")
    for r in result["rows"]:
        m = r["memory"]
        wb = m.get("weight_bytes")
        t.add_row(r["variant"] + (" (disturbed)" if r["disturbed"] else ""), f"{r['median_ms']:.2f}",
                  f"{r['p10_ms']:.2f}-{r['p90_ms']:.2f}", str(r["runs"]), f"{r['speedup_vs_blas']:.2f}",
                  f"{wb / 1e6:.1f}" if wb else "-",
                  f"{m['total_bytes'] / 1e6:.1f}" if "total_bytes" in m else "-")
    console.print(t)
