"""Does a plan cost what its parts cost, and does a one-library plan run as fast as that library alone?

Usage: .venv/bin/python bench/parity.py [--threads 2] [--time-cap 12] [MODEL ...]
(default models: mobilenet_v2 resnet18 efficientnet_lite0 resnet20_cifar).

Table 1 (parity): the whole graph as one ONNX Runtime session run by edgetune's executor (spin mode "auto",
i.e. ORT's own defaults) against ONNX Runtime called directly as a user would (the `bench` peer: the original
model file, `SessionOptions()` defaults), and against the same plan with workers that never spin; and where
OpenVINO is installed, the whole graph as one OpenVINO segment run by the executor against OpenVINO called
directly (the "openvino f32" peer: read_model, compile_model with the latency hint and
INFERENCE_PRECISION_HINT=f32, one reused infer request; target: within 3 %); all variants alternated round by
round in one process, each run back to back per round: untimed for 60 ms (a spinning pool steals the next
variant's cores for tens of ms), then 5 timed calls (median, p10-p90).

Table 2 (mixed plans, sum of parts): ORT everywhere except every third convolution on numpy im2col, so that
several ORT sessions alternate with numpy steps, for each ORT spin mode. "sum of parts" is the sum of every
step's median time measured alone on its real inputs; "plan / parts" > 1 is what running the steps in
sequence costs beyond their isolated times (pools waking, spinning workers stealing cores, cold caches).
Prints both tables with the CPU and writes bench/out/parity.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

import edgetune  # noqa: F401 - thread-pool environment before numpy/torch load
from edgetune.device.cpu import describe, summary_line
from edgetune.graph.reference import default_feeds
from edgetune.kernels.segments import fusable_primitive
from edgetune.measure.compare import COMPARE_BLOCK, COMPARE_SETTLE_S
from edgetune.measure.overhead import executor_overhead
from edgetune.measure.timing import time_alternating, time_callable
from edgetune.peers.runtimes import OV_F32, openvino_peer, openvino_unavailable, ort_session
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import NodeChoice, Plan
from edgetune.user_model import open_model

DEFAULT_MODELS = ["mobilenet_v2", "resnet18", "efficientnet_lite0", "resnet20_cifar"]


def all_ort_plan(graph: Any, threads: int, spin: str = "auto", library: str = "onnxruntime") -> Plan:
    """The whole graph on `library`'s fusable primitives: one segment of it."""
    choices = {n.name: NodeChoice(fusable_primitive(n, library), threads) for n in graph.nodes}
    return Plan.for_graph(graph, choices, ort_spin=spin)


def mixed_plan(graph: Any, threads: int, spin: str) -> Plan:
    plan = all_ort_plan(graph, threads, spin)
    for n in [n for n in graph.nodes if n.op == "Conv"][1::3]:
        plan.choices[n.name] = NodeChoice("conv.im2col.numpy", threads)
    return plan


def sum_of_parts(ex: Executor, feeds: dict[str, Any], cap: float) -> float:
    """Each step's median alone, on the inputs it sees in a real run, summed (ms)."""
    from edgetune.kernels.threads import set_threads

    total = 0.0
    for step, (args, _) in zip(ex.steps, ex.trace(feeds), strict=True):
        set_threads(step.threads)
        total += time_callable(lambda f=step.fn, a=args: f(*a), time_cap_s=cap, max_runs=200).median_ms
    return total


