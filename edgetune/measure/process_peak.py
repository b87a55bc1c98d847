"""Peak memory of a workload, measured in a fresh subprocess.

Why a subprocess: the allocator of a long-lived process keeps freed memory and its high-water mark only
grows, so the tuner's own RSS says nothing about what one plan needs. A fresh interpreter runs the setup
(imports, model load, warm-up), then the peak-RSS counter is reset (Linux: writing "5" to
/proc/self/clear_refs resets VmHWM to the current RSS) and the workload runs; the growth of the peak
over the post-setup RSS is what the workload itself needed. This validates the executor's planned
memory against reality.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from edgetune.errors import EdgetuneError
from edgetune.runtime.kernel_memory import peak_rss_bytes, reset_peak, rss_bytes

_MARK = "@@edgetune-memory@@"

_DRIVER = r"""
import json, resource, sys
codes = json.loads(sys.stdin.read())

def status_kb(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None

def maxrss_bytes():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024

ns = {"__name__": "__edgetune_memory__"}
exec(compile(codes["setup"], "<setup>", "exec"), ns)
rss = status_kb("VmRSS")
baseline = rss * 1024 if rss is not None else maxrss_bytes()
reset = False
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    hwm = status_kb("VmHWM")
    reset = hwm is not None and rss is not None and hwm <= rss + 1024
except OSError:
    pass
exec(compile(codes["run"], "<run>", "exec"), ns)
hwm = status_kb("VmHWM")
peak = hwm * 1024 if (reset and hwm is not None) else maxrss_bytes()
sys.stdout.flush()
print("\n" + MARK + json.dumps({"baseline_rss": baseline, "peak_rss": peak, "reset": reset}), flush=True)
""".replace("MARK", repr(_MARK))


def measure_subprocess_peak(setup_code: str, run_code: str, timeout_s: float = 300.0,
                            env: dict[str, str] | None = None) -> dict[str, int | bool]:
    """Run `setup_code` then `run_code` (Python source, sharing one namespace) in a fresh interpreter.

    Returns baseline_rss (bytes, after setup), peak_rss (bytes, highest RSS while `run_code` ran, or
    over the whole process where the peak could not be reset: then `reset` is False and a setup peak
    larger than the run's hides the run's), and growth = max(0, peak_rss - baseline_rss).
    A failing snippet raises EdgetuneError with the last line of its error output.
    """
    child_env = dict(os.environ if env is None else env)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _DRIVER],
            input=json.dumps({"setup": setup_code, "run": run_code}),
            capture_output=True, text=True, timeout=timeout_s, env=child_env,
        )
    except subprocess.TimeoutExpired:
        raise EdgetuneError(f"memory measurement: workload did not finish within {timeout_s:g} s") from None
    report = None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_MARK):
            report = json.loads(line[len(_MARK):])
            break
    if proc.returncode != 0 or report is None:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit status {proc.returncode}"
        raise EdgetuneError(f"memory measurement: the workload failed: {last}")
    baseline, peak = int(report["baseline_rss"]), int(report["peak_rss"])
    return {"baseline_rss": baseline, "peak_rss": peak, "growth": max(0, peak - baseline),
            "reset": bool(report["reset"])}


def inprocess_peak_growth(fn: object) -> int | None:
    """Peak RSS growth of calling `fn()` once in this process (Linux: VmHWM reset via clear_refs).

    Less clean than the subprocess measurement (the allocator may reuse memory this process freed
    earlier), but free; None where the peak cannot be reset."""

    rss = rss_bytes()
    if rss is None or not reset_peak():
        return None
    fn()  # type: ignore[operator]
    hwm = peak_rss_bytes()
    return None if hwm is None else max(0, hwm - rss)
