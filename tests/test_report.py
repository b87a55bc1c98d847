"""The HTML report: self-contained, complete for a full run, still valid for an empty one, escaped."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from edgetune.planning.results import (
    CandidateRow,
    ComparisonRow,
    LayerOption,
    LayerRow,
    Method,
    ParetoPoint,
    ProfileCounts,
    ReportData,
    SpaceSummary,
    StrategyRun,
)
from edgetune.report.html import FIGURE_FILES, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def full_data() -> ReportData:
    """A synthetic report input of the tuner's type: 3 strategies, 10 layers, 4 Pareto points."""
    libs = ["numpy", "ort", "torch"]
    layers = []
    for i in range(10):
        options = [LayerOption(key=f"conv.alg{j}.{libs[j % 3]}@{1 + j % 2}", time_ms=0.1 * (i + 1) * (j + 1),
                               library=libs[j % 3]) for j in range(4)]
        layers.append(LayerRow(node=f"/features/{i}/Conv", op="Conv", chosen=options[1].key,
                               chosen_ms=options[1].time_ms, options=options))
    trace = [[1, 30.0], [10, 20.0], [100, 12.0], [1000, 9.1]]
    return ReportData(
        model="mobilenet_v2", created="2026-11-23T21:40:00", objective="latency", max_memory=None,
        device={"cpu": "Test CPU", "cores": 2, "flags": ["avx2", "fma"], "id": "0123456789ab",
                "identity": "AuthenticAMD family 25 model 1", "smt_threads_per_core": 1,
                "features": {"AVX2": True, "AVX-512": False}, "caches": {"L2": 512 * 1024}},
        versions={"torch": "2.5", "onnxruntime": "1.20"},
        threads=[1, 2],
        method=Method(timing="median of repeated runs after warm-up (test)", comparison="side by side (test)",
                      search="cost model sum (test)"),
        space=SpaceSummary(nodes=10, edges=9, log10_size=6.0, options_per_node=[4] * 10),
        layers=layers,
        strategies={
            "qlearning": StrategyRun(best_ms=9.1, evaluations=1000, seconds=1.2, trace=trace,
                                     hyperparameters={"alpha": 0.05, "gamma": 0.9}),
            "random": StrategyRun(best_ms=11.5, evaluations=1000, seconds=0.4, trace=[[1, 40.0], [1000, 11.5]]),
            "greedy": StrategyRun(best_ms=9.8, evaluations=10, seconds=0.01, trace=[[10, 9.8]]),
        },
        optimum_ms=8.7,
        pareto=[ParetoPoint(latency_ms=8.7, memory_bytes=30_000_000, chosen=True),
                ParetoPoint(latency_ms=9.5, memory_bytes=20_000_000),
                ParetoPoint(latency_ms=12.0, memory_bytes=12_000_000),
                ParetoPoint(latency_ms=20.0, memory_bytes=8_000_000)],
        candidates=[CandidateRow(name="exact optimum", predicted_ms=8.7, measured_ms=9.3, p10_ms=9.0, p90_ms=9.9,
                                 memory_bytes=31_000_000, max_rel_error=1e-6, chosen=True)],
        timeline=[{"step": "a..b", "library": "openvino", "threads": 2, "nodes": 12, "predicted_ms": 3.1,
                   "measured_ms": 3.3, "kind": "node"},
                  {"step": "c", "library": "onnxruntime", "threads": 2, "nodes": 1, "predicted_ms": 0.4,
                   "measured_ms": 0.5, "kind": "node"}],
        loop=[{"round": 1, "chosen": "mixed", "predicted_ms": 4.46, "measured_ms": 7.42,
               "fit": {"after_ms": {"switch:ort@2<->openvino@2": 1.234, "run": 0.05}, "rms_before_ms": 1.5,
                       "rms_after_ms": 0.2, "plans": 5}, "new_candidates": ["exact optimum, loop round 1"]},
              {"round": 2, "chosen": "exact optimum, loop round 1", "predicted_ms": 8.9, "measured_ms": 9.3,
               "stop": "the chosen plan's prediction agrees with its measurement"}],
        comparison=[
            ComparisonRow(variant="edgetune plan", median_ms=9.3, p10_ms=9.0, p90_ms=9.9, memory_bytes=31_000_000,
                          speedup_vs_blas=4.2),
            ComparisonRow(variant="BLAS fp32 baseline", median_ms=39.06, p10_ms=38.0, p90_ms=41.0,
                          memory_bytes=40_000_000, speedup_vs_blas=1.0),
            ComparisonRow(variant="onnxruntime fp32", median_ms=11.2, p10_ms=11.0, p90_ms=11.6,
                          memory_bytes=35_000_000, speedup_vs_blas=3.49),
        ],
        profile=ProfileCounts(new_measurements=120, cached=800, seconds=95.0),
        profile_db="/tmp/profile.sqlite",
        plan_path="runs/x/plan.json",
        notes=["node /features/9/Conv fell back to the reference kernel"],
    )


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<(img|link)[^>]+(src|href)=\"(?!data:)", page), "every resource must be inline"


