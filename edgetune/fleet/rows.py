"""What travels between the head and a board: one node's work with the rows the head already holds for
it, the rows a board measured, a task's outcome, and the in-memory stand-in for the ProfileDB that the
board's profiler reads and writes.

Why a stand-in rather than a DB on the board: the head keeps the only ProfileDB. A board runs the very
same per-node logic as a local profile (`Profiler.profile_node`: cached verifications skipped, pruning,
the hopeless-kernel probe), against the head's rows for that node; every write it makes is recorded as
the `ProfileDB` call it stands for, and the head replays those calls on its DB. So the rows, their keys
and their validation are exactly a local run's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any

from edgetune.measure.db import NodeRecord, ProfileDB, VerifyRecord
from edgetune.measure.profiler import ProfileSummary
from edgetune.measure.timing import Timing


@dataclass(frozen=True)
class NodeWork:
    """One distinct node to verify and time on a board, with what the head's DB already has for it."""

    node: str
    description: str
    verifications: tuple[VerifyRecord, ...] = ()
    timings: tuple[NodeRecord, ...] = ()


@dataclass
class NodeResult:
    """A board's answer to `NodeWork`: the DB calls to replay (("put_verification"|"put_node", args)) in the
    order the board made them, its counts, and who measured (kind = fingerprint id, versions id)."""

    calls: list[tuple[str, tuple[Any, ...]]]
    summary: ProfileSummary
    kind: str
    versions_id: str


@dataclass
class TaskResult:
    """A board's answer to a `MeasurementTask`: its timing, or why the segment was rejected."""

    timing: Timing | None
    rejected: str | None
    kind: str
    versions_id: str


class BoardRows:
    """The four ProfileDB methods the node phase uses, in memory, seeded per node by the head, recording
    every write as the call to replay on the head's DB."""

    def __init__(self) -> None:
        self._verifications: dict[tuple[str, str], VerifyRecord] = {}
        self._timings: dict[tuple[str, str, int], NodeRecord] = {}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def load(self, work: NodeWork) -> None:
        """Forget the previous node; hold the head's rows for this one."""
        self._verifications = {(v.sig, v.primitive): v for v in work.verifications}
        self._timings = {(r.sig, r.primitive, int(r.threads)): r for r in work.timings}
        self.calls = []

    def get_verification(self, sig: str, primitive: str) -> VerifyRecord | None:
        return self._verifications.get((sig, primitive))

    def get_node(self, sig: str, primitive: str, threads: int) -> NodeRecord | None:
        return self._timings.get((sig, primitive, int(threads)))

    def put_verification(self, sig: str, primitive: str, ok: bool, rel_error: float | None, reason: str = "") -> None:
        self._verifications[(sig, primitive)] = VerifyRecord(sig, primitive, bool(ok), rel_error, reason, time.time())
        self.calls.append(("put_verification", (sig, primitive, ok, rel_error, reason)))

    def put_node(self, sig: str, primitive: str, threads: int, timing: Timing, weight_bytes: int = 0,
                 workspace_bytes: int = 0, resident_bytes: int | None = None,
                 transient_bytes: int | None = None) -> None:
        shared = {f.name: getattr(timing, f.name) for f in fields(NodeRecord) if hasattr(timing, f.name)}
        self._timings[(sig, primitive, int(threads))] = NodeRecord(
            **{**shared, "measured_at": time.time()}, sig=sig, primitive=primitive, threads=int(threads),
            weight_bytes=int(weight_bytes), workspace_bytes=int(workspace_bytes), resident_bytes=resident_bytes,
            transient_bytes=transient_bytes)
        self.calls.append(("put_node", (sig, primitive, threads, timing, weight_bytes, workspace_bytes,
                                        resident_bytes, transient_bytes)))


REPLAYABLE = ("put_verification", "put_node")


def replay(calls: list[tuple[str, tuple[Any, ...]]], db: ProfileDB) -> None:
    """A board's writes, made on the head's DB in the board's order (each its own transaction)."""
    for name, args in calls:
        if name not in REPLAYABLE:
            raise ValueError(f"a board asked for {name!r}, which is not a ProfileDB write")
        getattr(db, name)(*args)


def add_summary(total: ProfileSummary, part: ProfileSummary) -> None:
    """Add one node's counts to the profile's (seconds are the head's wall clock, not summed)."""
    total.new_measurements += part.new_measurements
    total.cached += part.cached
    total.verified += part.verified
    total.excluded.update(part.excluded)
    total.disturbed += part.disturbed
    total.pruned += part.pruned


@dataclass
class BoardSettings:
    """How the head's profiler measures, so a board measures the same way."""

    threads: list[int]
    time_cap_s: float
    kernel_timeout_s: float
    isolate: bool
    plugins: list[Any] = field(default_factory=list)  # primitives registered from outside edgetune
    performer: Any = None  # (task, ctx) -> Timing instead of measure.tasks.perform (bench: a calibrated sleep)
