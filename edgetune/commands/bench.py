"""`edgetune bench MODEL [--plan PLAN]`: the plan against the BLAS baseline and production runtimes,
timed side by side (alternating, in one run), with memory."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from edgetune.commands import checks
from edgetune.measure.compare import compare
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import batch_of, resolve_plan
from edgetune.user_model import add_model_arguments, open_model_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo model name or path to an .onnx file")
    add_model_arguments(p)
    p.add_argument("--plan", help="a plan .json to include (tuned by `edgetune tune`)")
    p.add_argument("--threads", type=int, default=None, help="threads for every variant (default: all cores)")
    p.add_argument("--time-cap", type=float, default=20.0, help="seconds of alternating timing at most")
    p.add_argument("--no-int8", action="store_true", help="skip the ONNX Runtime static int8 peer")
    p.add_argument("--allow-foreign-plan", action="store_true", help="run a plan tuned elsewhere")


def execute(args: argparse.Namespace) -> dict[str, Any]:

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
