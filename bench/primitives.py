"""Every primitive on every distinct Conv/Gemm layer: median time, spread, GFLOP/s and error, plus the
cost of each converter on that layer's input tensor, from the profile database (profiling what it lacks).

Usage: .venv/bin/python bench/primitives.py [--db PATH] [--threads 1,2] [MODEL ...]
(default: mobilenet_v2 resnet18). Prints a per-layer winners table and writes bench/out/primitives.csv and
bench/out/primitives.json with every (layer, primitive, threads) row.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

import edgetune  # noqa: F401
from edgetune.commands.profile import run_profile, thread_counts
from edgetune.device.cpu import summary_line
from edgetune.graph.stats import node_macs
from edgetune.kernels import registry
from edgetune.measure.db import node_signature
from edgetune.user_model import load_model


def describe(node, graph) -> str:  # noqa: ANN001
    if node.op == "Conv":
        w = graph.shape(node.inputs[1])
        x = graph.shape(node.inputs[0])
        dw = "dw " if node.attrs.get("group", 1) > 1 and node.attrs["group"] == x[1] else ""
        s = node.attrs["strides"][0]
        return f"{dw}{w[2]}x{w[3]}{'/' + str(s) if s > 1 else ''} {x[1]}->{w[0]} @{x[2]}"
    return f"{node.op} {graph.shape(node.inputs[0])}->{graph.shape(node.outputs[0])}"


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["mobilenet_v2", "resnet18"])
    ap.add_argument("--db")
    ap.add_argument("--threads", default=None)
    args = ap.parse_args(argv)
    console = Console(stderr=True)
    rows, convs = [], []
    for model in args.models:
        graph = load_model(model)
        db, _ = run_profile(graph, SimpleNamespace(db=args.db, threads=args.threads, time_cap=None, console=console))
        seen = set()
        for node in graph.nodes:
            if node.op not in ("Conv", "Gemm", "MatMul"):
                continue
            sig = node_signature(node, graph)
            if sig in seen:
                continue
            seen.add(sig)
            gflop = 2 * node_macs(node, graph) / 1e9
            for prim, reason in registry.candidates(node, graph):
                ver = db.get_verification(sig, prim.name)
                for t in thread_counts(args.threads):
                    rec = db.get_node(sig, prim.name, t)
                    rows.append({
                        "model": model, "layer": describe(node, graph), "node": node.name, "primitive": prim.name,
                        "precision": prim.precision, "threads": t, "median_ms": rec.median_ms if rec else None,
                        "spread": rec.spread if rec else None, "disturbed": rec.disturbed if rec else None,
                        "gflops": gflop / (rec.median_ms / 1e3) if rec else None,
                        "rel_error": ver.rel_error if ver else None,
                        "status": reason and f"declined: {reason}" or (
                            "excluded: " + ver.reason if ver and not ver.ok else
                            "measured" if rec else "not timed (pruned or not verified)"),
                    })
            x = node.inputs[0]
            for c in registry.converters():
                if c.src.key == "NCHW/float32" and len(graph.shape(x)) == 4:
                    rec = db.get_converter(c.name, graph.shape(x), 1)
                    if rec:
                        convs.append({"model": model, "layer": describe(node, graph), "converter": c.name,
                                      "shape": list(graph.shape(x)), "median_ms": rec.median_ms})
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    with open(out / "primitives.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "primitives.json").write_text(json.dumps({"nodes": rows, "converters": convs}, indent=1, default=str))
    print(f"CPU: {summary_line()}")
    print("Per-layer winners (verified fp32 and int8 primitives; median ms of the node alone; threads in @)")
    print(f"{'model':<13} {'layer':<24} {'fp32 best':<34} {'2nd fp32':<34} {'int8 best':<30} {'BLAS im2col':>12}")
    for model in args.models:
        layers = dict.fromkeys(r["layer"] for r in rows if r["model"] == model)
        for layer in layers:
            ok = [r for r in rows if r["model"] == model and r["layer"] == layer and r["status"] == "measured"]
            fp32 = sorted((r for r in ok if r["precision"] == "fp32"), key=lambda r: r["median_ms"])
            i8 = sorted((r for r in ok if r["precision"] == "int8"), key=lambda r: r["median_ms"])
            blas = [r for r in ok if r["primitive"] in ("conv.im2col.numpy", "gemm.numpy")]
            fmt = (lambda r: f"{r['primitive']}@{r['threads']} {r['median_ms']:.3f}" if r else "-")  # noqa: E731
            second = next((r for r in fp32[1:] if r["primitive"] != fp32[0]["primitive"]), None) if fp32 else None
            b = min((r["median_ms"] for r in blas), default=None)
            print(f"{model:<13} {layer:<24} {fmt(fp32[0] if fp32 else None):<34} {fmt(second):<34} "
                  f"{fmt(i8[0] if i8 else None):<30} {b if b is None else round(b, 3)!s:>12}")
    print("\nConverters on the layers' input tensors (median ms, 1 thread):")
    for c in convs[:40]:
        print(f"  {c['model']:<13} {c['layer']:<24} {c['converter']:<28} {c['median_ms']:.3f}")
    print(f"\nwrote {out / 'primitives.csv'} ({len(rows)} rows) and primitives.json")


if __name__ == "__main__":
    main(sys.argv[1:])
