"""The profiler's task runner for a Ray cluster: one actor per board of the chosen kind, a queue the head
feeds them from, and the results written to the head's ProfileDB as they arrive.

Why a queue of our own rather than Ray retries: the head must know what each board measures (for `fleet
status`), must replay each result into the one DB as it comes, and must put a dead board's work back for
another board of the same kind; an explicit queue does all three, and Ray gives the rest: scheduling by
custom resource (the board's one measurement slot), the object store (the model travels once per board)
and failure detection (a dead board's call raises `RayActorError`).

Two kinds of work, both keyed exactly as a local profile keys them: per distinct node, the node phase
(`NodeWork`: the board runs `Profiler.profile_node` against the head's rows for that node), then the
`MeasurementTask`s. The node phase adapts to its own results within a node only, so nodes are independent.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgetune.device.cpu import fingerprint_id, library_versions
from edgetune.errors import EdgetuneError
from edgetune.fleet.board import Board
from edgetune.fleet.cluster import Fleet, NodeInfo
from edgetune.fleet.identity import BoardIdentity, kind_resource, refusal, versions_id
from edgetune.fleet.rows import BoardSettings, NodeResult, NodeWork, TaskResult, add_summary, replay
from edgetune.graph.ir import Graph, Node
from edgetune.kernels import registry
from edgetune.measure.db import ProfileDB
from edgetune.measure.profiler import (
    DEFAULT_KERNEL_TIMEOUT_S,
    Profiler,
    ProfileSummary,
    candidate_primitives,
    record_task,
)
from edgetune.measure.tasks import MeasurementTask, SegmentRejected, TaskContext

# A board's actor imports numpy, torch, ONNX Runtime and OpenVINO before it can describe itself: tens of
# seconds on a Raspberry Pi. A board that has not answered by then (its slot held by another profile, say)
# is left out.
BOARD_START_TIMEOUT_S = 300.0
POLL_S = 0.5  # how often the head looks up from waiting (for new boards, start time-outs)
RESCAN_S = 5.0  # how often it looks for boards that joined during the profile

Advance = Callable[[str], Any] | None


@dataclass
class _Board:
    """The head's view of one board in this profile."""

    node: NodeInfo
    actor: Any
    state: str = "starting"  # starting -> (refused | loading -> idle <-> busy) ; lost at any point
    since: float = field(default_factory=time.monotonic)
    identity: BoardIdentity | None = None
    token: str = ""
    pid: int = 0

    @property
    def where(self) -> str:
        host = f"{self.identity.host} " if self.identity else ""
        return f"{host}(node {self.node.node[:8]}, {self.node.address})"


@dataclass
class _Work:
    """One queue item: a node's candidate work or a measurement task, and how to store its result."""

    item: NodeWork | MeasurementTask
    steps: int  # progress-bar steps it stands for

    @property
    def description(self) -> str:
        return self.item.description


