"""Crash and hang isolation: candidates are prepared, verified and timed in a persistent worker process.

Why: a tuner runs third-party kernels for minutes on shapes they were never tested on; one segfault in
a library or one endless loop would otherwise kill `edgetune profile` / `tune` and lose the run. The
worker is started once (a fresh `python -c` process: no thread pool or lock of this process is inherited
half-held, and unlike multiprocessing's spawn it never re-runs the caller's main script), serves every
candidate of the profile, and is restarted only after it crashed or was killed for running over its
time limit. The parent keeps the only connection to the ProfileDB, so whatever the worker
does, the database holds complete rows only.

Protocol (one pipe): the worker sends ("ready",) once, then per candidate request ("stage", name) before
each of prepare / verification / timing and ("done", CandidateOutcome) at the end; per segment task
(`edgetune.measure.tasks`: a backend compiling a run of nodes it has never seen) ("done", Timing or
SegmentRejected), a crash or hang there becoming the segment's exclusion. A request that outlives
`timeout_s` gets the worker SIGKILLed: "timed out after 30 s in timing". A worker that dies gets the
signal named: "segfault in prepare". Primitives registered from outside edgetune (plugins, tests) are
sent to the worker pickled, so they exist there too.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Graph
from edgetune.kernels import registry
from edgetune.measure.candidate import CandidateMeasurer, CandidateOutcome, CandidateRequest
from edgetune.measure.tasks import MeasurementTask, SegmentRejected, TaskContext, perform_here
from edgetune.measure.timing import Timing

# Spawning imports numpy, torch, ONNX Runtime and numba afresh: seconds on a loaded 2-core machine.
STARTUP_TIMEOUT_S = 180.0
# A segment task compiles a whole run (up to the whole graph: OpenVINO takes seconds) before it is timed.
SEGMENT_TIMEOUT_S = 300.0
_SIGNAL_WORDS = {signal.SIGSEGV: "segfault", signal.SIGABRT: "abort (SIGABRT)", signal.SIGBUS: "bus error",
                 signal.SIGILL: "illegal instruction", signal.SIGFPE: "arithmetic fault (SIGFPE)",
                 signal.SIGKILL: "killed (SIGKILL, out of memory?)"}


def crash_words(exitcode: int | None) -> str:
    """A worker's exit status in words: "segfault", "abort (SIGABRT)", "exited with status 3"."""
    if exitcode is None:
        return "died"
    if exitcode < 0:
        try:
            sig = signal.Signals(-exitcode)
        except ValueError:
            return f"killed by signal {-exitcode}"
        return _SIGNAL_WORDS.get(sig, f"killed by {sig.name}")
    return f"exited with status {exitcode}"


def _plugin_primitives() -> list[Any]:
    """Registered primitives not defined by edgetune itself: a spawned worker would not have them."""
    return [p for p in registry.primitives() if not type(p).__module__.startswith("edgetune.")]


def _plugin_libraries() -> list[Any]:
    """Registered libraries not discovered in edgetune's own packages (plugins, tests): the same reason."""
    return [lib for lib in registry.libraries() if not all(m.startswith("edgetune.") for m in lib.modules)]


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the parent dies (a SIGKILLed tuner leaves no orphan burning CPU)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def worker_main(fd: int, parent_pid: int) -> None:
    """The worker process's entry point: serve requests on the connection `fd` until told to stop."""
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        return
    conn = Connection(fd)
    graph, samples, time_cap_s, plugins, plugin_libraries = pickle.loads(conn.recv_bytes())
    known = {p.name for p in registry.primitives()}
    for p in plugins:
        if p.name not in known:
            registry.register(p)
    for lib in plugin_libraries:
        registry.register_library(lib)
    measurer = CandidateMeasurer(graph, samples, time_cap_s)
    tasks = TaskContext(graph, time_cap_s, samples)
    conn.send(("ready",))
    while True:
        try:
            req = conn.recv()
        except (EOFError, OSError):
            return
        if req is None:
            return
        if isinstance(req, MeasurementTask):
            conn.send(("done", perform_here(req, tasks)))
            continue
        outcome = measurer.measure(req, on_stage=lambda s: conn.send(("stage", s)))
        conn.send(("done", outcome))


