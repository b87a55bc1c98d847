"""Measure what running a plan really costs in resident memory, in a fresh subprocess.

Run as `python -m edgetune.measure.plan_memory MODEL PLAN THREADS [self] [shapes=JSON]` (PLAN: reference,
blas or a .json; JSON: the concrete input shapes, as `--input-shape` gives them); prints one JSON line.
Phases: (0) imports, library registry, and one throw-away load of the model -> RSS0 (the first load's lazy
imports, onnx.reference and the zoo, keep ~14 MB that later loads do not add: imports, not the plan);
(1) load the graph, compile the executor (measuring each kernel's memory unless `self` is given, see
edgetune.runtime.kernel_memory; this first pays the start-up of the libraries the plan uses), drop the
graph's own copy of the weights (kernels keep what they need), run once so that libraries allocate their
persistent buffers -> RSS1; (2) reset the peak counter, run inferences -> peak.

Measured: static = RSS1 - RSS0 (what the prepared plan keeps: weights and buffers as held by the
kernels, library sessions and caches, library start-up), transient = peak - RSS1 (activations and call
temporaries), total = peak - RSS0. Planned (Executor.memory()): static = resident_bytes, transient =
peak_activation_bytes + peak_transient_bytes, total = total_bytes.
glibc's mmap threshold is pinned (MALLOC_MMAP_THRESHOLD_) so that large freed arrays go back to the OS
and RSS follows live memory instead of the allocator's high-water mark.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from typing import Any

from edgetune.errors import EdgetuneError
from edgetune.graph.reference import default_feeds
from edgetune.kernels import registry
from edgetune.kernels.threads import set_threads
from edgetune.runtime.executor import Executor
from edgetune.runtime.kernel_memory import peak_rss_bytes, reset_peak, rss_bytes
from edgetune.runtime.plan import resolve_plan
from edgetune.user_model import load_model


def _child(model: str, plan_spec: str, threads: int, measure: bool = True,
           input_shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, Any]:
    import numpy as np  # noqa: F401 - part of the import baseline

    registry.load_all()
    set_threads(threads)
    # the loader's lazy imports (onnx.reference, zoo: ~14 MB once) are not the plan's
    warm = load_model(model, input_shapes=input_shapes)
    warm.initializers.clear()
    del warm
    gc.collect()
    rss0 = rss_bytes()
    graph = load_model(model, input_shapes=input_shapes)
    plan = resolve_plan(plan_spec, graph, threads, allow_foreign=True)
    feeds = default_feeds(graph)
    ex = Executor(graph, plan, check=False, measure_memory=measure)
    graph.initializers.clear()  # a deployed plan keeps only what its kernels hold
    ex.run(feeds)  # warm-up: libraries allocate their persistent buffers (OpenBLAS, ORT arenas) on first use
    gc.collect()
    rss1 = rss_bytes()
    reset_peak()
    for _ in range(3):
        ex.run(feeds)
    peak = peak_rss_bytes()
    mem = ex.memory().to_dict()
    return {"rss_imports": rss0, "rss_compiled": rss1, "peak_run": peak, "planned": mem}


def measure_plan_memory(model: str, plan_spec: str, threads: int, timeout_s: float = 600, *,
                        measure_kernels: bool = True,
                        input_shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, Any]:
    """Planned vs measured memory of running `plan_spec` on `model` (at `input_shapes` where it has symbolic
    dims) in a fresh interpreter; the plan's figures use measured per-kernel memory unless `measure_kernels`
    is False (kernels' own reports)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    args = [model, plan_spec, str(threads)] + ([] if measure_kernels else ["self"])
    if input_shapes:
        args.append("shapes=" + json.dumps({k: list(v) for k, v in input_shapes.items()}))
    proc = subprocess.run([sys.executable, "-m", "edgetune.measure.plan_memory", *args],
                          capture_output=True, text=True, timeout=timeout_s, env=env)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgetuneError(f"memory measurement of {model} / {plan_spec} failed: {last}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    p = r["planned"]
    r["measured"] = {"static": r["rss_compiled"] - r["rss_imports"], "transient": r["peak_run"] - r["rss_compiled"],
                     "total": r["peak_run"] - r["rss_imports"]}
    r["planned_static"] = p["resident_bytes"]
    r["planned_transient"] = p["peak_activation_bytes"] + p["peak_transient_bytes"]
    r["self_reported_total"] = p["weight_bytes"] + p["workspace_bytes"] + p["peak_activation_bytes"]
    return r


if __name__ == "__main__":
    if not os.path.exists("/proc/self/clear_refs"):
        sys.exit("peak-memory measurement needs Linux /proc")
    extra = sys.argv[4:]
    shapes = next((json.loads(a[len("shapes="):]) for a in extra if a.startswith("shapes=")), None)
    print(json.dumps(_child(sys.argv[1], sys.argv[2], int(sys.argv[3]), measure="self" not in extra,
                            input_shapes={k: tuple(v) for k, v in shapes.items()} if shapes else None)))
