"""The actor that is one board's measurement slot: it holds the model (graph and reference samples, fetched
from Ray's object store once per board), a profiler over `BoardRows`, and performs one node's candidate work
or one measurement task at a time. It runs on the board; it never touches the ProfileDB.

No Ray import here: `cluster.py` wraps the class with `ray.remote` and pins one instance to each board.
"""

from __future__ import annotations

import os
from typing import Any

from edgetune.errors import EdgetuneError
from edgetune.fleet.identity import local_identity
from edgetune.fleet.rows import BoardRows, BoardSettings, NodeResult, NodeWork, TaskResult
from edgetune.graph.ir import Graph
from edgetune.kernels import registry
from edgetune.measure.profiler import Profiler, ProfileSummary
from edgetune.measure.tasks import MeasurementTask, SegmentRejected, TaskContext, perform


class Board:
    """One board: `describe()` who it is, `load()` a model, then `profile_node()` / `perform()`."""

    def __init__(self) -> None:
        self.identity = local_identity()
        self._rows = BoardRows()
        self._profiler: Profiler | None = None
        self._ctx: TaskContext | None = None
        self._performer: Any = perform
        self.token = ""

    def describe(self) -> dict[str, Any]:
        """The board's identity (measured here), its process id and the model it holds."""
        return {**self.identity.to_dict(), "pid": os.getpid(), "token": self.token}

    def load(self, token: str, model: tuple[Graph, dict[str, Any]], settings: BoardSettings) -> str:
        """Hold `model` (graph, samples) and measure as `settings` say, until the next load."""
        graph, samples = model
        known = {p.name for p in registry.primitives()}
        for p in settings.plugins:
            if p.name not in known:
                registry.register(p)
        self.close()
        self._profiler = Profiler(graph, self._rows, settings.threads, samples=samples,  # type: ignore[arg-type]
                                  time_cap_s=settings.time_cap_s, kernel_timeout_s=settings.kernel_timeout_s,
                                  isolate=settings.isolate)
        self._ctx = self._profiler.ctx
        self._performer = settings.performer or perform
        self.token = token
        return token

    def _loaded(self) -> Profiler:
        if self._profiler is None:
            raise EdgetuneError(f"board {self.identity.host}: asked to measure before a model was loaded")
        return self._profiler

    def profile_node(self, work: NodeWork) -> NodeResult:
        """Verify and time one node's candidates exactly as a local profile does, against the head's rows."""
        prof = self._loaded()
        self._rows.load(work)
        s = ProfileSummary()
        prof.profile_node(prof.graph.node(work.node), s)
        return NodeResult(calls=list(self._rows.calls), summary=s, kind=self.identity.kind,
                          versions_id=self.identity.versions_id)

    def perform(self, task: MeasurementTask) -> TaskResult:
        """One measurement task, its outcome returned (the head stores it)."""
        self._loaded()
        try:
            timing, rejected = self._performer(task, self._ctx), None
        except SegmentRejected as e:
            timing, rejected = None, str(e)
        return TaskResult(timing=timing, rejected=rejected, kind=self.identity.kind,
                          versions_id=self.identity.versions_id)

    def close(self) -> None:
        """Stop the profiler's measurement worker, if it started one."""
        if self._profiler is not None:
            self._profiler.close()
