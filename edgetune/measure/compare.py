"""Whole-model latency of plans and peers, measured side by side: every variant once per round, order
rotated, in one process (the only comparison the noisy machines edgetune runs on allow)."""

from __future__ import annotations

from typing import Any

from edgetune.graph.reference import default_feeds
from edgetune.measure.timing import time_alternating
from edgetune.peers import build_peers
from edgetune.runtime.executor import Executor

# Each variant per alternating round: untimed calls for COMPARE_SETTLE_S (at least one), then COMPARE_BLOCK - 1
# timed ones (see measure.timing.time_alternating: spinning pools steal the next variant's cores).
COMPARE_BLOCK = 6
COMPARE_SETTLE_S = 0.06


def compare(src: Any, variants: dict[str, Any], *, threads: int, time_cap: float, console: Any,
            int8: bool = True) -> list[dict[str, Any]]:
    """Time the given executors/callables together with the peers, alternating; one row per variant.

    `variants` maps a name to an Executor (memory planned) or to a (callable, weight_bytes) pair."""
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
