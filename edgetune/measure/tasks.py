"""The profiler's fixed measurements as plain-data tasks: converters, ONNX Runtime fusion pairs, thread-pool
switches and the executor's dispatch cost, each performed by one function of its kind.

Why tasks: which of these measurements a model needs is known before any of them runs (unlike the
per-node candidate work, whose pruning depends on the results so far), so the profiler lists them, keeps
the ones the ProfileDB lacks and runs them in one loop. A task names what it measures (keys, shapes,
node names, pool states) and holds no library object, so it can be pickled and performed elsewhere
(another process or machine) by `perform` on the same graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from edgetune.graph.ir import Graph
from edgetune.graph.reference import reference_samples
from edgetune.kernels import registry
from edgetune.kernels.base import FP32, Converter
from edgetune.kernels.registry import converter_route
from edgetune.kernels.segments import segment_kernel
from edgetune.kernels.threads import set_threads
from edgetune.measure.overhead import measure_dispatch
from edgetune.measure.switching import measure_switches
from edgetune.measure.timing import Timing, time_callable

DISPATCH_KEY = "executor.dispatch"
TaskKind = Literal["converter", "ort_pair", "switch", "dispatch", "segment"]
SEGMENT_KEY = "segment"
# A segment's outputs may differ from the reference by this much (max |out - ref| / max |ref|): fp32
# backends reorder sums and fuse, and errors add up over a block.
SEGMENT_TOLERANCE = 1e-3


class SegmentRejected(Exception):
    """A segment its backend cannot compile, or whose outputs are off the reference: excluded, not fatal."""


@dataclass(frozen=True, kw_only=True)
class MeasurementTask:
    """One measurement stored in the DB's converters table under (`key`, `shape`, `threads`).

    `kind` selects the function performing it; `nodes` are the two adjacent node names of an ORT pair;
    `states` the two (pool, threads) states of a switch (whose DB threads is 0); `description` is the
    progress bar's line."""

    kind: TaskKind
    key: str
    library: str = ""  # the backend of a segment
    shape: tuple[int, ...] = ()
    threads: int = 1
    description: str = ""
    nodes: tuple[str, ...] = ()
    states: tuple[tuple[str, int], ...] = ()

    @property
    def db_key(self) -> tuple[str, tuple[int, ...], int]:
        """(converter, shape, threads): the row this task writes."""
        return self.key, self.shape, self.threads


# Tasks that compile a backend's code for a run of nodes it has never seen: a crash there must not end the
# profile, so where the context has a crash-isolated performer (the profiler's worker process) they run there.
ISOLATED_KINDS = frozenset({"segment"})


class TaskContext:
    """What performing a task needs beyond the task: the graph, its reference samples (computed on first
    use: only ORT pairs need them, and a fully cached profile should not pay for them), the time cap and,
    optionally, `isolated`: where the `ISOLATED_KINDS` run instead of this process (it returns the timing, or
    the segment's exclusion, a crash of the backend included)."""

    def __init__(self, graph: Graph, time_cap_s: float, samples: dict[str, np.ndarray] | None = None) -> None:
        self.graph, self.time_cap_s, self._samples = graph, time_cap_s, samples
        self.isolated: Callable[[MeasurementTask], Timing | SegmentRejected] | None = None

    @property
    def samples(self) -> dict[str, np.ndarray]:
        if self._samples is None:
            self._samples = reference_samples(self.graph)
        return self._samples


# ---- building tasks ------------------------------------------------------------------------------

def converter_task(conv: Converter, shape: tuple[int, ...]) -> MeasurementTask:
    """A converter on one tensor shape, timed single-threaded (converters run at 1 thread)."""
    shape = tuple(int(d) for d in shape)
    return MeasurementTask(kind="converter", key=conv.name, shape=shape, threads=1,
                           description=f"{conv.name} {shape}")


def ort_pair_task(a: str, b: str, key: str, threads: int) -> MeasurementTask:
    """Two adjacent nodes `a`, `b` run as one ORT session at `threads` (DB key from `pair_key`)."""
    return MeasurementTask(kind="ort_pair", key=key, threads=threads, nodes=(a, b),
                           description=f"{a}+{b} (one ORT session)@{threads}")


def switch_task(key: str, a: tuple[str, int], b: tuple[str, int]) -> MeasurementTask:
    """The switch between two (pool, threads) states (DB key from `switch_key`, threads 0)."""
    return MeasurementTask(kind="switch", key=key, threads=0, states=(a, b),
                           description=f"thread-pool switch {a} <-> {b}")


def segment_task(key: str, library: str, threads: int, nodes: tuple[str, ...], kind: str) -> MeasurementTask:
    """A run of nodes compiled whole by `library` at `threads` (DB key from `segment_key`)."""
    return MeasurementTask(kind="segment", key=key, library=library, threads=threads, nodes=nodes,
                           description=f"{library}@{threads} {kind} {nodes[0]}..{nodes[-1]} ({len(nodes)} nodes)")


