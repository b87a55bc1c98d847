"""Timing harness, foreign-load monitor, device fingerprint and subprocess memory measurement.

These check behaviour and numbers the harness reports, never how fast anything is. Loads other
processes put on the shared machine are real, so thresholds that would be hit by them are either
lifted (max_foreign_cores=100) or the test creates its own load on purpose.
"""

import os
import subprocess
import sys
import time

import pytest

from edgetune.device.cpu import fingerprint, fingerprint_id, library_versions, versions_id
from edgetune.errors import EdgetuneError
from edgetune.measure import LoadMonitor, measure_subprocess_peak, median_ci_rel, time_alternating, time_callable

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
IGNORE_LOAD = {"max_foreign_cores": 100.0, "retries": 0}
_BUSY = "import sys, time\nprint('go', flush=True)\nend = time.time() + 5\nwhile time.time() < end:\n    pass\n"


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.fixture
def busy_core():
    """A child process burning one core (it also stops by itself after 5 s, should kill ever fail)."""
    p = subprocess.Popen([sys.executable, "-c", _BUSY], stdout=subprocess.PIPE)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == b"go"
        yield p
    finally:
        p.kill()
        p.wait(timeout=10)


def test_sleep_1ms_median_and_min_runs():
    t = time_callable(lambda: time.sleep(0.001), min_runs=7, time_cap_s=0.3, **IGNORE_LOAD)
    assert 0.9 <= t.median_ms <= 5.0
    assert t.runs >= 7
    assert t.min_ms <= t.p10_ms <= t.median_ms <= t.p90_ms
    assert t.spread == pytest.approx((t.p90_ms - t.p10_ms) / t.median_ms)
    assert not t.disturbed and t.attempts == 1


def test_ci_rule_stops_early_for_constant_time():
    t = time_callable(lambda: _spin(0.0002), max_runs=200, target_rel_ci=0.05, time_cap_s=5.0, **IGNORE_LOAD)
    assert t.runs < 200
    assert t.ci_rel <= 0.05


def test_time_cap_bounds_runs_when_ci_never_met():
    start = time.perf_counter()
    t = time_callable(lambda: time.sleep(0.001), target_rel_ci=0.0, max_runs=10_000, time_cap_s=0.2,
                      **IGNORE_LOAD)
    assert 5 <= t.runs < 10_000
    assert time.perf_counter() - start < 2.0


def test_median_ci_rel_order_statistics():
    assert median_ci_rel([10, 11, 12, 13, 14]) == pytest.approx(4 / 12)  # n <= 10: max - min
    assert median_ci_rel([1.0]) == float("inf")
    big = [100] * 40 + [1000] * 3  # a few outliers do not widen the median's interval
    assert median_ci_rel(big) == 0.0


def test_bad_arguments_raise():
    with pytest.raises(EdgetuneError, match="min_runs"):
        time_callable(lambda: None, min_runs=10, max_runs=5)
    with pytest.raises(EdgetuneError, match="no callables"):
        time_alternating({})


def test_time_alternating_interleaves_and_keys_results():
    res = time_alternating({"short": lambda: time.sleep(0.001), "long": lambda: time.sleep(0.004)},
                           time_cap_s=0.5, **IGNORE_LOAD)
    assert set(res) == {"short", "long"}
    assert res["short"].runs == res["long"].runs >= 5  # lockstep rounds
    assert res["long"].median_ms > res["short"].median_ms + 1.5
    assert res["short"].foreign_cores == res["long"].foreign_cores  # one shared window


@linux_only
def test_foreign_load_flags_disturbed(busy_core):
    t = time_callable(lambda: time.sleep(0.001), target_rel_ci=0.0, time_cap_s=0.3,
                      max_foreign_cores=0.2, retries=0)
    assert t.foreign_cores is not None and t.foreign_cores > 0.5
    assert t.disturbed and t.attempts == 1


@linux_only
def test_foreign_load_is_retried_then_reported(busy_core):
    t = time_callable(lambda: time.sleep(0.001), target_rel_ci=0.0, time_cap_s=0.15,
                      max_foreign_cores=0.2, retries=1, quiet_wait_s=0.2)
    assert t.disturbed and t.attempts == 2


@linux_only
def test_own_cpu_is_not_foreign():
    with LoadMonitor() as m:
        _spin(0.3)
    rep = m.report
    assert rep is not None and rep.foreign_cores is not None
    assert rep.own_cores > 0.3  # most of a core, less when the machine is full
    # ours plus others' cannot exceed the machine (plus clock-tick noise); counting ours twice could
    assert rep.foreign_cores + rep.own_cores <= (os.cpu_count() or 1) + 0.3


def test_foreign_is_busy_minus_own():
    from edgetune.measure import load

    hz = load._HZ
    a = load.LoadSnapshot(wall_ns=0, busy_ticks=1000, steal_ticks=5, own_cpu_ns=0, nivcsw=3, psi_some_us=0)
    b = load.LoadSnapshot(wall_ns=2_000_000_000, busy_ticks=1000 + 3 * hz, steal_ticks=5 + hz // 2,
                          own_cpu_ns=1_200_000_000, nivcsw=7, psi_some_us=50_000)
    rep = load.between(a, b)
    assert rep.window_s == pytest.approx(2.0)
    assert rep.own_cores == pytest.approx(0.6)
    assert rep.foreign_cores == pytest.approx((3.0 - 1.2) / 2.0)
    assert rep.steal_cores == pytest.approx(0.25)
    assert rep.involuntary_switches == 4 and rep.cpu_wait_s == pytest.approx(0.05)
    nothing = load.LoadSnapshot(0, None, None, 0, 0, None)
    assert load.between(nothing, nothing).foreign_cores is None


def test_fingerprint_and_versions_are_stable():
    fp = fingerprint()
    assert {"cpu", "arch", "cores", "flags"} <= set(fp) and fp["cores"] >= 1
    assert fingerprint_id() == fingerprint_id() and len(fingerprint_id()) == 12
    v = library_versions()
    assert v["numpy"] and v["edgetune"]
    assert len(versions_id()) == 12


@linux_only
def test_subprocess_peak_of_200mb_array():
    r = measure_subprocess_peak("import numpy as np", "a = np.ones(200_000_000 // 8)")
    assert r["reset"]
    assert r["growth"] == pytest.approx(200e6, rel=0.15)
    assert r["peak_rss"] >= r["baseline_rss"]


def test_subprocess_failure_raises():
    with pytest.raises(EdgetuneError, match="ZeroDivisionError"):
        measure_subprocess_peak("x = 1", "1 / 0")


def test_blocks_run_each_callable_back_to_back_and_skip_the_first_call():
    calls = {"a": [], "b": []}
    order = []

    def make(name):
        def fn():
            calls[name].append(1)
            order.append(name)
        return fn

    res = time_alternating({"a": make("a"), "b": make("b")}, warmup=0, min_runs=4, max_runs=4, target_rel_ci=0.0,
                           time_cap_s=10.0, block=3, **IGNORE_LOAD)
    assert len(calls["a"]) == len(calls["b"]) == 12  # 4 rounds x 3 calls
    assert res["a"].runs == res["b"].runs == 8  # the first call of every block is not timed
    assert order[:6] == ["a"] * 3 + ["b"] * 3 and order[6:12] == ["b"] * 3 + ["a"] * 3  # rotated per round
    with pytest.raises(EdgetuneError, match="block"):
        time_alternating({"a": make("a")}, block=0)
