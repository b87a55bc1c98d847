"""Timing harness: median of repeated runs after warm-up, stopped by a confidence rule, watched for
foreign load.

Why this shape (DESIGN.md "Measuring honestly", probe 2026-11 sections 0 and 4.4): on the shared VM
medians of identical runs moved by 15-50 % and a busy neighbour multiplied 2-thread times by up to 10.
So we (1) repeat until the distribution-free 95 % confidence interval of the median is narrow, or a run
or time cap is hit, (2) bracket the runs with a foreign-load monitor and retry a disturbed measurement
after waiting for quiet, and (3) flag it `disturbed` if it stays disturbed; it is never dropped silently.
Comparisons use `time_alternating`, which interleaves the candidates in one loop so that drifting load
hits them all alike.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgetune.errors import EdgetuneError
from edgetune.measure.load import LoadMonitor, LoadReport, wait_for_quiet

_Z95 = 1.959964


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Summary of one measurement. Times in milliseconds; `spread` = (p90 - p10) / median; `ci_rel` is
    the width of the median's 95 % confidence interval relative to the median; `foreign_cores` is other
    processes' CPU use during the measurement (None where it cannot be read); `disturbed` means it
    exceeded the allowed foreign load on every attempt. Keyword-only: eleven fields of which several are
    floats, where a positional call swaps two of them without any error (db.Measured shares the order)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    spread: float
    runs: int
    foreign_cores: float | None
    disturbed: bool
    ci_rel: float
    attempts: int = 1
    involuntary_switches: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def median_ci_rel(samples: list[int] | list[float]) -> float:
    """Relative width of the order-statistic (distribution-free) 95 % confidence interval of the median.

    Ranks n/2 -/+ 1.96 sqrt(n)/2 (clamped to the sample), so for n <= 10 it is simply max - min."""
    n = len(samples)
    if n < 2:
        return math.inf
    s = sorted(samples)
    half = _Z95 * math.sqrt(n) / 2.0
    lo = max(1, math.floor(n / 2.0 - half))
    hi = min(n, math.ceil(1 + n / 2.0 + half))
    med = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0
    if med <= 0:
        return 0.0 if s[hi - 1] == s[lo - 1] else math.inf
    return (s[hi - 1] - s[lo - 1]) / med


def _summarize(samples_ns: list[int], load: LoadReport | None, disturbed: bool, attempts: int) -> Timing:
    a = np.asarray(samples_ns, dtype=np.float64) / 1e6
    p10, med, p90 = (float(v) for v in np.percentile(a, [10, 50, 90]))
    return Timing(
        median_ms=med,
        p10_ms=p10,
        p90_ms=p90,
        min_ms=float(a.min()),
        spread=(p90 - p10) / med if med > 0 else 0.0,
        runs=len(samples_ns),
        foreign_cores=None if load is None else load.foreign_cores,
        disturbed=disturbed,
        ci_rel=median_ci_rel(samples_ns),
        attempts=attempts,
        involuntary_switches=0 if load is None else load.involuntary_switches,
    )


@dataclass(frozen=True)
class _Settings:
    """The knobs shared by time_callable and time_alternating (documented there)."""

    warmup: int
    min_runs: int
    max_runs: int
    target_rel_ci: float
    time_cap_s: float
    max_foreign_cores: float
    retries: int
    min_window_s: float
    quiet_wait_s: float
    block: int = 1
    settle_s: float = 0.0

    def __post_init__(self) -> None:
        if self.block < 1 or self.settle_s < 0:
            raise EdgetuneError(f"timing: block must be >= 1 and settle_s >= 0, got {self.block}, {self.settle_s}")
        if self.warmup < 0 or self.retries < 0:
            raise EdgetuneError(f"timing: warmup ({self.warmup}) and retries ({self.retries}) must be >= 0")
        if self.min_runs < 1 or self.max_runs < self.min_runs:
            raise EdgetuneError(f"timing: need 1 <= min_runs ({self.min_runs}) <= max_runs ({self.max_runs})")
        if self.time_cap_s <= 0:
            raise EdgetuneError(f"timing: time_cap_s must be > 0, got {self.time_cap_s}")


def _run_rounds(fns: list[Callable[[], Any]], cfg: _Settings) -> tuple[list[list[int]], LoadReport]:
    """One attempt: warm-up and timed rounds of every callable (rotating the order each round), all
    inside one load-monitor window of at least `min_window_s` (padded by sleeping, which keeps the
    clock-tick granularity of /proc/stat from dominating the reading)."""
    k = len(fns)
    samples: list[list[int]] = [[] for _ in fns]
    converged = [False] * k
    monitor = LoadMonitor().start()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(cfg.warmup):
            for i in range(k):
                fns[(i + r) % k]()
        t_start = time.perf_counter()
        clock = time.perf_counter_ns
        for r in range(cfg.max_runs):
            for i in range(k):
                j = (i + r) % k
                fn = fns[j]
                if cfg.block > 1:
                    _settle(fn, cfg.settle_s)
                for _ in range(max(cfg.block - 1, 1)):
                    t0 = clock()
                    fn()
                    samples[j].append(clock() - t0)
            if r + 1 < cfg.min_runs:
                continue
            if time.perf_counter() - t_start >= cfg.time_cap_s:
                break
            for j in range(k):
                if not converged[j]:
                    converged[j] = median_ci_rel(samples[j]) <= cfg.target_rel_ci
            if all(converged):
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    pad = cfg.min_window_s - monitor.elapsed_s()
    if pad > 0:
        time.sleep(pad)
    return samples, monitor.stop()


def _settle(fn: Callable[[], Any], settle_s: float) -> None:
    """Untimed calls (at least one, then until `settle_s` has passed): the previous callable's thread pool
    may still be spinning (ONNX Runtime's workers spin for tens of ms after a run) and steal the cores."""
    end = time.perf_counter() + settle_s
    fn()
    while time.perf_counter() < end:
        fn()


def _measure(fns: list[Callable[[], Any]], cfg: _Settings) -> list[Timing]:
    best: tuple[list[list[int]], LoadReport] | None = None
    for attempt in range(1, cfg.retries + 2):
        samples, load = _run_rounds(fns, cfg)
        if load.foreign_cores is None or load.foreign_cores <= cfg.max_foreign_cores:
            return [_summarize(s, load, False, attempt) for s in samples]
        if best is None or load.foreign_cores < (best[1].foreign_cores or 0.0):
            best = (samples, load)
        if attempt <= cfg.retries:
            wait_for_quiet(cfg.max_foreign_cores, timeout_s=cfg.quiet_wait_s)
    assert best is not None
    return [_summarize(s, best[1], True, cfg.retries + 1) for s in best[0]]


def time_callable(
    fn: Callable[[], Any],
    *,
    warmup: int = 3,
    min_runs: int = 5,
    max_runs: int = 200,
    target_rel_ci: float = 0.05,
    time_cap_s: float = 1.0,
    max_foreign_cores: float = 0.3,
    retries: int = 2,
    min_window_s: float = 0.1,
    quiet_wait_s: float = 1.0,
) -> Timing:
    """Time `fn()` (no arguments; its result is ignored).

    Runs `warmup` untimed calls, then timed calls until at least `min_runs` are done and either the
    median's 95 % CI is within `target_rel_ci` of it, `max_runs` is reached or `time_cap_s` has passed
    (min_runs always run, so a callable slower than time_cap_s / min_runs overruns the cap). When other
    processes used more than `max_foreign_cores` cores meanwhile, waits up to `quiet_wait_s` for quiet
    and measures again, at most `retries` times; the least disturbed attempt is then returned with
    `disturbed=True`.
    """
    return _measure([fn], _Settings(warmup, min_runs, max_runs, target_rel_ci, time_cap_s, max_foreign_cores,
                                     retries, min_window_s, quiet_wait_s))[0]


def time_alternating(
    fns: Mapping[str, Callable[[], Any]],
    *,
    warmup: int = 3,
    min_runs: int = 5,
    max_runs: int = 200,
    target_rel_ci: float = 0.05,
    time_cap_s: float = 2.0,
    max_foreign_cores: float = 0.3,
    retries: int = 2,
    min_window_s: float = 0.1,
    quiet_wait_s: float = 1.0,
    block: int = 1,
    settle_s: float = 0.0,
) -> dict[str, Timing]:
    """Time several callables side by side: each round calls every one, in an order rotated by one each
    round, so that load drift and cache effects are shared fairly. Rounds stop when every callable's CI is
    within target (or at the caps, as in `time_callable`); a disturbed attempt is retried as a whole, and
    all results share one foreign-load reading.

    `block` > 1 runs each callable back to back per round: untimed calls first (at least one, and until
    `settle_s` has passed), then `block - 1` timed ones. A runtime whose workers spin after a run (ONNX
    Runtime's default) steals the cores from whatever runs next for tens of milliseconds: two such callables
    alternated call by call were measured ~3x slower each (MobileNet V2: 10.6 ms against 3.5 ms alone), and
    one needed ~8 calls (~40 ms) after the other's last run to reach its own speed. Within a settled block
    each runs as a user runs it, alone and back to back."""
    if not fns:
        raise EdgetuneError("time_alternating: no callables given")
    names = list(fns)
    timings = _measure([fns[n] for n in names], _Settings(warmup, min_runs, max_runs, target_rel_ci, time_cap_s,
                                                          max_foreign_cores, retries, min_window_s, quiet_wait_s,
                                                          block, settle_s))
    return dict(zip(names, timings, strict=True))
