"""Closing the loop: boundary costs fitted to end-to-end measurements, written back, read by the design space."""

import numpy as np
import pytest

from edgetune.measure.db import ProfileDB
from edgetune.measure.switching import pool, switch_key
from edgetune.measure.timing import Timing
from edgetune.planning.closed_loop import (
    RUN_KEY,
    MeasuredPlan,
    agrees,
    fit_boundaries,
    plan_switches,
    run_overhead_ms,
    switch_ms,
    write_fit,
)
from edgetune.search import DesignSpace
from edgetune.search.space import Option

LIBS = (("onnxruntime", 2), ("openvino", 2), ("openvino", 1))


def _timing(ms: float) -> Timing:
    return Timing(median_ms=ms, p10_ms=ms, p90_ms=ms, min_ms=ms, spread=0.0, runs=5, foreign_cores=0.0,
                  disturbed=False, ci_rel=0.0)


def _space(n: int = 6) -> DesignSpace:
    """A chain of n nodes, each runnable on ORT at 2 threads or OpenVINO at 2 or 1, 1 ms every way."""
    opts = [[Option(key=f"{lib}@{t}", time_ms=1.0, meta={"library": lib, "threads": t}) for lib, t in LIBS]
            for _ in range(n)]
    edges = [(i, i + 1) for i in range(n - 1)]
    return DesignSpace(nodes=[f"n{i}" for i in range(n)], options=opts, edges=edges,
                       edge_cost=[np.zeros((3, 3)) for _ in edges])


@pytest.fixture
def db(tmp_path):
    d = ProfileDB(tmp_path / "p.sqlite", device_id="dev", versions_id="v")
    yield d
    d.close()


def test_plan_switches_counts_each_kind_between_consecutive_nodes():
    space = _space()
    ort, ov, ov1 = (pool("onnxruntime"), 2), (pool("openvino"), 2), (pool("openvino"), 1)
    counts = plan_switches(space, [0, 0, 1, 1, 0, 2])
    assert counts == {switch_key(ort, ov): 2, switch_key(ort, ov1): 1}
    assert plan_switches(space, [1] * 6) == {}


def test_fit_recovers_switch_costs_the_probe_missed(db):
    """Plans predicted with a switch probe of 0.05 ms measure as if each ORT<->OV switch at 2 threads cost 0.8 ms
    and each ORT@2<->OV@1 one 0.3 ms, on top of a 0.1 ms per-inference cost: the fit finds those."""
    space = _space()
    ort, ov, ov1 = (pool("onnxruntime"), 2), (pool("openvino"), 2), (pool("openvino"), 1)
    to_ov, to_ort = switch_key(ort, ov), switch_key(ort, ov1)
    for key in (to_ov, to_ort, switch_key(ov, ov1)):
        db.put_converter(key, (), 0, _timing(0.05))
    true = {to_ov: 0.8, to_ort: 0.3, switch_key(ov, ov1): 0.05}
    choices = [[0] * 6, [1] * 6, [0, 0, 0, 1, 1, 1], [0, 2, 2, 0, 0, 0], [0, 1, 0, 1, 0, 1], [2, 2, 0, 0, 2, 2],
               [0, 2, 0, 0, 0, 0]]
    plans = []
    for k, choice in enumerate(choices):
        counts = plan_switches(space, choice)
        predicted = 6.0 + 0.05 * sum(counts.values())
        measured = 6.0 + 0.1 + sum(true[key] * n for key, n in counts.items())
        plans.append(MeasuredPlan(f"p{k}", choice, predicted, measured))
    fit = fit_boundaries(space, db, plans)
    assert fit.before[to_ov] == pytest.approx(0.05) and fit.before[RUN_KEY] == 0.0
    assert fit.after[to_ov] == pytest.approx(0.8, abs=0.05) and fit.after[to_ort] == pytest.approx(0.3, abs=0.05)
    assert fit.after[RUN_KEY] == pytest.approx(0.1, abs=0.05)
    assert fit.residual_after_ms < 0.1 * fit.residual_before_ms
    write_fit(db, fit)
    # the fitted costs replace the probes wherever the design space asks, and the per-inference cost is kept
    assert switch_ms(db, to_ov) == pytest.approx(fit.after[to_ov]) and run_overhead_ms(db) == pytest.approx(
        fit.after[RUN_KEY])
    assert switch_ms(db, "switch:never@1<->measured@2") == 0.0


def test_fit_never_makes_a_cost_negative_and_keeps_unseen_kinds(db):
    """Plans measured faster than predicted drive the switch costs down to zero at most; the per-inference
    offset may go negative (a profile taken under more load than the end-to-end run), to half the fastest."""
    space = _space()
    ort, ov = (pool("onnxruntime"), 2), (pool("openvino"), 2)
    key = switch_key(ort, ov)
    db.put_converter(key, (), 0, _timing(1.0))
    plans = [MeasuredPlan("mixed", [0, 0, 0, 1, 1, 1], 7.0, 5.0), MeasuredPlan("pure", [0] * 6, 6.0, 5.5)]
    fit = fit_boundaries(space, db, plans)
    assert all(v >= 0.0 for k, v in fit.after.items() if k != RUN_KEY) and fit.after[key] < 1.0
    assert -2.5 <= fit.after[RUN_KEY] < 0.0
    write_fit(db, fit)
    assert run_overhead_ms(db) == pytest.approx(fit.after[RUN_KEY])


def test_agreement_is_ten_percent_of_the_measurement():
    assert agrees(10.9, 10.0) and agrees(9.1, 10.0)
    assert not agrees(11.2, 10.0) and not agrees(4.46, 7.42)


def test_fitted_costs_are_listed_by_prefix(db):
    db.put_converter("observed:run", (), 0, _timing(0.2))
    db.put_converter("observed:switch:a@1<->b@2", (), 0, _timing(0.7))
    db.put_converter("observedXrun", (), 0, _timing(9.0))  # '_' and '%' in a prefix are literal, not wildcards
    db.put_converter("switch:a@1<->b@2", (), 0, _timing(0.1))
    assert db.converters_like("observed:") == {"observed:run": 0.2, "observed:switch:a@1<->b@2": 0.7}
    assert db.converters_like("observed_") == {}
