"""`edgetune run MODEL --plan {reference,blas,PLAN.json}`: run a plan, check it, time it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from edgetune.commands import checks
from edgetune.errors import EdgetuneError
from edgetune.graph.reference import default_feeds
from edgetune.measure.overhead import executor_overhead
from edgetune.measure.process_peak import inprocess_peak_growth
from edgetune.measure.timing import time_callable
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import batch_of, resolve_plan
from edgetune.user_model import add_model_arguments, load_model_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo model name or path to an .onnx file")
    add_model_arguments(p)
    p.add_argument("--plan", default="blas", help="reference, blas, or a plan .json file (default: blas)")
    p.add_argument("--input", help="input tensor as a .npy file (default: seeded N(0,1) data)")
    p.add_argument("--output", help="write the first output to this .npy file")
    p.add_argument("--threads", type=int, default=None, help="threads for built-in plans (default: all cores)")
    p.add_argument("--time-cap", type=float, default=3.0, help="seconds of timing at most (default 3)")
    p.add_argument("--allow-foreign-plan", action="store_true",
                   help="run a plan tuned on another device or with other library versions")


def load_input(path: str | None, graph: Any) -> dict[str, np.ndarray]:

    if path is None:
        return default_feeds(graph)
    p = Path(path)
    if p.is_dir():
        raise EdgetuneError(f"--input {path}: is a directory, expected a .npy file")
    if not p.is_file():
        raise EdgetuneError(f"input file not found: {path}")
    if len(graph.inputs) != 1:
        raise EdgetuneError(f"--input {path}: model {graph.name} has {len(graph.inputs)} inputs "
                            f"({', '.join(graph.inputs)}); --input feeds a model with one input")
    with open(p, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise EdgetuneError(f"{path}: not a .npy file (no NumPy header; write it with numpy.save)")
    try:
        x = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise EdgetuneError(f"{path}: not a .npy array ({e})") from None
    name = graph.inputs[0]
    if tuple(x.shape) != tuple(graph.shape(name)):
        raise EdgetuneError(f"{path}: input has shape {tuple(x.shape)}, the model expects {graph.shape(name)}")
    if x.dtype.kind not in "fiub":
        raise EdgetuneError(f"{path}: input has dtype {x.dtype}, expected numbers ({graph.dtype(name)})")
    x = x.astype(graph.dtype(name))
    bad = int(x.size - np.isfinite(x).sum()) if x.dtype.kind == "f" else 0
    if bad:
        raise EdgetuneError(f"{path}: input contains NaN or Inf values ({bad} of {x.size})")
    return {name: x}


def execute(args: argparse.Namespace) -> dict[str, Any]:

    threads = checks.threads(args.threads, console=args.console) if args.threads is not None else None
    checks.positive(args.time_cap, "--time-cap")
    checks.output_file(args.output, "--output")
    graph = load_model_args(args)
    plan = resolve_plan(args.plan, graph, threads, args.allow_foreign_plan)
    feeds = load_input(args.input, graph)
    ex = Executor(graph, plan, check=args.plan != "reference", check_input=feeds, measure_memory=True)
    outputs = ex.run(feeds)
    growth = inprocess_peak_growth(lambda: ex.run(feeds))
    t = time_callable(lambda: ex.run(feeds), time_cap_s=args.time_cap)
    overhead = executor_overhead(ex, feeds)
    if args.output:
        np.save(args.output, next(iter(outputs.values())))
    mem = ex.memory().to_dict()
    return {
        "model": graph.name,
        "batch": batch_of(graph),
        "plan": args.plan,
        "latency_ms": {"median": t.median_ms, "p10": t.p10_ms, "p90": t.p90_ms, "min": t.min_ms,
                       "spread": t.spread, "runs": t.runs, "disturbed": t.disturbed,
                       "foreign_cores": t.foreign_cores},
        "memory_bytes": {**mem, "measured_peak_growth": growth},
        "max_rel_error_vs_reference": ex.max_error,
        "executor": {**overhead, "ort_spin": ex.ort_spin, "libraries": sorted(ex.libraries)},
        "outputs": {k: list(v.shape) for k, v in outputs.items()},
        "top5": [int(i) for i in np.argsort(-next(iter(outputs.values())).ravel())[:5]],
    }


def render(result: dict[str, Any], console: Any) -> None:
    lat, mem = result["latency_ms"], result["memory_bytes"]
    t = Table(title=f"edgetune run {result['model']} --plan {result['plan']} (wall-clock per inference, "
                    f"batch {result.get('batch', 1)})")
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("median latency", f"{lat['median']:.2f} ms")
    t.add_row("p10 / p90", f"{lat['p10']:.2f} / {lat['p90']:.2f} ms ({lat['runs']} runs)")
    t.add_row("spread (p90-p10)/median", f"{lat['spread'] * 100:.1f} %" + (" DISTURBED" if lat["disturbed"] else ""))
    t.add_row("weights (as the kernels hold them)", f"{mem['weight_bytes'] / 1e6:.2f} MB")
    t.add_row("kernel scratch buffers (reported)", f"{mem['workspace_bytes'] / 1e6:.2f} MB")
    how = "measured per kernel" if mem.get("measured") else "reported by kernels"
    t.add_row(f"resident: weights + buffers + library state ({how})", f"{mem['resident_bytes'] / 1e6:.2f} MB")
    t.add_row("largest temporary of one kernel call", f"{mem['peak_transient_bytes'] / 1e6:.2f} MB")
    t.add_row("activation arena peak (liveness plan)", f"{mem['peak_activation_bytes'] / 1e6:.2f} MB")
    t.add_row("total planned", f"{mem['total_bytes'] / 1e6:.2f} MB")
    if mem.get("measured_peak_growth") is not None:
        t.add_row("peak RSS growth during one inference (measured)", f"{mem['measured_peak_growth'] / 1e6:.2f} MB")
    e = result["executor"]
    spin = f" (ONNX Runtime workers spin: {e['ort_spin']})" if "onnxruntime" in e["libraries"] else ""
    t.add_row("steps (kernels + converters)", f"{e['steps']}{spin}")
    t.add_row("executor's own work (kernels stubbed, measured)",
              f"{e['per_step_us']:.2f} us per step, {e['per_inference_us']:.1f} us per inference "
              f"({e['per_inference_us'] / 1e3 / lat['median'] * 100:.2f} % of the latency)")
    if result["max_rel_error_vs_reference"] is not None:
        t.add_row("max rel. error vs reference", f"{result['max_rel_error_vs_reference']:.2e}")
    console.print(t)
