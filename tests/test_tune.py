"""The main job end to end on a small model: profile -> search -> measured plan -> plan.json + report."""

import json
import sqlite3

import pytest

from edgetune.cli import main
from edgetune.peers import runtimes as peers
from edgetune.runtime.plan import Plan
from tests.faulty_primitives import WRONG, FivePercentWrong
from tests.registered import registered


@pytest.fixture
def wrong_conv():
    with registered(FivePercentWrong()):
        yield WRONG


def run_json(capsys, *args):
    rc = main([*args, "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return json.loads(out.out)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    return str(tmp_path_factory.mktemp("db") / "profile.sqlite")


def test_profile_then_cached(capsys, db_path, wrong_conv):
    first = run_json(capsys, "profile", "mnist_cnn", "--db", db_path, "--threads", "1", "--time-cap", "0.05")
    assert first["new_measurements"] > 20 and first["db"] == db_path
    # a primitive 5 % off is excluded by verification, on every conv node, with its error as the reason
    wrong = {k: v for k, v in first["excluded"].items() if k.endswith("/" + wrong_conv)}
    assert len(wrong) == 2 and all("error" in v for v in wrong.values()), first["excluded"]
    again = run_json(capsys, "profile", "mnist_cnn", "--db", db_path, "--threads", "1")
    assert again["new_measurements"] == 0 and again["cached"] >= first["new_measurements"]
    # an interrupted profile resumes: a lost timing (verification kept) is measured again, and only it
    with sqlite3.connect(db_path) as con:
        con.execute("DELETE FROM nodes WHERE rowid = (SELECT MIN(rowid) FROM nodes)")
    resumed = run_json(capsys, "profile", "mnist_cnn", "--db", db_path, "--threads", "1")
    assert resumed["new_measurements"] == 1


def test_tune_writes_plan_and_report(capsys, db_path, tmp_path):
    out = tmp_path / "run"
    res = run_json(capsys, "tune", "mnist_cnn", "--db", db_path, "--threads", "1", "--budget", "200",
                   "--out", str(out), "--compare-time", "1", "--quick")
    assert res["plan"] == str(out / "plan.json") and (out / "report.html").is_file()
    lat = res["latency_ms"]
    assert lat["plan"] > 0 and lat["blas"] > 0 and lat["onnxruntime"] > 0
    s = res["search"]
    assert s["strategy"] == "qlearning" and s["evaluations"] == 200
    assert s["optimum_ms"] <= s["predicted_ms"] + 1e-9  # nothing beats the exact optimum on its own model
    plan = Plan.load(res["plan"])
    assert plan.model == "mnist_cnn" and len(plan.choices) == 6
    v = res["verdict"]
    assert v["best_peer"] in {"onnxruntime fp32", "openvino f32", "torch eager NCHW", "torch eager channels_last"}
    assert v["speedup_vs_best_peer"] == pytest.approx(v["best_peer_ms"] / lat["plan"])
    assert res["executor"]["steps"] >= 1 and res["executor"]["per_step_us"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["device"]["id"] == res["device"]["id"] and summary["device"]["features"]
    assert list(summary) == [k for k in res if k != "report_check"]  # one TuneResult, written and printed
    html = (out / "report.html").read_text()
    assert "mnist_cnn" in html and html.count("data:image/png;base64,") >= 4
    assert html.count('class="verdict"') == 1 and "executor&#x27;s own work" in html
    ran = run_json(capsys, "run", "mnist_cnn", "--plan", res["plan"], "--time-cap", "0.2")
    assert ran["max_rel_error_vs_reference"] < 1e-3


@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--strategy", "nope", "unknown strategy 'nope'"),
    ("--objective", "speed", "unknown objective 'speed'"),
    ("--budget", "0", "--budget must be at least 1"),
    ("--precisions", "fp8", "--precisions: unknown fp8"),
])
def test_tune_rejects_bad_flags(capsys, flag, value, needle):
    rc = main(["tune", "mnist_cnn", flag, value])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_bench_side_by_side(capsys):
    res = run_json(capsys, "bench", "mnist_cnn", "--time-cap", "1", "--threads", "1")
    names = [r["variant"] for r in res["rows"]]
    assert names[0].startswith("edgetune blas")
    assert {"onnxruntime fp32", "onnxruntime int8", "torch eager NCHW", "torch eager channels_last"} <= set(names)
    if peers.openvino_unavailable() is None:
        assert {"openvino f32", "openvino default", "openvino int8"} <= set(names)
    assert all(r["median_ms"] > 0 and r["runs"] >= 5 for r in res["rows"])
    assert res["rows"][0]["speedup_vs_blas"] == pytest.approx(1.0)
    rows = {r["variant"]: r for r in res["rows"]}
    # every row, plan or peer, has its precision and its resident memory measured in a fresh process
    assert all(r["precision"] and r["memory"]["fresh_process"]["total_bytes"] > 0 for r in res["rows"]), rows
    assert rows["onnxruntime int8"]["precision"] == "int8" and not rows["onnxruntime int8"]["fp32_bar"]
    assert rows["onnxruntime fp32"]["fp32_bar"] and rows[names[0]]["kind"] == "plan"
    assert rows["onnxruntime fp32"]["memory"]["fresh_process"]["total_bytes"] > rows["onnxruntime fp32"]["memory"][
        "weight_bytes"]
    if "openvino f32" in rows:
        assert rows["openvino f32"]["fp32_bar"] and not rows["openvino default"]["fp32_bar"]
        assert rows["openvino default"]["memory"]["inference_precision"] in {"f32", "bf16", "f16"}


def test_tune_closes_the_loop_on_a_db_whose_costs_are_off(capsys, db_path, tmp_path):
    """A profile whose every time reads 30 % of the truth makes the chosen plan's prediction disagree with its
    measurement: the loop fits the boundary costs to the measured plans, writes them back and searches again."""
    skewed = tmp_path / "skewed.sqlite"
    with sqlite3.connect(db_path) as src, sqlite3.connect(skewed) as dst:
        src.backup(dst)  # the DB runs in WAL mode: a file copy could miss what the log still holds
    with sqlite3.connect(skewed) as con:
        con.execute("UPDATE nodes SET median_ms = median_ms * 0.3")
        con.execute("UPDATE converters SET median_ms = median_ms * 0.3")
    res = run_json(capsys, "tune", "mnist_cnn", "--db", str(skewed), "--threads", "1", "--budget", "50",
                   "--out", str(tmp_path / "run"), "--compare-time", "1", "--quick")
    first = res["loop"][0]
    assert first["round"] == 1 and first["measured_ms"] > first["predicted_ms"] / 0.3 * 0.5  # off by ~3x
    fit = first["fit"]
    assert fit["rms_after_ms"] < fit["rms_before_ms"] and fit["plans"] >= 2
    assert fit["after_ms"]["run"] > 0  # the missing time became the fitted per-inference cost
    assert len(res["loop"]) >= 2 or "stop" in first
    with sqlite3.connect(skewed) as con:
        stored = dict(con.execute("SELECT converter, median_ms FROM converters WHERE converter LIKE 'observed:%'"))
    last = [r["fit"] for r in res["loop"] if "fit" in r][-1]  # the DB keeps the last round's fit
    offset = stored["observed:run"] - stored.get("observed:run-credit", 0.0)
    assert offset == pytest.approx(last["after_ms"]["run"])
    # the refitted model predicts the chosen plan far closer than the skewed profile did
    chosen = next(c for c in res["candidates"] if c["chosen"])
    assert abs(chosen["predicted_ms"] - chosen["measured_ms"]) < abs(first["predicted_ms"] - first["measured_ms"])


def test_on_a_cpu_with_clusters_each_placement_is_measured_and_the_plan_keeps_the_fastest(
        capsys, db_path, tmp_path, monkeypatch):
    """Two one-core "clusters" stand in for big.LITTLE (this test's CPU may have one kind of core): the plan is
    timed on all cores and on each cluster, and plan.json holds the placement chosen, thread counts capped."""
    from edgetune.device.placement import usable_cpus
    from edgetune.planning import loop

    cpus = sorted(usable_cpus())
    if len(cpus) < 2:
        pytest.skip(f"needs two usable cpus to stand in for two clusters, this process has {cpus}")
    clusters = [{"core": "Cortex-A55", "cpus": [cpus[0]], "capacity": 400},
                {"core": "Cortex-A76", "cpus": [cpus[1]], "capacity": 1024}]
    monkeypatch.setattr(loop, "fingerprint", lambda: {"clusters": clusters})
    out = tmp_path / "run"
    res = run_json(capsys, "tune", "mnist_cnn", "--db", db_path, "--threads", "1", "--budget", "50",
                   "--out", str(out), "--compare-time", "1", "--quick")
    rows = res["placement"]["rows"]
    assert [r["label"] for r in rows] == [f"all {len(cpus)} cores", "1x Cortex-A55", "1x Cortex-A76"]
    assert all(r["median_ms"] > 0 for r in rows) and res["placement"]["chosen"] in {r["label"] for r in rows}
    plan = Plan.load(res["plan"])
    chosen = next(r for r in rows if r["label"] == res["placement"]["chosen"])
    if res["placement"]["placed"]:
        assert plan.placement == {"label": chosen["label"], "cpus": chosen["cpus"]}
        assert all(c.threads == 1 for c in plan.choices.values())
    else:
        assert plan.placement is None
    ran = run_json(capsys, "run", "mnist_cnn", "--plan", res["plan"], "--time-cap", "0.2")
    assert ran["max_rel_error_vs_reference"] < 1e-3