class FleetRunner:
    """`TaskRunner` over the boards of one kind (`kind`: an id or unique prefix; default: this machine's
    kind when the cluster has boards of it, else the cluster's only kind). Call `start()` before opening the
    DB with `device_id`/`versions_id`, and `close()` after the profile."""

    def __init__(self, fleet: Fleet, kind: str | None = None, *, warn: Callable[[str], Any] = print,
                 on_result: Callable[[str, str], Any] | None = None, performer: Any = None) -> None:
        self.fleet, self.ray = fleet, fleet.ray
        self.kind = fleet.choose_kind(kind, fingerprint_id())
        self.warn, self.on_result, self.performer = warn, on_result, performer
        self.head_versions = library_versions()
        self.kind_versions: dict[str, str] | None = None
        self.boards: dict[str, _Board] = {}
        self.log: list[tuple[str, str]] = []  # (board node id, description) of every merged result
        self._pending: dict[Any, tuple[_Board, str, _Work | None]] = {}
        self._model: tuple[str, Any] | None = None  # (token, object ref of (graph, samples))
        self._settings: BoardSettings | None = None
        self._rescanned = 0.0
        self._error: BaseException | None = None
        self.refusals: list[str] = []  # one line per board left out (kind, versions, death, no start)

    # ---- what the head's DB is keyed by
    @property
    def device_id(self) -> str:
        return self.kind

    @property
    def versions_id(self) -> str:
        if self.kind_versions is None:
            raise EdgetuneError(f"fleet: no board of kind {self.kind} has been accepted yet (call start())")
        return versions_id(self.kind_versions)

    def thread_counts(self) -> list[int]:
        """The default thread counts on this kind's boards: 1 and all of a board's usable cores."""
        first = next((b.identity for b in self.boards.values() if b.identity and b.identity.kind == self.kind), None)
        return sorted({1, int(first.fingerprint.get("cores", 1)) if first else 1})

    def device(self) -> dict[str, Any]:
        """The kind's CPU as `device.cpu.describe()` has it (from the first accepted board): what was measured on."""
        first = next((b.identity for b in self.boards.values() if b.identity and b.identity.kind == self.kind), None)
        return first.describe() if first else {"cpu": "unknown board", "id": self.kind}

    def summary(self) -> dict[str, Any]:
        """Who measured what: results per board, the boards left out and why."""
        counts: dict[str, int] = {}
        for node, _ in self.log:
            b = self.boards[node]
            name = f"{b.identity.host if b.identity else '?'} {node[:8]}"
            counts[name] = counts.get(name, 0) + 1
        return {"address": self.fleet.address, "kind": self.kind, "versions_id": self.versions_id,
                "results_by_board": counts, "left_out": list(self.refusals)}

    # ---- boards
    def start(self, timeout_s: float = BOARD_START_TIMEOUT_S) -> FleetRunner:
        """Start an actor on every board of the kind and wait for the first accepted one (whose library
        versions key the DB); the others join as they come up."""
        self._rescan(force=True)
        deadline = time.monotonic() + timeout_s
        while self.kind_versions is None:
            if not any(w == "describe" for _, w, _ in self._pending.values()):
                why = self.refusals[0] if self.refusals else "none is alive"
                raise EdgetuneError(f"fleet: no usable board of kind {self.kind}: {why}")
            if time.monotonic() > deadline:
                raise EdgetuneError(f"fleet: no board of kind {self.kind} answered within {timeout_s:.0f} s")
            self._wait_once(deque())
        return self

    def ready(self, count: int, timeout_s: float = BOARD_START_TIMEOUT_S) -> int:
        """Wait until `count` boards hold the current model and are idle (or `timeout_s`); how many are."""
        deadline = time.monotonic() + timeout_s

        def loaded() -> int:
            token = self._model[0] if self._model else None
            return sum(b.state == "idle" and b.token == token for b in self.boards.values())

        while loaded() < count and self._pending and time.monotonic() < deadline:
            self._wait_once(deque())
        return loaded()

    def _rescan(self, force: bool = False) -> None:
        """Start an actor on each board of the kind this profile does not know yet."""
        if not force and time.monotonic() - self._rescanned < RESCAN_S:
            return
        self._rescanned = time.monotonic()
        for node in self.fleet.boards_of(self.kind):
            if node.node not in self.boards:
                board = _Board(node=node, actor=self._actor(node))
                self.boards[node.node] = board
                self._pending[board.actor.describe.remote()] = (board, "describe", None)

    def _actor(self, node: NodeInfo) -> Any:
        """This driver's actor on `node` (one per board: it takes the board's measurement slot)."""
        if node.node not in self.fleet.boards:
            strategy = self.ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(node.node, soft=False)
            self.fleet.boards[node.node] = _board_class(self.ray).options(
                num_cpus=0, resources={kind_resource(self.kind): 1}, scheduling_strategy=strategy, max_restarts=0,
                max_task_retries=0).remote()
        return self.fleet.boards[node.node]

    def _described(self, board: _Board, desc: dict[str, Any]) -> None:
        """Accept the board (its first result fixes the kind's versions) or refuse it in one line."""
        board.identity = BoardIdentity(host=desc["host"], fingerprint=desc["fingerprint"], versions=desc["versions"],
                                       simulated=bool(desc.get("simulated")))
        board.pid = int(desc.get("pid", 0))
        self.fleet.tell("register", board.node.node, board.identity.to_dict())
        why = refusal(board.identity, self.kind, self.head_versions, self.kind_versions, board.where)
        if why is not None:
            self._drop(board, "refused", why)
            return
        self.kind_versions = self.kind_versions or board.identity.versions
        board.state = "idle"
        board.token = desc.get("token", "")
        self._load(board)

    def _load(self, board: _Board) -> None:
        if self._model is not None and board.state == "idle" and board.token != self._model[0]:
            token, ref = self._model
            board.state = "loading"
            self.fleet.tell("mark", board.node.node, "loading")
            self._pending[board.actor.load.remote(token, ref, self._settings)] = (board, "load", None)

    def _drop(self, board: _Board, state: str, why: str) -> None:
        """A board out of this profile: refused (kind, versions) or lost (died, did not start)."""
        board.state = state
        self.refusals.append(why)
        self.warn(why)
        self.fleet.tell("mark", board.node.node, state, why)
        for ref in [r for r, (b, _, _) in self._pending.items() if b is board]:
            del self._pending[ref]
        actor = self.fleet.boards.pop(board.node.node, None)
        if actor is not None:
            try:
                self.ray.kill(actor)
            except Exception:  # noqa: BLE001 - the actor of a dead board is already gone
                pass

    # ---- the model every board holds
    def _set_model(self, graph: Graph, samples: dict[str, Any], settings: BoardSettings) -> None:
        """Put (graph, samples) in the object store once; each board fetches it once when it loads."""
        if self._model is None:
            self._model = (uuid.uuid4().hex, self.ray.put((graph, samples)))
            self._settings = settings
        for board in self.boards.values():
            self._load(board)

    def _settings_of(self, profiler: Profiler) -> BoardSettings:
        plugins = [p for p in registry.primitives() if not type(p).__module__.startswith("edgetune.")]
        return BoardSettings(threads=list(profiler.threads), time_cap_s=profiler.time_cap_s,
                             kernel_timeout_s=profiler.kernel_timeout_s, isolate=profiler.isolate, plugins=plugins,
                             performer=self.performer)

    # ---- TaskRunner
    def profile_nodes(self, profiler: Profiler, nodes: Sequence[Node], s: ProfileSummary, advance: Advance) -> None:
        """Each distinct node's candidates verified and timed on some board, its rows replayed here."""
        db = profiler.db
        self._check_db(db)
        self.fleet.tell("begin", profiler.graph.name, self.kind, str(getattr(db, "path", "")))
        self._set_model(profiler.graph, profiler.samples, self._settings_of(profiler))
        steps = len(profiler.threads)
        work = [_Work(self._node_work(profiler, n), len(candidate_primitives(n, profiler.graph)) * steps)
                for n in nodes]
        self._drain("verifying and timing primitives", work, db, s, advance, failed="failed")

    def run_tasks(self, tasks: Sequence[MeasurementTask], ctx: TaskContext, db: ProfileDB, s: ProfileSummary,
                  advance: Advance) -> None:
        """Every task performed on some board, each outcome stored here as it arrives."""
        self._check_db(db)
        if tasks:
            settings = self._settings or BoardSettings(threads=sorted({t.threads for t in tasks if t.threads} or {1}),
                                                       time_cap_s=ctx.time_cap_s,
                                                       kernel_timeout_s=DEFAULT_KERNEL_TIMEOUT_S, isolate=True,
                                                       performer=self.performer)
            self._set_model(ctx.graph, ctx.samples, settings)
        self._drain("measuring converters, fusion and segments", [_Work(t, 1) for t in tasks], db, s, advance,
                    failed="failed")
        self.fleet.tell("end", "done")

    def _check_db(self, db: ProfileDB) -> None:
        if (db.device_id, db.versions_id) != (self.device_id, self.versions_id):
            raise EdgetuneError(f"fleet: the profile DB is keyed {db.device_id}/{db.versions_id}, but the boards "
                                f"measure kind {self.device_id} with versions {self.versions_id}")

    @staticmethod
    def _node_work(profiler: Profiler, node: Node) -> NodeWork:
        """The node with every row the head already holds for its candidates."""
        db, sig = profiler.db, profiler.sigs[node.name]
        prims = candidate_primitives(node, profiler.graph)
        ver = tuple(r for p in prims if (r := db.get_verification(sig, p.name)) is not None)
        tim = tuple(r for p in prims for t in profiler.threads if (r := db.get_node(sig, p.name, t)) is not None)
        return NodeWork(node=node.name, description=f"{node.name} ({node.op}): {len(prims)} candidates",
                        verifications=ver, timings=tim)

    # ---- the queue
    def _drain(self, phase: str, work: list[_Work], db: ProfileDB, s: ProfileSummary, advance: Advance,
               failed: str) -> None:
        """Feed idle boards from the queue until every item is stored; a dead board's item goes back to the
        front. A board's error (not its death) stops the feeding; what is in flight is still stored."""
        queue = deque(work)
        self.fleet.tell("phase", phase, len(queue), [w.description for w in list(queue)[:8]])
        self._error = None
        try:
            while (queue and self._error is None) or self._busy():
                self._rescan()
                if self._error is None:
                    self._feed(queue)
                if not self._pending:
                    raise EdgetuneError(f"fleet: no board of kind {self.kind} is left ({len(queue)} item(s) not "
                                        "measured; everything measured so far is in the DB: rerun to resume)")
                self._wait_once(queue, db, s, advance)
        except BaseException:
            self.fleet.tell("end", failed)
            raise
        if self._error is not None:
            self.fleet.tell("end", failed)
            raise self._error

    def _busy(self) -> bool:
        return any(w == "work" for _, w, _ in self._pending.values())

    def _feed(self, queue: deque[_Work]) -> None:
        for board in self.boards.values():
            if not queue:
                return
            if board.state == "idle" and self._model is not None and board.token == self._model[0]:
                w = queue.popleft()
                call = board.actor.profile_node if isinstance(w.item, NodeWork) else board.actor.perform
                self._pending[call.remote(w.item)] = (board, "work", w)
                board.state = "busy"
                self.fleet.tell("dispatch", board.node.node, w.description, len(queue),
                                [x.description for x in list(queue)[:8]])

    def _wait_once(self, queue: deque[_Work], db: ProfileDB | None = None, s: ProfileSummary | None = None,
                   advance: Advance = None) -> None:
        """Settle whatever finishes within POLL_S; give up on boards that never started."""
        ready, _ = self.ray.wait(list(self._pending), num_returns=1, timeout=POLL_S)
        for ref in ready:
            board, what, w = self._pending.pop(ref)
            self._settle(ref, board, what, w, queue, db, s, advance)
        for board in list(self.boards.values()):
            if board.state == "starting" and time.monotonic() - board.since > BOARD_START_TIMEOUT_S:
                self._drop(board, "lost", f"board {board.where} left out: it did not start within "
                                          f"{BOARD_START_TIMEOUT_S:.0f} s (slot taken by another profile?)")

    def _settle(self, ref: Any, board: _Board, what: str, w: _Work | None, queue: deque[_Work],
                db: ProfileDB | None, s: ProfileSummary | None, advance: Advance) -> None:
        try:
            value = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as e:
            if w is not None:
                queue.appendleft(w)
            first = (str(e).splitlines() or [""])[0][:160]
            again = f"; {w.description} goes back to the queue" if w is not None else ""
            self._drop(board, "lost", f"board {board.where} lost ({type(e).__name__}: {first}){again}")
            return
        except Exception as e:  # noqa: BLE001 - a board's error: stop feeding, report the cause after the drain
            cause = getattr(e, "cause", None) or e
            if what == "work":
                board.state = "idle"
                self._error = self._error or cause
            else:
                self._drop(board, "refused", f"board {board.where} refused: it failed to {what}: "
                                             f"{type(cause).__name__}: {' '.join(str(cause).split())[:200]}")
            return
        if what == "describe":
            self._described(board, value)
        elif what == "load":
            board.token, board.state = value, "idle"
            self.fleet.tell("mark", board.node.node, "idle")
        else:
            assert w is not None and db is not None and s is not None
            board.state = "idle"
            before = (s.new_measurements, s.disturbed)
            self._store(w, value, db, s)
            if advance:
                for _ in range(w.steps):
                    advance(w.description)
            self.log.append((board.node.node, w.description))
            self.fleet.tell("result", board.node.node, s.new_measurements - before[0], s.disturbed - before[1])
            if self.on_result is not None:
                self.on_result(board.node.node, w.description)

    def _store(self, w: _Work, value: NodeResult | TaskResult, db: ProfileDB, s: ProfileSummary) -> None:
        """The board's result into the head's DB, refused if it was measured as another kind or versions."""
        if (value.kind, value.versions_id) != (db.device_id, db.versions_id):
            raise EdgetuneError(f"fleet: a result for {w.description} was measured as {value.kind}/"
                                f"{value.versions_id}, not as the DB's {db.device_id}/{db.versions_id}")
        if isinstance(value, NodeResult):
            replay(value.calls, db)
            add_summary(s, value.summary)
        else:
            assert isinstance(w.item, MeasurementTask)
            outcome = SegmentRejected(value.rejected) if value.rejected is not None else value.timing
            assert outcome is not None
            record_task(w.item, outcome, db, s)

    def close(self) -> None:
        """Stop the boards' measurement workers; the actors stay with the `Fleet` until it closes."""
        for board in self.boards.values():
            if board.state in ("idle", "busy", "loading"):
                try:
                    board.actor.close.remote()
                except Exception:  # noqa: BLE001 - a board that is gone has nothing to close
                    pass


_BOARD_CLASS: Any = None


def _board_class(ray: Any) -> Any:
    """`Board` as a Ray actor class (made once per process)."""
    global _BOARD_CLASS
    if _BOARD_CLASS is None:
        _BOARD_CLASS = ray.remote(Board)
    return _BOARD_CLASS
