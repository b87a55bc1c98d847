"""Whole-model latency of plans and peers, measured side by side: every variant once per round, order
rotated, in one process (the only comparison the noisy machines edgetune runs on allow); then every peer's
resident memory, each in a fresh process (`measure.peer_memory`), measured as a plan's is (`plan_memory`).

Why the peers' memory is always measured here: a peer's weights say nothing of what running it costs
(ORT's arenas, OpenVINO's plugin and repacked weights, torch's start-up), and it costs only a few seconds
per peer (2-4 s on a 2-core machine: a fresh interpreter, its imports, one compile), a small part of any
`tune` or `bench` run. The plans' memory is not measured here: `compare` gets compiled executors, whose
planned memory it reports (`tune` plans by measured per-kernel memory, `bench/memory.py` checks it against a
fresh process); `bench` measures its plans in a fresh process itself (it has their plan files).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import onnx

from edgetune.errors import EdgetuneError
from edgetune.graph.reference import default_feeds
from edgetune.measure.db import ProfileDB
from edgetune.measure.peer_memory import measure_peer_memory
from edgetune.measure.timing import time_alternating
from edgetune.peers import build_peers
from edgetune.peers.runtimes import INT8_PEERS, TORCH_PEERS, Peer
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import graph_signature

# Each variant per alternating round: untimed calls for COMPARE_SETTLE_S (at least one), then COMPARE_BLOCK - 1
# timed ones (see measure.timing.time_alternating: spinning pools steal the next variant's cores).
COMPARE_BLOCK = 6
COMPARE_SETTLE_S = 0.06


def executor_precision(ex: Executor) -> str:
    """The precisions a plan's kernels compute in, "+"-joined: "fp32", "fp32+int8"."""
    return "+".join(sorted({precision for _, precision in ex.kernels.values()})) or "fp32"


def fresh_process_memory(measured: dict[str, int]) -> dict[str, int]:
    """A fresh-process measurement (plan_memory's or peer_memory's `measured`) as a row's memory keys."""
    return {"static_bytes": int(measured["static"]), "transient_bytes": int(measured["transient"]),
            "total_bytes": int(measured["total"])}


def compare(src: Any, variants: dict[str, Any], *, threads: int, time_cap: float, console: Any,
            int8: bool = True, peers: bool = True,
            calibration: list[dict[str, Any]] | None = None, db: ProfileDB | None = None) -> list[dict[str, Any]]:
    """Time the given executors/callables together with the peers, alternating; one row per variant.

    `variants` maps a name to an Executor (memory planned) or to a (callable, weight_bytes) pair. Each row:
    variant, median_ms, p10_ms, p90_ms, runs, spread, disturbed, foreign_cores, memory (an Executor's
    planned memory; a peer's weights, note and `fresh_process`: static/transient/total bytes measured in a
    fresh interpreter, or `error`), precision (what the variant computes in; None for a bare callable) and
    kind ("plan" or "peer"). `peers=False` times the variants alone (a closed loop's later rounds);
    `calibration`: the feeds the int8 peers calibrate on (default: stand-ins, `peers.calibration_feeds`);
    `db`: where the peers' fresh-process memory is kept per model, peer and threads (a warm run reads it)."""
    feeds = default_feeds(src.graph)
    fns: dict[str, Any] = {}
    memory: dict[str, dict[str, Any]] = {}
    precision: dict[str, str | None] = {}
    for name, v in variants.items():
        if isinstance(v, Executor):
            fns[name] = (lambda ex=v: ex.run(feeds))
            memory[name] = v.memory().to_dict()
            precision[name] = executor_precision(v)
        else:
            fns[name], wb = v
            memory[name] = {"weight_bytes": wb}
            precision[name] = None
    if peers:
        _add_peers(src, feeds, threads, int8, fns, memory, precision, console, calibration, db)
    console.print(f"timing {len(fns)} variants side by side (alternating rounds, up to {time_cap:.0f} s)...")
    timings = time_alternating(fns, time_cap_s=time_cap, max_runs=500, target_rel_ci=0.02, block=COMPARE_BLOCK,
                               settle_s=COMPARE_SETTLE_S)
    rows = []
    for name, t in timings.items():
        rows.append({"variant": name, "median_ms": t.median_ms, "p10_ms": t.p10_ms, "p90_ms": t.p90_ms,
                     "runs": t.runs, "spread": t.spread, "disturbed": t.disturbed,
                     "foreign_cores": t.foreign_cores, "memory": memory.get(name, {}),
                     "precision": precision.get(name), "kind": "plan" if name in variants else "peer"})
    return rows


