"""What the fleet is doing, kept by one small named actor on the head ("edgetune-fleet-coordinator") so that
`edgetune fleet status`, from any shell, sees the boards, what each is measuring, the queue and the
throughput of the profile in progress (or of the last one).

The state is a plain class (tested without Ray); `cluster.py` runs it as a detached actor. The profiling
driver tells it about every dispatch and result with fire-and-forget calls, so it never slows the profile.
"""

from __future__ import annotations

import time
from typing import Any

COORDINATOR = "edgetune-fleet-coordinator"
NAMESPACE = "edgetune"
QUEUE_SHOWN = 8  # the next items `fleet status` names; the rest is a count


class FleetState:
    """Boards (by Ray node id), the current profile, its queue and its counts."""

    def __init__(self) -> None:
        self.boards: dict[str, dict[str, Any]] = {}
        self.profile: dict[str, Any] = {}
        self.queue: dict[str, Any] = {"waiting": 0, "next": []}
        self.measurements = 0
        self.disturbed = 0

    def _board(self, node: str) -> dict[str, Any]:
        return self.boards.setdefault(node, {"node": node, "host": "", "kind": "", "summary": "", "state": "idle",
                                             "measuring": "", "done": 0, "disturbed": 0, "reason": "",
                                             "simulated": False})

    def register(self, node: str, identity: dict[str, Any]) -> None:
        """A board's self-description (from `fleet join` or a profile's board actor)."""
        b = self._board(node)
        b.update(host=identity.get("host", ""), kind=identity.get("kind", ""), summary=identity.get("summary", ""),
                 simulated=bool(identity.get("simulated")))

    def begin(self, model: str, kind: str, db: str) -> None:
        """A new profile: counts restart, boards keep their identity and lifetime totals."""
        self.profile = {"model": model, "kind": kind, "db": db, "phase": "starting", "started_at": time.time(),
                        "finished_at": None}
        self.queue = {"waiting": 0, "next": []}
        self.measurements = self.disturbed = 0

    def phase(self, name: str, waiting: int, next_items: list[str]) -> None:
        self.profile["phase"] = name
        self.set_queue(waiting, next_items)

    def set_queue(self, waiting: int, next_items: list[str]) -> None:
        """`waiting` items not yet sent to a board; `next_items` the descriptions of the first few."""
        self.queue = {"waiting": int(waiting), "next": list(next_items[:QUEUE_SHOWN])}

    def dispatch(self, node: str, description: str, waiting: int, next_items: list[str]) -> None:
        """`node` started measuring `description`; the queue is left with `waiting` items."""
        b = self._board(node)
        b.update(state="measuring", measuring=description)
        self.set_queue(waiting, next_items)

    def result(self, node: str, measurements: int, disturbed: int) -> None:
        b = self._board(node)
        b.update(state="idle", measuring="")
        b["done"] += measurements
        b["disturbed"] += disturbed
        self.measurements += measurements
        self.disturbed += disturbed

    def mark(self, node: str, state: str, reason: str = "") -> None:
        """A board `refused` (kind or versions), `lost` (died mid-measurement), `loading` or `idle`."""
        b = self._board(node)
        b.update(state=state, measuring="" if state != "measuring" else b["measuring"], reason=reason)

    def end(self, phase: str = "done") -> None:
        self.profile["phase"] = phase
        self.profile["finished_at"] = time.time()
        self.queue = {"waiting": 0, "next": []}
        for b in self.boards.values():
            if b["state"] in ("measuring", "loading"):
                b.update(state="idle", measuring="")

    def snapshot(self) -> dict[str, Any]:
        """Everything `fleet status` prints, as plain data."""
        p = self.profile
        elapsed = ((p.get("finished_at") or time.time()) - p["started_at"]) if p else 0.0
        return {"boards": [dict(b) for b in self.boards.values()], "profile": dict(p), "queue": dict(self.queue),
                "running": sum(b["state"] == "measuring" for b in self.boards.values()),
                "throughput": {"measurements": self.measurements, "disturbed": self.disturbed,
                               "seconds": elapsed, "per_second": self.measurements / elapsed if elapsed > 0 else 0.0}}
