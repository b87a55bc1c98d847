"""Foreign CPU load: how much of the machine other processes used while we were timing something.

Why: on a shared 2-core VM a neighbour's busy process turned a 1.7 ms convolution into 16 ms (probe
2026-11, sections 0 and 4.4) without any visible error. Every timing window is therefore bracketed by
two cheap snapshots; the machine's busy time (/proc/stat, including steal time a hypervisor gave to
other VMs) minus this process's own CPU time (all its threads) is the foreign load, in cores.

/proc/stat counts in clock ticks (1/100 s) sampled by the kernel, so windows much shorter than ~0.1 s
give coarse numbers; `LoadReport.resolution_cores` says how coarse. Off Linux every reading is None.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

_PROC_STAT = "/proc/stat"
_PSI_CPU = "/proc/pressure/cpu"
try:
    _HZ = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):  # non-POSIX
    _HZ = 100


@dataclass(frozen=True)
class LoadSnapshot:
    """Cumulative counters at one instant; only differences between two snapshots mean anything."""

    wall_ns: int
    busy_ticks: int | None  # all CPUs: user+nice+system+irq+softirq+steal
    steal_ticks: int | None
    own_cpu_ns: int  # this process, all threads, not its children
    nivcsw: int  # this process's involuntary context switches
    psi_some_us: int | None  # time some runnable task waited for a CPU (Linux PSI), microseconds


@dataclass(frozen=True)
class LoadReport:
    """What happened on the machine between two snapshots."""

    window_s: float
    foreign_cores: float | None  # other processes' (and other VMs') CPU use, averaged over the window
    steal_cores: float | None  # the part of foreign_cores the hypervisor gave to other VMs
    own_cores: float  # this process's CPU use over the window
    involuntary_switches: int  # times the scheduler took a CPU away from this process
    cpu_wait_s: float | None  # PSI "some" CPU stall time in the window (any task, ours included)
    resolution_cores: float | None  # one clock tick spread over the window: the reading's granularity


def _read_proc_stat() -> tuple[int, int] | None:
    """(busy ticks, steal ticks) summed over all CPUs, or None where /proc/stat is missing."""
    try:
        with open(_PROC_STAT, "rb") as f:
            line = f.readline().split()
    except OSError:
        return None
    if not line or line[0] != b"cpu":
        return None
    vals = [int(v) for v in line[1:]] + [0] * 10
    user, nice, system, _idle, _iowait, irq, softirq, steal = vals[:8]
    # guest time is already included in user/nice, so it is not added again
    return user + nice + system + irq + softirq + steal, steal


def _read_psi_some_us() -> int | None:
    try:
        with open(_PSI_CPU, "rb") as f:
            first = f.readline().split()
    except OSError:
        return None
    for field in first:
        if field.startswith(b"total="):
            return int(field[6:])
    return None


def snapshot() -> LoadSnapshot:
    """Read the counters now (a few microseconds: two small /proc reads and one getrusage)."""
    stat = _read_proc_stat()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return LoadSnapshot(
        wall_ns=time.perf_counter_ns(),
        busy_ticks=stat[0] if stat else None,
        steal_ticks=stat[1] if stat else None,
        own_cpu_ns=time.process_time_ns(),
        nivcsw=ru.ru_nivcsw,
        psi_some_us=_read_psi_some_us(),
    )


def between(a: LoadSnapshot, b: LoadSnapshot) -> LoadReport:
    """The load between snapshot `a` and the later snapshot `b`."""
    window = max((b.wall_ns - a.wall_ns) / 1e9, 1e-9)
    own_s = (b.own_cpu_ns - a.own_cpu_ns) / 1e9
    foreign = steal = resolution = None
    if a.busy_ticks is not None and b.busy_ticks is not None:
        busy_s = (b.busy_ticks - a.busy_ticks) / _HZ
        foreign = max(0.0, busy_s - own_s) / window
        steal = max(0, (b.steal_ticks or 0) - (a.steal_ticks or 0)) / _HZ / window
        resolution = 1.0 / _HZ / window
    wait = None
    if a.psi_some_us is not None and b.psi_some_us is not None:
        wait = (b.psi_some_us - a.psi_some_us) / 1e6
    return LoadReport(
        window_s=window,
        foreign_cores=foreign,
        steal_cores=steal,
        own_cores=own_s / window,
        involuntary_switches=b.nivcsw - a.nivcsw,
        cpu_wait_s=wait,
        resolution_cores=resolution,
    )


class LoadMonitor:
    """Brackets a window: `start()`, do the work, `stop()` -> LoadReport. Also a context manager
    (the report is then in `.report`)."""

    def __init__(self) -> None:
        self._start: LoadSnapshot | None = None
        self.report: LoadReport | None = None

    def start(self) -> LoadMonitor:
        self._start = snapshot()
        self.report = None
        return self

    def elapsed_s(self) -> float:
        """Seconds since `start()` (0 when not started)."""
        if self._start is None:
            return 0.0
        return (time.perf_counter_ns() - self._start.wall_ns) / 1e9

    def stop(self) -> LoadReport:
        if self._start is None:
            raise RuntimeError("LoadMonitor.stop() before start()")
        self.report = between(self._start, snapshot())
        return self.report

    def __enter__(self) -> LoadMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def measure_load(window_s: float = 0.1) -> LoadReport:
    """Sleep for `window_s` and report the load meanwhile (our own process idles)."""
    a = snapshot()
    time.sleep(window_s)
    return between(a, snapshot())


def wait_for_quiet(max_foreign_cores: float, timeout_s: float = 1.0, window_s: float = 0.1) -> LoadReport:
    """Poll in `window_s` steps until foreign load is at most `max_foreign_cores` or `timeout_s` passed;
    return the last reading. Where the load cannot be read, returns after one window."""
    deadline = time.monotonic() + timeout_s
    while True:
        rep = measure_load(window_s)
        if rep.foreign_cores is None or rep.foreign_cores <= max_foreign_cores:
            return rep
        if time.monotonic() + window_s > deadline:
            return rep
