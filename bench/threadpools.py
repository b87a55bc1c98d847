"""Cross-library thread-pool interference: torch and ONNX Runtime layers called alternately.

Why: idle pools that spin steal the cores from the next library; on this 2-core machine alternating
torch and ORT convolutions once cost 2.6x the sum of their isolated times. This checks that the
hygiene in `edgetune/__init__.py` and `kernels/threads.py` keeps the ratio near 1 (target <= 1.15).
Isolated and alternating blocks are interleaved in rounds so that drift in machine load hits both.

Run: .venv/bin/python bench/threadpools.py [--threads 2] [--rounds 5] [--calls 30]
"""

from __future__ import annotations

import edgetune  # noqa: F401 - thread-pool environment before numpy/torch/onnxruntime load

# isort: split
import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgetune.device.cpu import summary_line
from edgetune.graph.ir import Graph, Node, Value
from edgetune.kernels.base import PrepareContext
from edgetune.kernels.registry import get
from edgetune.kernels.threads import set_threads

OUT = Path(__file__).resolve().parent / "out" / "threadpools.json"


def conv_graph(c: int, co: int, hw: int, group: int) -> Graph:
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((co, c // group, 3, 3)) / np.sqrt(9 * c / group)).astype(np.float32)
    node = Node(
        "conv",
        "Conv",
        ["x", "w", "b"],
        ["y"],
        {
            "strides": [1, 1],
            "dilations": [1, 1],
            "pads": [1, 1, 1, 1],
            "group": group,
            "kernel_shape": [3, 3],
        },
    )
    values = {"x": Value("x", (1, c, hw, hw)), "y": Value("y", (1, co, hw, hw))}
    return Graph("bench", [node], ["x"], ["y"], values, {"w": w, "b": np.zeros(co, np.float32)})


def kernel(name: str, g: Graph, threads: int) -> Callable[[], object]:
    prim = get(name)
    node = g.nodes[0]
    k = prim.prepare(node, PrepareContext(g, threads=threads))
    x = np.random.default_rng(1).standard_normal(g.shape("x")).astype(np.float32)
    if prim.input_formats(node, g)[0].layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return lambda: k(x)


def idle_gap() -> None:
    """0.5 ms of idleness: separates wake-up/cache costs from pool contention in the table."""
    time.sleep(0.0005)


def timed(fn: Callable[[], object], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


class ForeignLoad:
    """CPU cores used by other processes over a window (from /proc/stat minus our own CPU time)."""

    def __enter__(self) -> ForeignLoad:
        self.t0, self.busy0, self.own0 = time.perf_counter(), self._busy(), self._own()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.t0
        self.cores = max(0.0, (self._busy() - self.busy0 - (self._own() - self.own0)) / wall)

    @staticmethod
    def _busy() -> float:
        try:
            f = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except OSError:
            return 0.0
        return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system


def measure_pair(
    a: Callable[[], object], b: Callable[[], object], rounds: int, calls: int
) -> dict[str, float]:
    """Median ms of a (torch) alone, b (ORT) alone and the pair (a then b), interleaved over `rounds`."""

    def pair() -> None:
        a()
        b()

    for fn in (a, b, pair):  # warm-up
        timed(fn, 5)
    ta: list[float] = []
    tb: list[float] = []
    tp: list[float] = []
    for _ in range(rounds):
        ta += timed(a, calls)
        tb += timed(b, calls)
        tp += timed(pair, calls)
    ms = {k: statistics.median(v) * 1e3 for k, v in (("torch_ms", ta), ("ort_ms", tb), ("pair_ms", tp))}
    ms["isolated_sum_ms"] = ms["torch_ms"] + ms["ort_ms"]
    ms["ratio"] = ms["pair_ms"] / ms["isolated_sum_ms"]
    return ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args()
    set_threads(args.threads)
    dense, dw = conv_graph(64, 64, 56, 1), conv_graph(144, 144, 56, 144)
    pairs = [
        ("conv3x3 64@56", "conv.onednn.torch", dense, "conv.mlas.ort", dense),
        ("conv3x3 64@56 (NHWC)", "conv.onednn_nhwc.torch", dense, "conv.mlas.ort", dense),
        ("dw3x3 144@56", "conv.onednn.torch", dw, "conv.mlas.ort", dw),
        ("dw3x3 144@56 (NHWC)", "conv.onednn_nhwc.torch", dw, "conv.mlas.ort", dw),
        ("torch conv + ORT dw", "conv.onednn.torch", dense, "conv.mlas.ort", dw),
        # control: no second library at all, only an idle gap of about a torch dw call
        ("control: sleep + ORT dw", "sleep", dw, "conv.mlas.ort", dw),
    ]
    rows = []
    for label, ta, ga, tb, gb in pairs:
        a = idle_gap if ta == "sleep" else kernel(ta, ga, args.threads)
        b = kernel(tb, gb, args.threads)
        with ForeignLoad() as load:
            ms = measure_pair(a, b, args.rounds, args.calls)
        rows.append(
            {"pair": label, "torch_primitive": ta, "ort_primitive": tb, **ms, "foreign_cores": load.cores}
        )

    print(f"CPU: {summary_line()}")
    print(f"threads={args.threads}  rounds={args.rounds}  calls/round={args.calls}  (median ms)")
    head = f"{'pair':<22} {'torch':>7} {'ort':>7} {'iso sum':>8} {'alt pair':>9} {'ratio':>6} {'load':>5}"
    print(head)
    print("-" * len(head))
    for r in rows:
        flag = "" if r["ratio"] <= 1.15 else "  > 1.15"
        print(
            f"{r['pair']:<22} {r['torch_ms']:7.3f} {r['ort_ms']:7.3f} {r['isolated_sum_ms']:8.3f} "
            f"{r['pair_ms']:9.3f} {r['ratio']:6.2f} {r['foreign_cores']:5.2f}{flag}"
        )
    print("load = CPU cores used by other processes during the pair's measurement (noise indicator)")
    print("control row: the ratio an idle gap alone causes (threads and vCPUs go to sleep, caches cool)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "threads": args.threads,
                "rounds": args.rounds,
                "calls": args.calls,
                "env": {
                    k: os.environ.get(k)
                    for k in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "KMP_BLOCKTIME")
                },
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
