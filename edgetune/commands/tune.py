"""`edgetune tune [MODEL]`: the main job, glued from its parts: profile (commands/profile.py), the
loop (planning/loop.py: space, search, candidates, side-by-side measurement, plan.json), then the
report (report/html.py) and summary.json, then the report's check in a browser."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from edgetune.commands import checks
from edgetune.commands.precision_data import precision_data
from edgetune.commands.profile import add_db_arguments, check_db_arguments, run_profile, thread_counts
from edgetune.data import add_data_arguments
from edgetune.errors import EdgetuneError
from edgetune.planning.loop import tune
from edgetune.planning.results import TuneConfig
from edgetune.planning.verdict import FP32_PEERS
from edgetune.report.browser import check_page, find_browser
from edgetune.report.html import write_report
from edgetune.search import STRATEGIES, strategy_help
from edgetune.search.objective import OBJECTIVES
from edgetune.user_model import DEFAULT_MODEL, add_model_arguments, open_model_args

PRECISIONS = ("fp32", "fp16w", "bf16", "int8")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"zoo name or .onnx path (default {DEFAULT_MODEL})")
    add_model_arguments(p)
    p.add_argument("--out", help="output folder (default runs/<model>-<time>)")
    p.add_argument("--strategy", default="qlearning", help=strategy_help("qlearning"))
    p.add_argument("--budget", type=int, default=1000, help="plan evaluations for the strategy (default 1000)")
    p.add_argument("--objective", default="latency", help="latency (default) or memory")
    p.add_argument("--max-memory", type=int, default=None, help="with latency: plans must fit in BYTES")
    p.add_argument("--precisions", default=None,
                   help="allowed precisions, comma-separated (default fp32; fp32,fp16w for --objective memory)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare-time", type=float, default=20.0, help="seconds of end-to-end comparison at most")
    p.add_argument("--quick", action="store_true", help="only the chosen strategy and exact (no comparison runs)")
    p.add_argument("--no-screenshot", action="store_true",
                   help="do not open report.html in headless Chromium to check it and save report.png")
    add_db_arguments(p)
    add_data_arguments(p)


def default_out_dir(model: str) -> Path:
    """runs/<model>-<time>: a new folder per run, so no run overwrites another's report."""
    return Path("runs") / f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def _config(args: argparse.Namespace) -> TuneConfig:
    if args.strategy not in STRATEGIES:
        raise EdgetuneError(f"unknown strategy {args.strategy!r} (valid: {', '.join(sorted(STRATEGIES))})")
    if args.objective not in OBJECTIVES:
        raise EdgetuneError(f"unknown objective {args.objective!r} (valid: {', '.join(OBJECTIVES)})")
    if args.budget < 1:
        raise EdgetuneError(f"--budget must be at least 1 plan evaluation, got {args.budget}")
    checks.positive(args.compare_time, "--compare-time")
    checks.non_negative(args.max_memory, "--max-memory")
    if args.max_memory == 0:
        raise EdgetuneError("--max-memory must be > 0 bytes, got 0")
    checks.non_negative(args.seed, "--seed")
    check_db_arguments(args)
    default_prec = "fp32,fp16w" if args.objective == "memory" else "fp32"
    precisions = tuple(p.strip() for p in (args.precisions or default_prec).split(",") if p.strip())
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or not precisions:
        raise EdgetuneError(f"--precisions: unknown {', '.join(bad) or '(empty)'} (valid: {', '.join(PRECISIONS)})")
    return TuneConfig(strategy=args.strategy, budget=args.budget, objective=args.objective,
                      max_memory=args.max_memory, threads=thread_counts(args.threads), precisions=precisions,
                      seed=args.seed, compare_time_cap_s=args.compare_time, compare_all_strategies=not args.quick,
                      **({} if args.time_cap is None else {"profile_time_cap_s": args.time_cap}))


def execute(args: argparse.Namespace) -> dict[str, Any]:
    """Profile what the DB lacks, run the loop, write report.html and summary.json, check the report."""
    cfg = _config(args)
    if args.out:
        checks.output_dir(args.out, "--out")
    src = open_model_args(args)
    out = checks.output_dir(args.out or default_out_dir(src.graph.name), "--out")
    data = precision_data(args, src, args.console)  # bad data fails before minutes of profiling
    db, summary = run_profile(src.graph, args, this_kind_only=True)  # --cluster: this machine's kind only
    if summary.new_measurements == 0:
        args.console.print("profile: nothing new to measure, every cost came from the database")
    result, report = tune(src, cfg, out, db, summary, args.console, data)
    result.report = str(write_report(report, out))
    printed = result.to_dict()
    (out / "summary.json").write_text(json.dumps(printed, indent=1, default=str))
    if not args.no_screenshot:  # the check is of the written report: printed, not in summary.json
        printed["report_check"] = _check_report(result.report, args.console)
    return printed