def test_full_report(tmp_path: Path) -> None:
    path = write_report(full_data(), tmp_path / "out")
    assert path == tmp_path / "out" / "report.html"
    page = path.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert "mobilenet_v2" in page
    for name in ("qlearning", "random", "greedy"):
        assert name in page
    assert "9.30" in page and "39.06" in page and "8.70" in page
    assert "4.20×" in page  # speed-up vs BLAS
    assert page.count("data:image/png;base64,") >= 4
    assert "not available" not in page
    assert "side by side (test)" in page and "cost model sum (test)" in page
    assert "/features/9/Conv" in page
    # the closed loop's rounds: the fitted boundary cost, escaped once
    assert "switch:ort@2&lt;-&gt;openvino@2 1.234 ms" in page and "1.500 → 0.200" in page
    # the machine every figure was measured on
    assert "Test CPU (AuthenticAMD family 25 model 1)" in page and "0123456789ab" in page
    assert "L2 0.50 MiB" in page and ">AVX2<" in page
    for name in FIGURE_FILES:
        png = tmp_path / "out" / name
        assert png.is_file(), name
        assert png.read_bytes()[:8] == PNG_MAGIC
    # every figure has a caption in the page
    assert page.count("<figcaption>") == page.count("data:image/png;base64,") == len(FIGURE_FILES)


def test_minimal_report_says_not_available(tmp_path: Path) -> None:
    path = write_report(ReportData(model="m"), tmp_path)
    page = path.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert "edgetune report: m" in page
    assert page.count("not available") >= 6
    assert "data:image/png;base64," not in page
    assert not list(tmp_path.glob("*.png"))
    assert "How to read this report" in page  # default method text still explains the numbers


def test_empty_and_malformed_values_do_not_crash(tmp_path: Path) -> None:
    data = full_data()
    data.layers[0].options = [LayerOption(key="x", time_ms=None), LayerOption(key="y", time_ms=float("nan"))]
    data.layers[0].chosen_ms = None
    data.strategies["random"].trace = [[0, 5.0], ["bad"], None]  # a cut-short trace: entries are skipped
    data.comparison.append(ComparisonRow(variant="broken", median_ms=None))
    data.space = SpaceSummary(nodes=3)
    data.pareto = []
    page = write_report(data, tmp_path).read_text(encoding="utf-8")
    assert_self_contained(page)
    assert "Pareto front not available" in page
    assert "Options-per-node histogram not available" in page


def test_stale_figures_are_removed(tmp_path: Path) -> None:
    write_report(full_data(), tmp_path)
    assert (tmp_path / "pareto.png").is_file()
    write_report(ReportData(model="m"), tmp_path)
    assert not (tmp_path / "pareto.png").exists()


@pytest.mark.parametrize("field", ["model", "note", "node", "strategy"])
def test_strings_are_escaped(tmp_path: Path, field: str) -> None:
    nasty = "<b>x</b> & y"
    data = full_data()
    if field == "model":
        data.model = nasty
    elif field == "note":
        data.notes = [nasty]
    elif field == "node":
        data.layers[0].node = nasty
    else:
        data.strategies[nasty] = data.strategies.pop("greedy")
    page = write_report(data, tmp_path).read_text(encoding="utf-8")
    assert nasty not in page
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in page


def test_many_layers_figure_grows(tmp_path: Path) -> None:
    data = full_data()
    base = data.layers[0]
    data.layers = [replace(base, node=f"/n/{i}") for i in range(120)]
    write_report(data, tmp_path)
    png = (tmp_path / "layers.png").read_bytes()
    height = int.from_bytes(png[20:24], "big")  # IHDR height
    assert height > 120 * 15  # at least ~15 px per row keeps labels readable


def test_summary_sets_predictions_beside_measurements(tmp_path):
    page = write_report(full_data(), tmp_path).read_text()
    assert "9.30 ms measured median" in page and "predicted 8.70 ms" in page
    assert "Optimum predicted by the cost model: 8.70 ms; that plan measured 9.30 ms end to end" in page


def test_pareto_caption_mentions_a_star_only_when_one_is_drawn(tmp_path):
    data = full_data()
    assert "the star is the plan that was picked" in write_report(data, tmp_path / "a").read_text()
    for p in data.pareto:
        p.chosen = False
    page = write_report(data, tmp_path / "b").read_text()
    assert "star is" not in page and "no point is starred" in page
