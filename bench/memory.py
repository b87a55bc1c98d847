"""Planned vs measured memory of plans, each run in a fresh subprocess.

Usage: .venv/bin/python bench/memory.py [MODEL ...]   (default: mobilenet_v2 resnet18)
Prints, per model and plan: planned resident memory (static: per-kernel measured persistent bytes plus
library start-up, see edgetune.runtime.kernel_memory), activation arena + largest kernel temporary
(transient) and total, against the resident-memory growth measured by edgetune.measure.plan_memory;
also the total the kernels' own weight/workspace reports would give. Writes bench/out/memory.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import edgetune  # noqa: F401
from edgetune.device.cpu import summary_line
from edgetune.measure.plan_memory import measure_plan_memory
from edgetune.runtime.plan import NodeChoice, Plan
from edgetune.user_model import load_model

THREADS = 2


def plans_for(model: str, tmp: Path) -> dict[str, str]:
    graph = load_model(model)
    ort = {n.name: NodeChoice("conv.mlas.ort" if n.op == "Conv" else "gemm.mlas.ort" if n.op == "Gemm" else "op.ort",
                              THREADS) for n in graph.nodes}
    torch = {n.name: NodeChoice("conv.onednn.torch" if n.op == "Conv" else "gemm.torch" if n.op == "Gemm"
                                else f"ref.{n.op.lower()}", THREADS) for n in graph.nodes}
    out = {"blas": "blas"}
    for name, choices in (("onnxruntime (one session)", ort), ("torch oneDNN + reference", torch)):
        path = tmp / f"{model}-{name.split()[0]}.json"
        Plan.for_graph(graph, choices).save(path)
        out[name] = str(path)
    return out


def main(models: list[str]) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for model in models:
            for name, spec in plans_for(model, Path(d)).items():
                r = measure_plan_memory(model, spec, THREADS)
                planned = r["planned"]["total_bytes"]
                measured = r["measured"]["total"]
                rows.append({"model": model, "plan": name, "planned_static": r["planned_static"],
                             "measured_static": r["measured"]["static"], "planned_transient": r["planned_transient"],
                             "measured_transient": r["measured"]["transient"], "planned_total": planned,
                             "measured_total": measured, "error": (planned - measured) / measured,
                             "self_reported_total": r["self_reported_total"],
                             "self_reported_error": (r["self_reported_total"] - measured) / measured,
                             "startup_bytes": r["planned"]["startup_bytes"]})
    head = (f"{'model':<13} {'plan':<28} {'static plan/meas MB':>20} {'activ. plan/meas MB':>20} "
            f"{'total plan/meas MB':>20} {'error':>7} {'self-reported':>20}")
    print(f"CPU: {summary_line()}")
    print("Planned vs measured resident memory (fresh subprocess per row; MB = 1e6 bytes)")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['model']:<13} {r['plan']:<28} "
              f"{r['planned_static'] / 1e6:>9.1f}/{r['measured_static'] / 1e6:<10.1f} "
              f"{r['planned_transient'] / 1e6:>9.1f}/{r['measured_transient'] / 1e6:<10.1f} "
              f"{r['planned_total'] / 1e6:>9.1f}/{r['measured_total'] / 1e6:<10.1f} {r['error'] * 100:>+6.1f}% "
              f"{r['self_reported_total'] / 1e6:>11.1f} {r['self_reported_error'] * 100:>+6.1f}%")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "memory.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:] or ["mobilenet_v2", "resnet18"])
