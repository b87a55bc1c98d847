"""What edgetune must know about a library, written once, in the library's own package.

Why one descriptor: a library's thread pool, start-up, switch-cost probe and graph segments were once
spread over seven modules, so adding one meant editing all of them and forgetting one was silent. Now
each package under `edgetune/kernels/libraries/` exposes `LIBRARY` (and its `ThreadPool`); the
registry, the thread-pool hygiene, the executor, the profiler and the memory measurement read these
fields and nothing else. Packages import no third-party library at package level: the descriptor must
load on machines where the library is missing, so that the registry can say it is unavailable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type names only: the graph IR and Kernel are below this module already
    from edgetune.graph.ir import Graph, Node
    from edgetune.kernels.base import Kernel

# A compiled run of nodes: (kernel, the values it reads, the values it writes).
Segment = tuple["Kernel", list[str], list[str]]


@dataclass(frozen=True)
class ThreadPool:
    """A pool of worker threads that one or more libraries run on.

    name: identity in the DB's switch-cost keys ("switch:numpy@1<->ort@2") and in start-up figures.
    set_threads: sets the pool's thread count (None: the library sets threads per session itself).
    probe: the primitive whose ~0.1 ms run prices switching to and from this pool (measure/switching).
    warm_up: pays the pool's one-off, per-process start-up (buffers, JIT, environment) at `threads`, so
    that it is not charged to whichever kernel happens to run first."""

    name: str
    set_threads: Callable[[int], None] | None = None
    probe: str | None = None
    warm_up: Callable[[int], None] | None = None


@dataclass(frozen=True)
class SegmentVariant:
    """How a segment computes beyond fp32: `rewrite` turns the segment's exported ONNX model into the one
    to compile (the quantiser's QDQ model: its int8 nodes), `precision` is the floating-point precision the
    backend may run the rest in ("fp32", "bf16", "f16": OpenVINO's inference precision hint). The default
    is plain fp32, as every backend compiles it."""

    rewrite: Callable[[Any], Any] | None = None
    precision: str = "fp32"

    @property
    def plain(self) -> bool:
        return self.rewrite is None and self.precision == "fp32"


FP32_SEGMENT = SegmentVariant()


@dataclass(frozen=True)
class Library:
    """One library: its primitives' modules and how it behaves at run time.

    name: `Primitive.library` of its primitives ("numpy", "torch-int8", "onnxruntime", ...).
    modules: modules of the package that define `PRIMITIVES` and/or `CONVERTERS` lists.
    requires: third-party packages it needs; one missing makes the library unavailable, with the reason.
    pool: the thread pool its kernels run on; libraries sharing one switch without waking another.
    segment: compiles a run of consecutive nodes whose chosen primitives have `fuses` set into one
    kernel (`segment(graph, nodes, threads, spin, variant) -> (kernel, inputs, outputs)`; a library that
    cannot compile a `SegmentVariant` raises ValueError), None when the library runs one node per kernel.
    fusable: the primitive of this library that can join a segment for a node (None when none can).
    rank: where its primitives come in listings and in each node's options (lowest first); fixed so
    that option indices, and so a seeded search's result, do not depend on package discovery order.
    probe_first: a segment backend rarely best on parts of a graph (torch): the profiler measures its whole
    graph (or its maximal runs) first and its blocks only where that whole graph came close to the fastest
    other backend's (measure/segment_candidates.py), so that it costs a tune little where it cannot win.
    """

    name: str
    modules: tuple[str, ...]
    pool: ThreadPool
    requires: tuple[str, ...] = ()
    segment: Callable[[Graph, list[Node], int, str, SegmentVariant], Segment] | None = None
    fusable: Callable[[Node], str | None] | None = None
    rank: int = 100
    probe_first: bool = False

    def describe(self) -> dict[str, Any]:
        """The facts `edgetune primitives` and the docs show."""
        return {"library": self.name, "pool": self.pool.name, "requires": list(self.requires),
                "segments": self.segment is not None}
