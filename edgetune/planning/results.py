"""The typed hand-offs of `tune`: what it is asked (`TuneConfig`), what the loop returns (`TuneResult`,
whose `to_dict()` is summary.json and `tune --json`) and what the HTML report is drawn from
(`ReportData`).

Why dataclasses rather than dicts: the loop, the report writer and their tests share one definition of
every field, so a renamed or missing field fails where it is built, not as a blank section of a page.
Every `ReportData` field has a default and values may be None (or NaN): a report must still render for
a partial run, saying "not available" for what is missing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TuneConfig:
    """The run's choices: search strategy and budget, objective (and memory limit), thread counts and
    precisions the plan may use, seed, and how long the side-by-side comparison may take."""

    strategy: str = "qlearning"
    budget: int = 1000
    objective: str = "latency"
    max_memory: int | None = None
    threads: list[int] = field(default_factory=lambda: [1, 2])
    precisions: tuple[str, ...] = ("fp32",)
    seed: int = 0
    compare_time_cap_s: float = 20.0
    compare_all_strategies: bool = True
    profile_time_cap_s: float = 0.2  # per measurement of what the loop measures on demand (the profiler's cap)


@dataclass
class CandidateRow:
    """One candidate plan: predicted by the cost model, measured end to end when it compiled."""

    name: str
    predicted_ms: float | None = None
    measured_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    memory_bytes: int | None = None
    max_rel_error: float | None = None  # against the reference executor; None when not compiled
    chosen: bool = False
    note: str = ""
    steps: int | None = None
    accuracy: dict[str, Any] | None = None  # metric, value, drop, meets_budget: where a precision search ran


# ---- summary.json / `tune --json` ----------------------------------------------------------------

@dataclass
class Latencies:
    """Measured medians (ms) of the chosen plan and the two fixed peers, from one side-by-side run."""

    plan: float
    blas: float
    onnxruntime: float


@dataclass
class Speedups:
    """The peers' medians over the plan's."""

    vs_blas: float
    vs_onnxruntime: float


@dataclass
class MemorySummary:
    """Planned bytes of the plan and the BLAS baseline (`*_detail`: `MemoryReport.to_dict()`), and the
    weights ONNX Runtime holds."""

    plan: int
    blas: int
    onnxruntime_weights: int | None
    plan_detail: dict[str, Any]
    blas_detail: dict[str, Any]


@dataclass
class SearchSummary:
    """The chosen strategy's result beside the exact optimum of the same cost model."""

    strategy: str
    evaluations: int
    predicted_ms: float
    optimum_ms: float
    design_space_log10: float
    chosen_candidate: str


@dataclass
class ProfileCounts:
    """What profiling measured for this run and what it found in the DB."""

    new_measurements: int = 0
    cached: int = 0
    seconds: float = 0.0
    excluded: int = 0


@dataclass
class TuneResult:
    """The outcome of one `tune`. Paths are strings (as printed); `comparison` holds the side-by-side
    rows of `measure.compare` as measured; `verdict` is `peer_verdict`'s; `executor` the executor's own
    overhead of the chosen plan with its ORT spin mode and libraries."""

    model: str
    plan: str
    out_dir: str
    db: str
    input_shapes: dict[str, list[int]]
    upgraded_from_opset: int | None
    generic_nodes: dict[str, str]
    latency_ms: Latencies
    speedup: Speedups
    memory_bytes: MemorySummary
    search: SearchSummary
    profile: ProfileCounts
    candidates: list[CandidateRow]
    comparison: list[dict[str, Any]]
    verdict: dict[str, Any]
    executor: dict[str, Any]
    notes: list[str]
    device: dict[str, Any]
    report: str | None  # report.html, once written
    batch: int
    loop: list[dict[str, Any]] = field(default_factory=list)  # the closed loop's rounds (planning/closed_loop.py)
    precision: dict[str, Any] | None = None  # the precision search, where --data was given (planning/precision.py)
    placement: dict[str, Any] | None = None  # on CPUs with core clusters: each placement measured (placement.py)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (summary.json, `tune --json`); "notes" only when there are some."""
        d = asdict(self)
        if not d["notes"]:
            del d["notes"]
        for optional in ("precision", "placement"):
            if d[optional] is None:
                del d[optional]
        return d


# ---- the report --------------------------------------------------------------------------------

@dataclass
class LayerOption:
    """One way to run a layer, as measured alone."""

    key: str
    time_ms: float | None
    library: str = ""
    precision: str = "fp32"


@dataclass
class LayerRow:
    """A node of the graph: the option the plan runs and every option it had."""

    node: str
    op: str
    chosen: str = ""
    chosen_ms: float | None = None
    options: list[LayerOption] = field(default_factory=list)


@dataclass
class StrategyRun:
    """One strategy's search on the run's design space; `trace` is [evaluations, best so far] pairs."""

    best_ms: float | None
    best_cost: float | None = None
    evaluations: int | None = None
    seconds: float | None = None
    trace: list[list[float]] = field(default_factory=list)
    memory_bytes: int | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParetoPoint:
    """A non-dominated plan: predicted latency and the search's memory model; `chosen` when it is the
    plan picked by measurement."""

    latency_ms: float | None
    memory_bytes: int | None
    chosen: bool = False


@dataclass
class ComparisonRow:
    """A variant of the end-to-end comparison as the report shows it (the plan named "edgetune plan")."""

    variant: str
    median_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    memory_bytes: int | None = None
    memory_kind: str = ""  # "planned total" or "weights only"
    speedup_vs_blas: float | None = None
    note: str = ""


@dataclass
class SpaceSummary:
    """The design space's size, per-node option counts, and what had no measurement."""

    nodes: int | None = None
    edges: int | None = None
    log10_size: float | None = None
    options_per_node: list[int] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    unmeasured: list[str] = field(default_factory=list)


@dataclass
class Method:
    """The run's own words for how its numbers were obtained (empty: the report's default text)."""

    timing: str = ""
    comparison: str = ""
    search: str = ""
    memory: str = ""


@dataclass
class ReportData:
    """Everything report.html shows. `profile_db` is the profile database's path."""

    model: str = ""
    created: str = ""
    objective: str = ""
    max_memory: int | None = None
    device: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    threads: list[int] = field(default_factory=list)
    method: Method = field(default_factory=Method)
    space: SpaceSummary | None = None
    layers: list[LayerRow] = field(default_factory=list)
    strategies: dict[str, StrategyRun] = field(default_factory=dict)
    optimum_ms: float | None = None
    pareto: list[ParetoPoint] = field(default_factory=list)
    candidates: list[CandidateRow] = field(default_factory=list)
    comparison: list[ComparisonRow] = field(default_factory=list)
    verdict: dict[str, Any] = field(default_factory=dict)
    executor: dict[str, Any] = field(default_factory=dict)
    profile: ProfileCounts | None = None
    profile_db: str = ""
    plan_path: str = ""
    notes: list[str] = field(default_factory=list)
    loop: list[dict[str, Any]] = field(default_factory=list)  # the closed loop's rounds, as TuneResult.loop
    precision: dict[str, Any] | None = None  # as TuneResult.precision, with the per-node precisions and why
    timeline: list[dict[str, Any]] = field(default_factory=list)  # the chosen plan's steps, predicted and measured
