"""What running a peer (ONNX Runtime, OpenVINO, torch eager on the whole model) really costs in resident
memory, in a fresh subprocess, measured the way `plan_memory` measures a plan.

Run as `python -m edgetune.measure.peer_memory PEER MODEL.onnx THREADS FEEDS.npz [ZOO_NAME]`; prints one
JSON line. Phases, as in plan_memory: (0) imports (numpy, edgetune, the peer's runtime: onnxruntime,
openvino, or torch and the zoo) -> RSS0, the import-only baseline; (1) setup: load the feeds, load and
compile the model the peer's own way (`edgetune.peers.runtimes`: an ORT session on the file, OpenVINO's
read_model + compile_model, the zoo's torch module), one warm-up run -> RSS1; (2) reset the peak counter,
run 3 inferences -> peak. static = RSS1 - RSS0 (what the prepared runtime keeps: weights as it holds them,
arenas, caches, its start-up), transient = peak - RSS1, total = peak - RSS0 (the figure `bench` shows as
"resident MB (fresh process)" for peers and plans alike). glibc's mmap threshold is pinned as for plans.

The parent (`measure_peer_memory`) writes the model the peer runs (the int8 QDQ model for the int8 peers,
quantised once in the parent: quantisation is not part of deploying it) and the feeds to a temporary
folder; the child never sees the tuner's state.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgetune.errors import EdgetuneError
from edgetune.graph.reference import default_feeds
from edgetune.peers import runtimes
from edgetune.runtime.kernel_memory import peak_rss_bytes, reset_peak, rss_bytes
from edgetune.user_model import open_model

RUNS = 3


def _import_runtime(peer: str) -> None:
    """Import what the peer runs on, so that the baseline holds the imports and nothing else."""
    if peer in runtimes.TORCH_PEERS:
        import torch  # noqa: F401 - optional runtime of the torch peers, part of the import baseline

        from edgetune import zoo  # noqa: F401 - the torch peers' modules come from the zoo; torch-only import
    elif peer in runtimes.OPENVINO_PEERS:
        import openvino  # noqa: F401 - optional runtime of the OpenVINO peers, part of the import baseline
    else:
        import onnxruntime  # noqa: F401 - loaded on demand by the peers; part of the import baseline


def _build(peer: str, model_path: str, feeds: dict[str, np.ndarray], threads: int, zoo_name: str | None
           ) -> runtimes.Peer:
    if peer in runtimes.TORCH_PEERS:
        from edgetune import zoo  # torch loaded on demand: only the torch peers need it (in the baseline)

        if zoo_name is None:
            raise EdgetuneError(f"{peer}: the torch peers need a zoo model")
        return runtimes.torch_peer(peer, zoo.torch_module(zoo_name), feeds, threads, in_place=True)
    if peer in runtimes.OPENVINO_PEERS:
        return runtimes.openvino_peer(peer, model_path, feeds, threads)
    return runtimes.ort_peer(peer, model_path, feeds, threads)


def _child(peer: str, model_path: str, threads: int, feeds_path: str, zoo_name: str | None) -> dict[str, Any]:
    _import_runtime(peer)
    gc.collect()
    rss0 = rss_bytes()
    with np.load(feeds_path, allow_pickle=False) as data:
        feeds = {k: np.ascontiguousarray(data[k]) for k in data.files}
    p = _build(peer, model_path, feeds, threads, zoo_name)
    p.fn()  # warm-up: runtimes allocate their persistent buffers (arenas, packed weights) on first use
    gc.collect()
    rss1 = rss_bytes()
    reset_peak()
    for _ in range(RUNS):
        p.fn()
    peak = peak_rss_bytes()
    return {"peer": peer, "rss_imports": rss0, "rss_compiled": rss1, "peak_run": peak, "precision": p.precision,
            "inference_precision": p.inference_precision}


def _feeds_for(model: str | Path) -> dict[str, np.ndarray]:
    return default_feeds(open_model(str(model)).graph)


def _onnx_of(model: str | Path) -> onnx.ModelProto:
    path = Path(model)
    if path.suffix.lower() == ".onnx" or path.exists():
        return onnx.load(str(path))
    from edgetune import zoo  # a zoo name: its cached ONNX export (torch loaded on demand)

    return zoo.build_onnx(str(model))


def measure_peer_memory(peer: str, model: str | Path, threads: int, *, feeds: dict[str, np.ndarray] | None = None,
                        quantized: onnx.ModelProto | str | Path | None = None, zoo_name: str | None = None,
                        timeout_s: float = 300) -> dict[str, Any]:
    """Measured resident memory of `peer` (a name of `edgetune.peers.runtimes.PEER_NAMES`) running `model`
    (an .onnx path or a zoo name) at `threads` threads in a fresh interpreter.

    `feeds`: the inputs (default: edgetune's stand-in inputs for the model). `quantized`: the QDQ model the
    int8 peers run (default: quantised here as `build_peers` does). `zoo_name`: the torch peers' module
    (default: `model` itself, which must then be a zoo name). Returns the child's RSS figures and
    `measured` = {static, transient, total} bytes (see the module docstring)."""
    if peer not in runtimes.PEER_NAMES:
        raise EdgetuneError(f"unknown peer {peer!r} (peers: {', '.join(runtimes.PEER_NAMES)})")
    if not os.path.exists("/proc/self/clear_refs"):
        raise EdgetuneError("peak-memory measurement needs Linux /proc")
    feeds = _feeds_for(model) if feeds is None else feeds
    with tempfile.TemporaryDirectory() as d:
        feeds_path, model_path = Path(d) / "feeds.npz", Path(d) / "model.onnx"
        np.savez(feeds_path, **feeds)
        if peer in runtimes.TORCH_PEERS:
            zoo_name = zoo_name or str(model)
            model_path = Path(model)  # unused by the child
        elif peer in runtimes.INT8_PEERS:
            if quantized is None:
                quantized = runtimes.quantize_int8(_onnx_of(model), runtimes.calibration_feeds(feeds))
            if isinstance(quantized, onnx.ModelProto):
                onnx.save(quantized, model_path)
            else:
                model_path = Path(quantized)
        elif Path(model).suffix.lower() == ".onnx" or Path(model).exists():
            model_path = Path(model)
        else:
            onnx.save(_onnx_of(model), model_path)
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
        args = [peer, str(model_path), str(threads), str(feeds_path), *([zoo_name] if zoo_name else [])]
        try:
            proc = subprocess.run([sys.executable, "-m", "edgetune.measure.peer_memory", *args],
                                  capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            raise EdgetuneError(f"memory measurement of {peer} did not finish within {timeout_s:g} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgetuneError(f"memory measurement of {peer} failed: {last}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    r["measured"] = {"static": r["rss_compiled"] - r["rss_imports"], "transient": r["peak_run"] - r["rss_compiled"],
                     "total": r["peak_run"] - r["rss_imports"]}
    return r


if __name__ == "__main__":
    if not os.path.exists("/proc/self/clear_refs"):
        sys.exit("peak-memory measurement needs Linux /proc")
    a = sys.argv[1:]
    print(json.dumps(_child(a[0], a[1], int(a[2]), a[3], a[4] if len(a) > 4 else None)))