def _check_report(report: str | None, console: Any) -> dict[str, Any] | None:
    """Open the report in headless Chromium when one is installed: warn about console errors or broken
    images, and save a full-page screenshot (report.png) beside it. Best effort: never fails the run."""
    if not report or find_browser() is None:
        return None
    try:
        check = check_page(Path(report), Path(report).with_name("report.png"))
    except (OSError, RuntimeError, TimeoutError, ValueError, KeyError) as e:
        checks.warn(console, f"could not check the report in a browser: {e}")
        return None
    broken = [src for src, ok in check.images if not ok]
    if check.errors or broken:
        checks.warn(console, f"report.html in a browser: {len(check.errors)} console error(s), "
                             f"{len(broken)} broken image(s)")
    return {"screenshot": str(check.screenshot), "console_errors": check.errors, "broken_images": broken,
            "tables": check.tables}


def _measured(result: dict[str, Any]) -> str:
    """", 7.79 ms measured" for the exact optimum's plan when it was run end to end."""
    exact = next((c for c in result.get("candidates", []) if str(c.get("name", "")).startswith("exact")), {})
    return f", {exact['measured_ms']:.2f} ms measured" if exact.get("measured_ms") else ""


def _peer_memory(row: dict[str, Any]) -> int | None:
    """A peer's resident bytes measured in a fresh process (compare's `fresh_process`), None if not measured."""
    return row.get("memory", {}).get("fresh_process", {}).get("total_bytes")


def render(result: dict[str, Any], console: Any) -> None:
    lat, mem, srch = result["latency_ms"], result["memory_bytes"], result["search"]
    t = Table(title=f"edgetune tune {result['model']}: measured side by side, "
                    f"batch {result.get('batch', 1)} (median of alternating rounds)")
    for col in ("variant", "precision", "latency ms", "x vs BLAS", "x vs ONNX Runtime", "memory MB"):
        t.add_column(col, justify="left" if col in ("variant", "precision") else "right")
    comparison = {str(r.get("variant", "")): r for r in result.get("comparison", [])}
    ort = comparison.get("onnxruntime fp32", {})
    plan_precision = str(comparison.get(srch["chosen_candidate"], {}).get("precision") or "")
    rows = [("edgetune plan", plan_precision, lat["plan"], mem["plan"]),
            ("BLAS fp32 baseline", "fp32", lat["blas"], mem["blas"]),
            ("ONNX Runtime fp32 (whole graph)", "fp32", lat["onnxruntime"],
             _peer_memory(ort) or mem.get("onnxruntime_weights"))]
    for name, r in comparison.items():  # the other peers that were timed (OpenVINO, torch eager, ...)
        if r.get("kind") == "peer" and name != "onnxruntime fp32":
            rows.append((name, str(r.get("precision") or ""), r["median_ms"],
                         _peer_memory(r) or r.get("memory", {}).get("weight_bytes")))
    for name, precision, ms, m in rows:
        bar = name in FP32_PEERS or name.startswith("ONNX Runtime fp32")
        t.add_row(name, precision + (" (fp32 bar)" if bar else ""), f"{ms:.2f}", f"{lat['blas'] / ms:.2f}",
                  f"{lat['onnxruntime'] / ms:.2f}", f"{m / 1e6:.1f}" if m else "-")
    console.print(t)
    console.print(f"memory: planned total (weights + workspace + activation arena) for edgetune plans; for the peers "
                  f"resident memory measured in a fresh process (peak RSS over an import-only baseline; weights "
                  f"where that failed). fp32 bar: the peers the verdict holds the plan to; the others change the "
                  f"numerics. Search: {srch['strategy']} reached "
                  f"{srch['predicted_ms']:.2f} ms predicted in "
                  f"{srch['evaluations']} evaluations; exact optimum {srch['optimum_ms']:.2f} ms "
                  f"predicted{_measured(result)} "
                  f"(design space 10^{srch['design_space_log10']:.0f} plans). Chosen by measurement: "
                  f"{srch['chosen_candidate']}.")
    console.print(result["verdict"]["statement"])
    e = result["executor"]
    console.print(f"executor's own work: {e['per_step_us']:.2f} us per step ({e['steps']} steps, "
                  f"{e['per_inference_us']:.1f} us per inference)")
    shapes = ", ".join(f"{k}={'x'.join(map(str, v))}" for k, v in result.get("input_shapes", {}).items())
    upgraded = result.get("upgraded_from_opset")
    generic = result.get("generic_nodes") or {}
    console.print(f"input shape: {shapes}" + (f"; upgraded from opset {upgraded}" if upgraded else "")
                  + (f"; {len(generic)} node(s) on a generic backend ({', '.join(sorted(set(generic.values())))})"
                     if generic else ""))
    if result.get("placement"):
        pl = result["placement"]
        console.print("placement (core clusters, measured side by side): " + ", ".join(
            f"{r['label']} {r['median_ms']:.2f} ms" for r in pl["rows"]) + f"; the plan runs on {pl['chosen']}")
    console.print(f"plan: {result['plan']}\nreport: {result['report']}")
    shot = result.get("report_check") or {}
    if shot.get("screenshot"):
        console.print(f"report screenshot (headless Chromium): {shot['screenshot']}")
