"""Where a plan's threads run on a CPU with core clusters (big.LITTLE: a Raspberry Pi 5's sibling RK3588 has
4x Cortex-A76 + 4x Cortex-A55): the placements worth measuring, and pinning a thread to one.

Why: on such a CPU a layer on the two or four big cores can beat one spread over all eight (the little cores
finish their share last and the big ones wait), or lose to it; only a measurement says which, per model. On
a CPU with one kind of core there is nothing to choose and no placement is offered.

Pinning is per thread (`os.sched_setaffinity(0, ...)` on Linux acts on the calling thread): the thread that
compiles a plan passes its mask on to the worker threads libraries create then (ONNX Runtime's per-session
pools, OpenVINO's streams), and the thread that runs an inference is pinned for that inference only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from edgetune.device import arm


@dataclass(frozen=True)
class Placement:
    """A set of cpus a plan may run on, named for the report ("4x Cortex-A76", "all 8 cores")."""

    label: str
    cpus: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "cpus": list(self.cpus)}


def usable_cpus() -> set[int]:
    """The cpus this process may run on (its affinity mask; all of them where the OS does not say)."""
    found = arm.usable_cpus()
    return found if found is not None else set(range(os.cpu_count() or 1))


def placements(clusters: Sequence[dict[str, Any]], usable: set[int] | None = None) -> list[Placement]:
    """All usable cores, then each cluster on its own (fastest last), for a CPU with two clusters or more
    (`clusters` as the fingerprint holds them: [{"core", "cpus", "capacity"}], slowest first); [] otherwise."""
    usable = usable_cpus() if usable is None else usable
    own = [(c["core"], tuple(sorted(set(c["cpus"]) & usable))) for c in clusters]
    own = [(core, cpus) for core, cpus in own if cpus]
    if len(own) < 2:
        return []
    every = tuple(sorted(usable))
    return [Placement(f"all {len(every)} cores", every)] + [Placement(f"{len(cpus)}x {core}", cpus)
                                                           for core, cpus in own]


@contextmanager
def pinned(cpus: Sequence[int] | None) -> Iterator[None]:
    """Run the block on `cpus` (this thread only), then restore the thread's mask; None: no change."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
