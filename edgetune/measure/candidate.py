"""One candidate (node, primitive, threads) prepared, verified and timed, in whatever process runs this.

Why a unit of its own: it is the part of profiling that runs third-party native code on shapes it may
never have seen, so `edgetune.measure.isolation` runs it in a worker process that may crash or hang.
The result is plain data (`CandidateOutcome`, picklable); the ProfileDB is written by the caller only,
so a crash can never leave a half-written row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgetune.graph.ir import Graph, Node
from edgetune.kernels import registry
from edgetune.kernels.base import FP32, PrepareContext, Primitive
from edgetune.kernels.registry import converter_route
from edgetune.kernels.threads import set_threads
from edgetune.kernels.verify import verify
from edgetune.measure.load import LoadMonitor
from edgetune.measure.timing import Timing, time_callable
from edgetune.runtime import kernel_memory

# A kernel whose single warm call takes over this multiple of the node's best so far is recorded from
# three calls alone (see CandidateMeasurer._probe).
HOPELESS_FACTOR = 6.0
# The hopeless verdict is trusted only when other processes used at most this many cores meanwhile (the
# timing harness's default threshold), read over a window of at least PROBE_WINDOW_S.
MAX_FOREIGN_CORES = 0.3
PROBE_WINDOW_S = 0.1


@dataclass
class CandidateOutcome:
    """What one request produced. `verified` is (ok, rel_error, reason) when verification ran; `failure`
    is why the candidate must be excluded (a raised error, a crash, a time-out) and `stage` where."""

    verified: tuple[bool, float | None, str] | None = None
    timing: Timing | None = None
    weight_bytes: int = 0
    workspace_bytes: int = 0
    memory: tuple[int, int] | None = None  # measured (resident, transient) bytes
    failure: str | None = None
    stage: str = ""


@dataclass(frozen=True)
class CandidateRequest:
    node: str
    primitive: str
    threads: int
    verify: bool
    time: bool
    best_ms: float = float("inf")  # the node's best so far at the largest thread count
    probe: bool = False  # allowed to stop after three calls when hopeless (largest thread count only)


class CandidateMeasurer:
    """Prepares, verifies and times candidates of one graph in this process."""

    def __init__(self, graph: Graph, samples: dict[str, np.ndarray], time_cap_s: float) -> None:
        self.graph, self.samples, self.time_cap_s = graph, samples, time_cap_s
        self._nodes = {n.name: n for n in graph.nodes}

    def measure(self, req: CandidateRequest, on_stage: Callable[[str], Any] = lambda s: None) -> CandidateOutcome:
        node, prim = self._nodes[req.node], registry.get(req.primitive)
        set_threads(req.threads)
        on_stage("prepare")
        inputs = self.inputs(node, prim)
        try:
            if kernel_memory.available():
                kernel_memory.warm_up_pools(req.threads)
            kernel, mem = kernel_memory.measure_kernel_memory(
                lambda: prim.prepare(node, PrepareContext(self.graph, req.threads, self.samples)), inputs)
        except Exception as e:  # noqa: BLE001 - a library that cannot prepare this node is excluded for it
            return CandidateOutcome(failure=f"prepare raised {type(e).__name__}: {e}"[:300], stage="prepare")
        out = CandidateOutcome(weight_bytes=int(kernel.weight_bytes), workspace_bytes=int(kernel.workspace_bytes),
                               memory=mem.as_tuple() if mem is not None else None)
        if req.verify:
            on_stage("verification")
            out.verified = self._verify(node, prim, req.threads, kernel)
            if not out.verified[0]:
                return out
        if req.time:
            on_stage("timing")
            try:
                out.timing = self._probe(kernel, inputs, req) or time_callable(
                    lambda: kernel(*inputs), time_cap_s=self.time_cap_s, max_runs=100, quiet_wait_s=0.3)
            except Exception as e:  # noqa: BLE001 - a kernel that verified but fails now is excluded, not fatal
                out.failure, out.stage = f"timing raised {e!r}"[:300], "timing"
        return out

    def _verify(self, node: Node, prim: Primitive, threads: int, kernel: Any) -> tuple[bool, float | None, str]:
        res = verify(prim, node, self.graph, samples=self.samples, threads=threads, kernel=kernel)
        rel = float(res.rel_error) if np.isfinite(res.rel_error) else None
        return bool(res.ok), rel, res.reason or ("" if res.ok else "verification failed")

    def inputs(self, node: Node, prim: Primitive) -> list[Any]:
        """The node's dynamic inputs (reference samples) converted to the primitive's input formats."""
        g = self.graph
        out = []
        for value, want in zip(g.dynamic_inputs(node), prim.input_formats(node, g), strict=True):
            x = np.ascontiguousarray(self.samples[value])
            for conv in converter_route(FP32, want) or []:
                x = conv.prepare(g.shape(value))(x)
            out.append(x)
        return out

    @staticmethod
    def _probe(kernel: Any, inputs: list[Any], req: CandidateRequest) -> Timing | None:
        """Three timed calls; a kernel whose fastest is over HOPELESS_FACTOR x the node's best so far is
        recorded from them (runs=3) instead of a full timing: it cannot be chosen, and slow kernels dominate
        profiling time. The minimum of three keeps one hiccup from condemning a good kernel, and the calls
        are watched for foreign load: under load the verdict is not trusted and the full timing (with its
        retries and `disturbed` flag) runs instead, so a busy neighbour cannot make a kernel look hopeless."""
        if not req.probe or not np.isfinite(req.best_ms):
            return None
        samples = []
        monitor = LoadMonitor().start()
        for _ in range(3):
            t0 = time.perf_counter()
            kernel(*inputs)
            samples.append((time.perf_counter() - t0) * 1e3)
        if (pad := PROBE_WINDOW_S - monitor.elapsed_s()) > 0:
            time.sleep(pad)  # /proc/stat ticks are 10 ms: a shorter window reads noise
        load = monitor.stop()
        ms = min(samples)
        if ms <= HOPELESS_FACTOR * req.best_ms:
            return None
        if load.foreign_cores is not None and load.foreign_cores > MAX_FOREIGN_CORES:
            return None
        med = float(np.median(samples))
        return Timing(median_ms=med, p10_ms=ms, p90_ms=max(samples), min_ms=ms, spread=(max(samples) - ms) / med,
                      runs=3, foreign_cores=load.foreign_cores, disturbed=False, ci_rel=float("inf"))
