"""Closing the loop between the cost model and the end-to-end measurement of whole plans.

Why: a plan's prediction is the sum of what the profiler measured in isolation (segments measured whole,
one-node kernels, converters, a probe of each thread-pool switch). What isolation cannot see is what a
boundary between two backends costs in sequence: OpenVINO's TBB workers still awake when ONNX Runtime's
pool starts, caches cold after a foreign pool ran. A mixed plan then measures slower than predicted while
a whole-graph segment agrees. So after the candidates are measured end to end, the boundaries are fitted
to the measurements: one non-negative cost per kind of pool switch the plans cross (pool and threads on
each side) and one per-inference offset of the executor, by bounded least squares over every measured plan
(ridge-tied to the current values, so an unseen kind keeps its probe): switch costs are never negative; the
offset may be, down to half the fastest measurement, because a profile taken under heavier load than the
end-to-end run predicts every plan too slow by much the same amount. The fitted values are written
back to the ProfileDB as `observed:` records, the design space reads them in place of the probes, the
search runs again, and the plans it now prefers are measured; until the chosen plan's prediction agrees
with its measurement within `AGREEMENT`, or no new plan comes up, or `MAX_ROUNDS` pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import lsq_linear

from edgetune.measure.db import ProfileDB
from edgetune.measure.switching import pool, switch_key
from edgetune.measure.timing import Timing
from edgetune.search import DesignSpace

AGREEMENT = 0.10  # |predicted - measured| / measured at which the chosen plan's prediction is trusted
MAX_ROUNDS = 3
OBSERVED = "observed:"
RUN_KEY = "run"  # the executor's per-inference cost beyond its steps (feeds, outputs), fitted like a switch
CREDIT_KEY = "run-credit"  # a negative per-inference offset, stored as its magnitude (DB times are >= 0)
RIDGE = 0.05  # weight (per ms^2) tying each fitted cost to its current value: few plans, many kinds


def observed_key(kind: str) -> str:
    """The DB key of a boundary cost fitted to end-to-end measurements."""
    return OBSERVED + kind


def run_overhead_ms(db: ProfileDB) -> float:
    """The fitted per-inference offset of the executor (0 until a loop has fitted one; may be negative)."""
    cost = db.get_converter(observed_key(RUN_KEY), (), 0)
    credit = db.get_converter(observed_key(CREDIT_KEY), (), 0)
    return (cost.median_ms if cost else 0.0) - (credit.median_ms if credit else 0.0)


def switch_ms(db: ProfileDB, key: str) -> float:
    """A pool switch's cost: the fitted one where a loop fitted it, else the profiler's probe, else 0."""
    rec = db.get_converter(observed_key(key), (), 0) or db.get_converter(key, (), 0)
    return rec.median_ms if rec else 0.0


def plan_switches(space: DesignSpace, choice: Sequence[int]) -> Counter[str]:
    """The pool switches a plan crosses, by kind: consecutive nodes whose (pool, threads) differ, as the
    design space prices them."""
    states = []
    for opts, c in zip(space.options, choice, strict=True):
        meta = opts[c].meta
        states.append((pool(meta.get("library", "")), int(meta.get("threads", 1))))
    return Counter(switch_key(a, b) for a, b in zip(states, states[1:], strict=False) if a != b)


@dataclass
class MeasuredPlan:
    """A plan measured end to end: its choice in the space, the prediction it had then, the measurement."""

    name: str
    choice: list[int]
    predicted_ms: float
    measured_ms: float


@dataclass
class Fit:
    """The boundary costs fitted in one round (ms; kind -> value) and how well they explain the plans."""

    before: dict[str, float]
    after: dict[str, float]
    residual_before_ms: float  # RMS of measured - predicted over the plans, with the old costs
    residual_after_ms: float
    plans: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"before_ms": self.before, "after_ms": self.after, "rms_before_ms": self.residual_before_ms,
                "rms_after_ms": self.residual_after_ms, "plans": self.plans}


def fit_boundaries(space: DesignSpace, db: ProfileDB, plans: Sequence[MeasuredPlan]) -> Fit:
    """Fit one cost per switch kind (and the per-inference cost) to the measured plans; see the module's
    docstring. The design space the plans were predicted with must be the one `space` is."""
    counts = [plan_switches(space, p.choice) for p in plans]
    kinds = sorted({k for c in counts for k in c}) + [RUN_KEY]
    current = np.array([switch_ms(db, k) if k != RUN_KEY else run_overhead_ms(db) for k in kinds])
    features = np.array([[c.get(k, 0) if k != RUN_KEY else 1 for k in kinds] for c in counts], dtype=np.float64)
    measured = np.array([p.measured_ms for p in plans])
    base = np.array([p.predicted_ms for p in plans]) - features @ current  # what the plan costs without them
    target = measured - base
    lhs = np.vstack([features, np.sqrt(RIDGE) * np.eye(len(kinds))])
    rhs = np.concatenate([target, np.sqrt(RIDGE) * current])
    lower = np.zeros(len(kinds))
    lower[-1] = -0.5 * float(measured.min())
    fitted = lsq_linear(lhs, rhs, bounds=(lower, np.full(len(kinds), np.inf))).x
    rms = lambda v: float(np.sqrt(np.mean((features @ v - target) ** 2)))  # noqa: E731
    return Fit(before=dict(zip(kinds, current.tolist(), strict=True)),
               after=dict(zip(kinds, fitted.tolist(), strict=True)),
               residual_before_ms=rms(current), residual_after_ms=rms(fitted), plans=len(plans))


def write_fit(db: ProfileDB, fit: Fit) -> None:
    """Store the fitted costs as `observed:` records (a later tune starts from them and refits)."""
    records = {k: v for k, v in fit.after.items() if k != RUN_KEY}
    offset = fit.after.get(RUN_KEY, 0.0)
    records[RUN_KEY], records[CREDIT_KEY] = max(offset, 0.0), max(-offset, 0.0)
    for kind, ms in records.items():
        db.put_converter(observed_key(kind), (), 0, Timing(
            median_ms=ms, p10_ms=ms, p90_ms=ms, min_ms=ms, spread=0.0, runs=fit.plans, foreign_cores=0.0,
            disturbed=False, ci_rel=0.0))


def agrees(predicted_ms: float, measured_ms: float) -> bool:
    """Whether a prediction is within `AGREEMENT` of its measurement."""
    return abs(predicted_ms - measured_ms) <= AGREEMENT * measured_ms
