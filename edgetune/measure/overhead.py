"""The executor's own cost: what a plan pays per step beyond its kernels.

Why measured: with ~70 steps a plan pays the executor's loop (slot reads and writes, frees, thread checks,
Python calls) that many times per inference; DESIGN.md measured ~20 us per dispatch as 2 ms against a 4 ms
model. `measure_dispatch` gives the search a per-step price; `executor_overhead` times a real plan's program
with its kernels stubbed out (each returns what it returned on the real input), which is the executor's
work and nothing else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetune.kernels.threads import set_threads
from edgetune.measure.timing import Timing, time_callable
from edgetune.runtime.executor import Executor, Step, compile_program, run_steps


def measure_dispatch(steps: int = 200) -> Timing:
    """The executor's own cost per step (slot reads/writes, thread check, call), per step in ms."""
    prog = compile_program([Step("node", f"s{i}", lambda x: [x], [i], [i + 1], 1, "noop", [i]) for i in range(steps)])
    slots: list[Any] = [None] * (steps + 1)

    def once() -> None:
        slots[0] = 1
        run_steps(prog, slots)

    t = time_callable(once, time_cap_s=0.3)
    scale = 1.0 / steps
    return Timing(median_ms=t.median_ms * scale, p10_ms=t.p10_ms * scale, p90_ms=t.p90_ms * scale,
                  min_ms=t.min_ms * scale, spread=t.spread, runs=t.runs, foreign_cores=t.foreign_cores,
                  disturbed=t.disturbed, ci_rel=t.ci_rel)


def executor_overhead(ex: Executor, feeds: dict[str, np.ndarray], time_cap_s: float = 0.3) -> dict[str, float]:
    """Microseconds the executor itself spends per inference of this plan, and per step (input checks
    included, kernels excluded)."""
    stub = ex.stub_program(feeds)
    t = time_callable(lambda: ex.run_program(stub, feeds), time_cap_s=time_cap_s, max_runs=2000)
    steps = max(len(stub), 1)
    return {"steps": len(stub), "per_inference_us": t.median_ms * 1e3, "per_step_us": t.median_ms * 1e3 / steps,
            "spread": t.spread}


def step_times(ex: Executor, feeds: dict[str, np.ndarray], time_cap_s: float = 0.05) -> list[dict[str, Any]]:
    """Each step of `ex`'s program timed alone on the inputs it sees in a real run (median ms), in program
    order, with what it runs: the per-step timeline of a plan (the report's), against which the sum of the
    steps and the end-to-end time show what running them in sequence adds."""
    out = []
    for step, (args, _) in zip(ex.steps, ex.trace(feeds), strict=True):
        set_threads(step.threads)
        t = time_callable(lambda f=step.fn, a=args: f(*a), time_cap_s=time_cap_s, max_runs=200, min_runs=3,
                          warmup=2, quiet_wait_s=0.0, min_window_s=0.0)
        out.append({"step": step.name, "kind": step.kind, "library": step.library or "converter",
                    "threads": step.threads, "primitive": step.primitive, "measured_ms": t.median_ms})
    return out