def segment_key(library: str, signature: str, whole_graph: bool) -> str:
    """DB key of a segment measurement; the whole graph is timed with ORT's own spinning (as it runs)."""
    return f"{SEGMENT_KEY}:{library}:{signature}" + (":whole" if whole_graph else "")


def dispatch_task() -> MeasurementTask:
    """The executor's own cost per step."""
    return MeasurementTask(kind="dispatch", key=DISPATCH_KEY, threads=1, description="executor dispatch")


# ---- performing them -----------------------------------------------------------------------------

def _converter_named(name: str) -> Converter:
    for conv in registry.converters():
        if conv.name == name:
            return conv
    raise KeyError(f"no converter named {name!r}")


def _time_converter(task: MeasurementTask, ctx: TaskContext) -> Timing:
    """The converter on a random tensor already in its source format (converted from fp32 NCHW first)."""
    conv, shape = _converter_named(task.key), task.shape
    set_threads(1)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for c in converter_route(FP32, conv.src) or []:
        x = c.prepare(shape)(x)
    fn = conv.prepare(shape)
    return _time(lambda: fn(x), ctx)


def _compiled_on_samples(task: MeasurementTask, ctx: TaskContext, spin: str, library: str
                         ) -> tuple[Callable[[], list[Any]], list[str]]:
    """The task's nodes compiled as one kernel of `library`, bound to their reference samples (threads
    set), and the values it outputs."""
    nodes = [ctx.graph.node(n) for n in task.nodes]
    kernel, ins, outs = segment_kernel(ctx.graph, nodes, task.threads, spin, library)
    xs = [np.ascontiguousarray(ctx.samples[v]) for v in ins]
    set_threads(task.threads)
    return (lambda: kernel(*xs)), outs


def _time(call: Callable[[], Any], ctx: TaskContext) -> Timing:
    """Every task's timing budget: the context's cap, at most 100 runs, after the cores are quiet."""
    return time_callable(call, time_cap_s=ctx.time_cap_s, max_runs=100, quiet_wait_s=0.3)


def _time_ort_pair(task: MeasurementTask, ctx: TaskContext) -> Timing:
    """Both nodes in one ORT session on the reference samples: the price of fusing them in a plan."""
    call, _ = _compiled_on_samples(task, ctx, "stop", "onnxruntime")
    return _time(call, ctx)


def _time_segment(task: MeasurementTask, ctx: TaskContext) -> Timing:
    """The run compiled whole, checked against the reference samples, then timed on them. A run that is the
    whole graph spins as ORT does by default ("on"), as a one-segment plan runs; others park ("stop")."""
    spin = "on" if task.key.endswith(":whole") else "stop"
    try:
        call, outs = _compiled_on_samples(task, ctx, spin, task.library)
        got = call()
    except Exception as e:  # noqa: BLE001 - a backend that cannot compile or run the run excludes it
        first = (str(e).splitlines() or [""])[0][:200]
        raise SegmentRejected(f"{task.library} cannot run it: {type(e).__name__}: {first}") from None
    for name, y in zip(outs, got, strict=True):
        ref = ctx.samples[name]
        err = float(np.max(np.abs(np.asarray(y, np.float64) - ref)) / max(float(np.max(np.abs(ref))), 1e-12))
        if not err <= SEGMENT_TOLERANCE:
            raise SegmentRejected(f"output {name} is off the reference by {err:.2e} (> {SEGMENT_TOLERANCE:g})")
    return _time(call, ctx)


def _time_switch(task: MeasurementTask, ctx: TaskContext) -> Timing:
    """The switch penalty between the task's two pool states (two alone, one alternating: twice the cap)."""
    a, b = task.states
    return measure_switches([(a, b)], ctx.time_cap_s * 2)[task.key]


def _time_dispatch(task: MeasurementTask, ctx: TaskContext) -> Timing:
    """The executor's per-step cost (independent of the graph)."""
    return measure_dispatch()


PERFORMERS: dict[str, Callable[[MeasurementTask, TaskContext], Timing]] = {
    "converter": _time_converter, "ort_pair": _time_ort_pair, "switch": _time_switch, "dispatch": _time_dispatch,
    "segment": _time_segment,
}


def perform(task: MeasurementTask, ctx: TaskContext) -> Timing:
    """Measure one task (nothing is stored here: the caller owns the DB); a segment the backend cannot run,
    or crashed on in the isolated performer, raises SegmentRejected."""
    if task.kind in ISOLATED_KINDS and ctx.isolated is not None:
        outcome = ctx.isolated(task)
        if isinstance(outcome, SegmentRejected):
            raise outcome
        return outcome
    return PERFORMERS[task.kind](task, ctx)


def perform_here(task: MeasurementTask, ctx: TaskContext) -> Timing | SegmentRejected:
    """`perform` in this process, the exclusion returned rather than raised (the isolated worker's side)."""
    try:
        return PERFORMERS[task.kind](task, ctx)
    except SegmentRejected as e:
        return e
