"""`edgetune bench MODEL [--plan PLAN]`: the plan against the BLAS baseline and production runtimes,
timed side by side (alternating, in one run), with memory: every row's resident memory measured in a fresh
process the same way (peers: `measure.peer_memory`, in `compare`; plans: `measure.plan_memory`, here), a
few seconds per row, on by default (`--no-fresh-memory` skips the plans' and keeps planned figures only).

The precision column keeps apart the fp32 bars a plan must clear (`planning.verdict.FP32_PEERS`) and the
peers that change the numerics (OpenVINO's default precision, bf16 or fp16 where the CPU has it; int8)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from edgetune.commands import checks
from edgetune.errors import EdgetuneError
from edgetune.measure.compare import compare, fresh_process_memory
from edgetune.measure.plan_memory import measure_plan_memory
from edgetune.planning.verdict import FP32_PEERS
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import batch_of, resolve_plan
from edgetune.user_model import add_model_arguments, open_model_args, parse_input_shapes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo model name or path to an .onnx file")
    add_model_arguments(p)
    p.add_argument("--plan", help="a plan .json to include (tuned by `edgetune tune`)")
    p.add_argument("--threads", type=int, default=None, help="threads for every variant (default: all cores)")
    p.add_argument("--time-cap", type=float, default=20.0, help="seconds of alternating timing at most")
    p.add_argument("--no-int8", action="store_true", help="skip the static int8 peers (ONNX Runtime, OpenVINO)")
    p.add_argument("--no-fresh-memory", action="store_true",
                   help="do not measure the plans' resident memory in a fresh process (peers' always are)")
    p.add_argument("--allow-foreign-plan", action="store_true", help="run a plan tuned elsewhere")


def execute(args: argparse.Namespace) -> dict[str, Any]:

    threads = checks.threads(args.threads, console=args.console)
    checks.positive(args.time_cap, "--time-cap")
    src = open_model_args(args)
    variants: dict[str, Any] = {BLAS: Executor(src.graph, resolve_plan("blas", src.graph, threads))}
    specs = {BLAS: "blas"}
    if args.plan:
        plan = resolve_plan(args.plan, src.graph, threads, args.allow_foreign_plan)
        variants[PLAN] = Executor(src.graph, plan)
        specs[PLAN] = args.plan
    rows = compare(src, variants, threads=threads, time_cap=args.time_cap, console=args.console,
                   int8=not args.no_int8)
    if not args.no_fresh_memory:
        _plans_fresh_memory(args, rows, specs, threads)
    base = rows[0]["median_ms"]
    for r in rows:
        r["speedup_vs_blas"] = base / r["median_ms"]
        r["fp32_bar"] = r["variant"] in FP32_PEERS
    return {"model": src.graph.name, "batch": batch_of(src.graph), "threads": threads, "rows": rows}


BLAS, PLAN = "edgetune blas fp32 (baseline)", "edgetune plan"


def _plans_fresh_memory(args: argparse.Namespace, rows: list[dict[str, Any]], specs: dict[str, str],
                        threads: int) -> None:
    """Each plan's resident memory in a fresh process (plan_memory, the kernels' own reports: only the
    measured figures are used), into its row's memory as `fresh_process`."""
    args.console.print(f"measuring the resident memory of {len(specs)} plan(s), each in a fresh process...")
    shapes = parse_input_shapes(getattr(args, "input_shape", None))
    for r in rows:
        if r["variant"] not in specs:
            continue
        try:
            m = measure_plan_memory(args.model, specs[r["variant"]], threads, measure_kernels=False,
                                    input_shapes=shapes or None)
        except (EdgetuneError, OSError, ValueError) as e:  # the timing stands without this figure
            r["memory"]["fresh_process"] = {"error": str(e)}
            checks.warn(args.console, f"{r['variant']}: {e}")
            continue
        r["memory"]["fresh_process"] = fresh_process_memory(m["measured"])


def render(result: dict[str, Any], console: Any) -> None:
    t = Table(title=f"edgetune bench {result['model']}: batch {result.get('batch', 1)}, {result['threads']} "
                    "threads, wall-clock per inference, all variants alternated in one run")
    for col in ("variant", "precision", "median ms", "p10-p90 ms", "runs", "x vs BLAS", "weights MB",
                "planned total MB", "resident MB (fresh process)"):
        t.add_column(col, justify="left" if col in ("variant", "precision") else "right")
    for r in result["rows"]:
        m = r["memory"]
        wb = m.get("weight_bytes")
        fresh = m.get("fresh_process", {})
        bar = " (fp32 bar)" if r.get("fp32_bar") else ""
        t.add_row(r["variant"] + (" (disturbed)" if r["disturbed"] else ""), (r.get("precision") or "-") + bar,
                  f"{r['median_ms']:.2f}", f"{r['p10_ms']:.2f}-{r['p90_ms']:.2f}", str(r["runs"]),
                  f"{r['speedup_vs_blas']:.2f}", f"{wb / 1e6:.1f}" if wb else "-",
                  f"{m['total_bytes'] / 1e6:.1f}" if "total_bytes" in m else "-",
                  f"{fresh['total_bytes'] / 1e6:.1f}" if "total_bytes" in fresh else "-")
    console.print(t)
    console.print("fp32 bar: a whole-graph fp32 peer a plan must not lose to; the other peers change the numerics "
                  "(bf16/fp16: OpenVINO's default precision on this CPU; int8: the static QDQ model). Resident MB "
                  "(fresh process): peak RSS over an import-only baseline of a fresh interpreter that loaded, "
                  "compiled and ran the variant (1 warm-up + 3 runs), the same for plans and peers.")