class IsolatedMeasurer:
    """`CandidateMeasurer.measure` in a persistent worker process, with a time limit per request."""

    def __init__(self, graph: Graph, samples: dict[str, np.ndarray], time_cap_s: float, timeout_s: float) -> None:
        self.graph, self.samples, self.time_cap_s, self.timeout_s = graph, samples, time_cap_s, timeout_s
        self._proc: Any = None
        self._conn: Any = None
        self.restarts = 0

    # ---- the worker's life -----------------------------------------------------------------
    def _start(self) -> None:
        mine, theirs = socket.socketpair()
        code = f"from edgetune.measure.isolation import worker_main; worker_main({theirs.fileno()}, {os.getpid()})"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p or os.getcwd() for p in sys.path))
        self._proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=[theirs.fileno()], env=env,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        theirs.close()
        self._conn = Connection(mine.detach())
        self._conn.send_bytes(pickle.dumps((self.graph, self.samples, self.time_cap_s, _plugin_primitives(),
                                            _plugin_libraries())))
        try:
            msg = self._receive(time.monotonic() + max(STARTUP_TIMEOUT_S, self.timeout_s))
        except (EOFError, OSError):
            msg = ("died", self._exit_words())
        if msg is None or msg[0] != "ready":
            status = "did not start in time" if msg is None else f"failed to start ({msg[-1]})"
            self._kill()
            raise EdgetuneError(f"the measurement worker process {status}; see the messages above")

    def _receive(self, deadline: float) -> Any:
        """The next message, None at the deadline; raises EOFError when the worker died."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if self._conn.poll(min(remaining, 0.5)):
                return self._conn.recv()  # EOFError when the worker is gone
            if self._proc.poll() is not None and not self._conn.poll(0):
                raise EOFError

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def close(self) -> None:
        """Stop the worker (politely, then by force)."""
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._conn.send(None)
                self._proc.wait(5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self._kill()

    # ---- requests --------------------------------------------------------------------------
    def measure(self, req: CandidateRequest) -> CandidateOutcome:
        if self._proc is None:
            self._start()
        self._conn.send(req)
        deadline, stage = time.monotonic() + self.timeout_s, "prepare"
        while True:
            try:
                msg = self._receive(deadline)
            except (EOFError, OSError):
                return self._lost(f"{self._exit_words()} in {stage}", stage)
            if msg is None:
                return self._lost(f"timed out after {self.timeout_s:g} s in {stage}", stage)
            if msg[0] == "stage":
                stage = msg[1]
                continue
            return msg[1]

    def perform_task(self, task: MeasurementTask) -> Timing | SegmentRejected:
        """A segment task performed in the worker: its timing, or its exclusion (the backend's reason, or
        the crash or hang that ended the worker, which restarts on the next request)."""
        if self._proc is None:
            self._start()
        self._conn.send(task)
        limit = max(self.timeout_s, SEGMENT_TIMEOUT_S)
        try:
            msg = self._receive(time.monotonic() + limit)
        except (EOFError, OSError):
            return self._lost_task(task, f"{self._exit_words()} while compiling or running it")
        if msg is None:
            return self._lost_task(task, f"timed out after {limit:g} s compiling or running it")
        return msg[1]

    def _lost_task(self, task: MeasurementTask, reason: str) -> SegmentRejected:
        self._lost(reason, "segment")
        return SegmentRejected(f"{task.library}: {reason}")

    def _exit_words(self) -> str:
        try:
            code = self._proc.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        return crash_words(code)

    def _lost(self, reason: str, stage: str) -> CandidateOutcome:
        """The worker crashed or hung: restart it on the next request, exclude this candidate."""
        self._kill()
        self.restarts += 1
        return CandidateOutcome(failure=reason, stage=stage)

    def __enter__(self) -> IsolatedMeasurer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
