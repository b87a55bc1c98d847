"""Accuracy, latency and memory under an accuracy budget, on real labelled data (issue 12's benchmark).

Usage: .venv/bin/python bench/accuracy.py [--data-root DIR] [--budget POINTS] [--threads 1,2]
       [--calibration N] [--evaluation N] [MODEL ...]
(default models: efficientnet_lite0 on datasets/imagenet-val-1300 and resnet20_cifar on
datasets/cifar10-test-jpeg, found under --data-root or $EDGETUNE_DATA). For each model it runs
`edgetune tune MODEL --data ... --max-accuracy-drop POINTS --json` (profile, fp32 search, the precision search,
the end-to-end side-by-side measurement of the chosen plan, the BLAS fp32 baseline and every peer: ONNX
Runtime fp32 and static int8, OpenVINO f32, default precision and int8 on the same QDQ model, torch eager)
and prints, per variant: what it computes in, its accuracy on the evaluation split and its drop, its median
latency from the one alternating run, the speed-up over the fastest fp32 peer, its memory (planned for the
plan, resident in a fresh process for peers), and whether it meets the budget. The int8 peers are calibrated
on the same calibration split as the plan. Writes bench/out/accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULTS = {"efficientnet_lite0": "datasets/imagenet-val-1300", "resnet20_cifar": "datasets/cifar10-test-jpeg"}
FP32_PEERS = ("onnxruntime fp32", "openvino f32", "torch eager NCHW", "torch eager channels_last")


def run_tune(model: str, data: Path, args: argparse.Namespace, out: Path) -> dict:
    cmd = [sys.executable, "-m", "edgetune", "tune", model, "--data", str(data), "--max-accuracy-drop",
           str(args.budget), "--calibration-samples", str(args.calibration), "--evaluation-samples",
           str(args.evaluation), "--threads", args.threads, "--out", str(out), "--no-screenshot", "--quick", "--json"]
    if args.db:
        cmd += ["--db", args.db]
    print(f"running: {' '.join(cmd)}", file=sys.stderr, flush=True)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"tune {model} failed (exit {done.returncode})")
    return json.loads(done.stdout)


def rows_of(res: dict) -> list[dict]:
    """One row per measured variant: the chosen plan, the BLAS baseline and every peer."""
    prec = res.get("precision") or {}
    ref = prec.get("reference_value")
    peers_acc = prec.get("peers", {})
    chosen_acc = prec.get("chosen_accuracy") or {}
    comparison = {r["variant"]: r for r in res["comparison"]}
    best_fp32 = min((r["median_ms"] for n, r in comparison.items() if n in FP32_PEERS), default=None)
    plan_name = res["search"]["chosen_candidate"]
    configs = {c["name"]: c["accuracy"] for c in res["candidates"] if c.get("accuracy")}
    out = []
    for name, r in comparison.items():
        if r["kind"] == "plan" and name not in (plan_name, "BLAS fp32 baseline") and name not in configs:
            continue
        if name == plan_name:
            acc, label = chosen_acc, f"edgetune plan ({name})"
            mem = r["memory"].get("total_bytes")
        elif name in configs:  # a precision configuration measured beside the plan, not chosen
            acc, label = configs[name], f"  edgetune candidate: {name}"
            mem = r["memory"].get("total_bytes")
        elif name in peers_acc:
            acc, label = peers_acc[name], name
            mem = r["memory"].get("fresh_process", {}).get("total_bytes")
        else:  # fp32: the reference's accuracy
            acc, label = {"value": ref, "drop": 0.0, "meets_budget": True}, name
            mem = r["memory"].get("total_bytes") or r["memory"].get("fresh_process", {}).get("total_bytes")
        out.append({"model": res["model"], "variant": label, "precision": r.get("precision") or "fp32",
                    "accuracy": acc.get("value"), "drop": acc.get("drop"), "meets_budget": acc.get("meets_budget"),
                    "median_ms": r["median_ms"], "vs_best_fp32_peer": best_fp32 / r["median_ms"] if best_fp32 else None,
                    "memory_mb": mem / 1e6 if mem else None})
    return out


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=list(DEFAULTS))
    ap.add_argument("--data-root", default=os.environ.get("EDGETUNE_DATA"))
    ap.add_argument("--budget", type=float, default=0.5)
    ap.add_argument("--threads", default="2")
    ap.add_argument("--calibration", type=int, default=300)
    ap.add_argument("--evaluation", type=int, default=1000)
    ap.add_argument("--db")
    args = ap.parse_args(argv)
    if not args.data_root:
        raise SystemExit("bench/accuracy.py needs the labelled data sets: set EDGETUNE_DATA or --data-root")
    rows, summaries = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            data = Path(args.data_root) / DEFAULTS.get(model, "")
            res = run_tune(model, data, args, Path(tmp) / model)
            summaries[model] = {"precision": res.get("precision"), "verdict": res["verdict"],
                                "memory_bytes": res["memory_bytes"], "device": res["device"]}
            rows += rows_of(res)
    cpu = next(iter(summaries.values()))["device"].get("cpu", "?") if summaries else "?"
    print(f"CPU: {cpu}; threads {args.threads}; budget {args.budget} top-1 points; calibration {args.calibration} + "
          f"evaluation {args.evaluation} disjoint samples; latency: median of one alternating side-by-side run")
    head = (f"{'model':<18} {'variant':<58} {'precision':<10} {'top-1 %':>8} {'drop':>6} {'ms':>7} "
            f"{'x fp32 peer':>11} {'MB':>7} {'budget':>6}")
    print(head)
    for r in rows:
        acc = f"{r['accuracy']:.2f}" if r["accuracy"] is not None else "-"
        drop = f"{r['drop']:+.2f}" if r["drop"] is not None else "-"
        vs = f"{r['vs_best_fp32_peer']:.2f}" if r["vs_best_fp32_peer"] else "-"
        mb = f"{r['memory_mb']:.1f}" if r["memory_mb"] else "-"
        ok = {True: "yes", False: "NO", None: "-"}[r["meets_budget"]]
        print(f"{r['model']:<18} {r['variant'][:58]:<58} {r['precision']:<10} {acc:>8} {drop:>6} "
              f"{r['median_ms']:>7.2f} {vs:>11} {mb:>7} {ok:>6}")
    for model, s in summaries.items():
        p = s["precision"] or {}
        print(f"{model}: {p.get('full_evaluations')} full evaluations; {s['verdict']['statement']}")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "accuracy.json").write_text(json.dumps({"rows": rows, "summaries": summaries}, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