def _add_peers(src: Any, feeds: dict[str, Any], threads: int, int8: bool, fns: dict[str, Any],
               memory: dict[str, dict[str, Any]], precision: dict[str, str | None], console: Any,
               calibration: list[dict[str, Any]] | None = None, db: ProfileDB | None = None) -> None:
    """Build the whole-graph peers into `fns` and measure their resident memory, each in a fresh process."""
    torch_module = src.torch_module()
    names = ["ONNX Runtime fp32", *(["ONNX Runtime int8"] if int8 else []),
             "OpenVINO f32, default precision" + (", int8" if int8 else ""), *(["torch eager"] if torch_module else [])]
    console.print(f"preparing peers ({', '.join(names)})...")
    skipped: list[str] = []
    peers = build_peers(src.graph, src.onnx_model, feeds, threads, int8=int8, torch_module=torch_module,
                        skipped=skipped, calibration=calibration)
    for line in skipped:
        console.print(line)
    for peer in peers:
        fns[peer.name] = peer.fn
        memory[peer.name] = {"weight_bytes": peer.weight_bytes, "note": peer.note}
        precision[peer.name] = peer.precision
        if peer.inference_precision is not None:
            memory[peer.name]["inference_precision"] = peer.inference_precision
    _measure_peers_memory(src, _not_in_db(src, peers, threads, memory, db), feeds, threads, memory, console, db)


def _not_in_db(src: Any, peers: list[Peer], threads: int, memory: dict[str, dict[str, Any]],
               db: ProfileDB | None) -> list[Peer]:
    """The peers whose fresh-process memory the DB does not hold yet; the others' is filled in from it."""
    if db is None:
        return peers
    sig, todo = graph_signature(src.graph), []
    for peer in peers:
        known = db.get_peer_memory(sig, peer.name, threads)
        if known is None:
            todo.append(peer)
        else:
            memory[peer.name]["fresh_process"] = fresh_process_memory(known)
    return todo


def _measure_peers_memory(src: Any, peers: list[Peer], feeds: dict[str, Any], threads: int,
                          memory: dict[str, dict[str, Any]], console: Any, db: ProfileDB | None = None) -> None:
    """Each peer's resident memory in a fresh process, on the model files it ran (written once); kept in
    `db` when given."""
    if not peers:
        return
    console.print(f"measuring the resident memory of {len(peers)} peers, each in a fresh process...")
    sig = graph_signature(src.graph)
    with tempfile.TemporaryDirectory() as d:
        fp32 = Path(d) / "model.onnx"
        onnx.save(src.onnx_model, fp32)
        quantized = next((p.model for p in peers if p.name in INT8_PEERS and p.model is not None), None)
        qpath = Path(d) / "int8.onnx"
        if quantized is not None:
            onnx.save(quantized, qpath)
        for peer in peers:
            try:
                r = measure_peer_memory(peer.name, fp32, threads, feeds=feeds,
                                        quantized=qpath if quantized is not None else None,
                                        zoo_name=src.zoo_name if peer.name in TORCH_PEERS else None)
            except EdgetuneError as e:  # one peer's failure leaves its memory unmeasured, not the comparison
                memory[peer.name]["fresh_process"] = {"error": str(e)}
                console.print(f"edgetune: warning: {e}", markup=False, soft_wrap=True)
                continue
            memory[peer.name]["fresh_process"] = fresh_process_memory(r["measured"])
            if db is not None:
                db.put_peer_memory(sig, peer.name, threads, r["measured"])