def parity_rows(model: str, threads: int, cap: float, console: Console) -> list[dict[str, Any]]:
    src = open_model(model)
    g = src.graph
    feeds = default_feeds(g)
    x = feeds[g.inputs[0]]
    sess = ort_session(src.onnx_model, threads)
    name = sess.get_inputs()[0].name
    plan_on, plan_off = Executor(g, all_ort_plan(g, threads)), Executor(g, all_ort_plan(g, threads, "off"))
    fns = {"onnxruntime called directly": lambda: sess.run(None, {name: x}),
           f"edgetune plan (spin {plan_on.ort_spin})": lambda: plan_on.run(feeds),
           "edgetune plan (spin off)": lambda: plan_off.run(feeds)}
    if openvino_unavailable() is None:
        direct = openvino_peer(OV_F32, src.onnx_model, feeds, threads)
        plan_ov = Executor(g, all_ort_plan(g, threads, library="openvino"))
        fns["openvino called directly (f32)"] = direct.fn
        fns["edgetune plan on openvino"] = lambda: plan_ov.run(feeds)
    console.print(f"{model}: parity, {len(fns)} variants alternated for up to {cap:.0f} s...")
    t = time_alternating(fns, time_cap_s=cap, max_runs=600, target_rel_ci=0.01, block=COMPARE_BLOCK,
                         settle_s=COMPARE_SETTLE_S)
    base = {"onnxruntime": t["onnxruntime called directly"].median_ms}
    if "openvino called directly (f32)" in t:
        base["openvino"] = t["openvino called directly (f32)"].median_ms
    over = executor_overhead(plan_on, feeds)
    lib = lambda k: "openvino" if "openvino" in k else "onnxruntime"  # noqa: E731
    return [{"model": model, "variant": k, "median_ms": v.median_ms, "p10_ms": v.p10_ms, "p90_ms": v.p90_ms,
             "runs": v.runs, "disturbed": v.disturbed, "vs_direct": base[lib(k)] / v.median_ms,
             "executor_us": over["per_inference_us"] if k.startswith("edgetune plan (spin on") else None}
            for k, v in t.items()]


def mixed_rows(model: str, threads: int, cap: float, console: Console) -> list[dict[str, Any]]:
    g = open_model(model).graph
    feeds = default_feeds(g)
    exs = {spin: Executor(g, mixed_plan(g, threads, spin)) for spin in ("stop", "off")}
    console.print(f"{model}: mixed plans ({len(exs['stop'].steps)} steps), alternated for up to {cap:.0f} s...")
    t = time_alternating({s: (lambda e=e: e.run(feeds)) for s, e in exs.items()}, time_cap_s=cap, max_runs=400,
                         target_rel_ci=0.01, block=COMPARE_BLOCK,
                         settle_s=COMPARE_SETTLE_S)
    rows = []
    for spin, ex in exs.items():
        parts = sum_of_parts(ex, feeds, cap=0.15)
        rows.append({"model": model, "ort_spin": spin, "steps": len(ex.steps),
                     "ort_sessions": sum(1 for s in ex.steps if "ort" in s.primitive), "median_ms": t[spin].median_ms,
                     "p10_ms": t[spin].p10_ms, "p90_ms": t[spin].p90_ms, "parts_ms": parts,
                     "plan_over_parts": t[spin].median_ms / parts, "disturbed": t[spin].disturbed})
    return rows


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--time-cap", type=float, default=12.0)
    args = ap.parse_args(argv)
    console = Console(stderr=True)
    parity, mixed = [], []
    for model in args.models:
        parity += parity_rows(model, args.threads, args.time_cap, console)
        mixed += mixed_rows(model, args.threads, args.time_cap, console)
    print(f"CPU: {summary_line()}")
    print(f"Table 1: whole-graph plans vs their library called directly ({args.threads} threads, batch 1, alternating "
          "rounds in one process; ratio = that library's direct median / variant median, > 1 is faster)")
    print(f"{'model':<20} {'variant':<32} {'median ms':>10} {'p10-p90 ms':>15} {'runs':>5} {'vs direct':>10}")
    for r in parity:
        print(f"{r['model']:<20} {r['variant']:<32} {r['median_ms']:>10.3f} "
              f"{r['p10_ms']:>7.3f}-{r['p90_ms']:<7.3f} {r['runs']:>5} {r['vs_direct']:>9.3f}x"
              + (" disturbed" if r["disturbed"] else "")
              + (f"  (executor's own work {r['executor_us']:.1f} us)" if r["executor_us"] is not None else ""))
    print("\nTable 2: mixed plans (every third conv on numpy im2col, the rest ORT) vs the sum of their parts")
    print(f"{'model':<20} {'ORT spin':<8} {'steps':>5} {'ORT steps':>9} {'plan ms':>9} {'p10-p90 ms':>15} "
          f"{'parts ms':>9} {'plan/parts':>10}")
    for r in mixed:
        print(f"{r['model']:<20} {r['ort_spin']:<8} {r['steps']:>5} {r['ort_sessions']:>9} {r['median_ms']:>9.3f} "
              f"{r['p10_ms']:>7.3f}-{r['p90_ms']:<7.3f} {r['parts_ms']:>9.3f} {r['plan_over_parts']:>10.3f}"
              + (" disturbed" if r["disturbed"] else ""))
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "parity.json").write_text(json.dumps({"device": describe(), "parity": parity, "mixed": mixed}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
