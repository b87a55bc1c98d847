"""Precision under an accuracy budget, end to end on a real (small) labelled data set and a trained net:
scikit-learn's digits and a CNN trained in seconds (tests/digits_data.py)."""

import json
from dataclasses import replace

import numpy as np
import pytest

from edgetune.cli import main
from edgetune.graph.onnx_export import to_onnx
from edgetune.planning import precision as precision_mod
from edgetune.planning.precision import whole_graph_plan
from edgetune.quant import QuantSpec, calibrate, equalize, quantisable_nodes, quantize
from edgetune.quant.spec import TensorRange
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import Plan
from edgetune.runtime.quantized import segment_variant
from edgetune.user_model import open_model
from tests.digits_data import digits_arrays, held_out, model_inputs, train_digits_cnn, write_digits

BUDGET = 1.0


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    return train_digits_cnn(root), write_digits(root / "data", "held_out"), root


def _run(capsys, *args):
    rc = main([*args, "--json"])
    out = capsys.readouterr()
    return rc, out


def _tune(capsys, digits, tmp_path, *extra):
    model, data, root = digits
    rc, out = _run(capsys, "tune", str(model), "--data", str(data), "--mean", "0.5", "--std", "0.5",
                   "--calibration-samples", "100", "--evaluation-samples", "300", "--max-accuracy-drop", str(BUDGET),
                   "--db", str(root / "db.sqlite"), "--threads", "1", "--quick", "--budget", "50",
                   "--compare-time", "1", "--out", str(tmp_path / "run"), "--no-screenshot", *extra)
    assert rc == 0, out.err
    return json.loads(out.out)


def test_whole_graph_int8_plan_runs_saves_and_reloads(digits, tmp_path):
    """A whole-graph int8 plan on ONNX Runtime: close to fp32 on real digits, and the same after a round trip
    through plan.json (the quantisation travels in the plan)."""
    model, _, _ = digits
    src = open_model(str(model))
    graph = src.graph
    images, _ = digits_arrays()
    xs = model_inputs(images[held_out(len(images))][:40])
    feeds = [{graph.inputs[0]: x[None]} for x in xs]
    spec = calibrate(to_onnx(graph), feeds[:20])
    nodes = quantisable_nodes(to_onnx(graph))
    plan = whole_graph_plan(graph, "onnxruntime", 1, nodes, "fp32", spec)
    ex, ref = Executor(graph, plan, check=False), Executor(graph, Plan.builtin("reference", graph), check=False)
    out = graph.outputs[0]
    got = np.concatenate([ex.run(f)[out] for f in feeds])
    want = np.concatenate([ref.run(f)[out] for f in feeds])
    assert ex.kernels and "int8" in {p for _, p in ex.kernels.values()}
    sqnr = 10 * np.log10(np.sum(want ** 2) / np.sum((got - want) ** 2))
    assert sqnr > 15 and (got.argmax(1) == want.argmax(1)).mean() > 0.9
    back = Plan.load(plan.save(tmp_path / "p.json"))
    again = Executor(graph, back, check=False)
    np.testing.assert_array_equal(np.concatenate([again.run(f)[out] for f in feeds]), got)
    assert ex.memory().weight_bytes < Executor(graph, whole_graph_plan(graph, "onnxruntime", 1, [], "fp32", None),
                                               check=False).memory().weight_bytes  # int8 weights at their size


def test_tune_with_data_honours_the_budget(capsys, digits, tmp_path):
    res = _tune(capsys, digits, tmp_path)
    p = res["precision"]
    assert p["metric"] == "top-1" and p["reference_value"] > 90 and 2 <= p["full_evaluations"] <= 20
    assert p["points"] and all(pt["drop"] <= BUDGET for pt in p["points"] if pt["meets_budget"])
    chosen = p["chosen_accuracy"]
    assert chosen["meets_budget"] and chosen["drop"] <= BUDGET
    assert {"onnxruntime int8"} <= set(p["peers"]) and "calibration 100 + evaluation 300" in p["data"]
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert plan["meta"]["accuracy"]["drop"] <= BUDGET and plan["meta"]["accuracy"]["budget_points"] == BUDGET
    assert "Precision under the accuracy budget" in (tmp_path / "run" / "report.html").read_text()


def test_a_calibration_that_ruins_int8_gives_an_fp32_plan(capsys, digits, tmp_path, monkeypatch):
    """Ranges shrunk to 1 % clip every activation: no int8 configuration meets the budget, so the plan is
    fp32 and the search says so; every configuration it evaluated is reported with its measured drop."""
    real = precision_mod.calibrate

    def ruined(model, feeds, **kw):
        spec = real(model, feeds, **kw)
        tensors = {k: TensorRange(r.lo * 0.01, r.hi * 0.01, r.method) for k, r in spec.tensors.items()}
        return QuantSpec(tensors, spec.percentile, spec.samples, spec.reduce_range)

    monkeypatch.setattr(precision_mod, "calibrate", ruined)
    res = _tune(capsys, digits, tmp_path)
    p = res["precision"]
    assert p["chosen"] is None and res["precision"]["chosen_accuracy"]["drop"] == 0.0
    assert any(not pt["meets_budget"] for pt in p["points"]) and p["full_evaluations"] <= 20
    assert all(pt["drop"] <= BUDGET for pt in p["points"] if pt["meets_budget"])


@pytest.mark.parametrize(("args", "needle"), [
    (["--max-accuracy-drop", "-1"], "--max-accuracy-drop"),
    (["--data", "/no/such/folder"], "/no/such/folder"),
    (["--calibration-samples", "5000"], "samples"),
])
def test_bad_data_input_is_one_line(capsys, digits, args, needle):
    model, data, _ = digits
    full = ["tune", str(model), "--mean", "0.5", "--std", "0.5", "--no-screenshot"]
    if "--data" not in args:
        full += ["--data", str(data)]
    rc, out = _run(capsys, *full, *args)
    assert rc == 2 and needle in out.err and len(out.err.strip().splitlines()) == 1, out.err


def test_labels_outside_the_model_classes_are_refused(capsys, digits, tmp_path):
    model, _, _ = digits
    bad = tmp_path / "eleven"
    for k in range(11):  # 11 class folders for a 10-class model
        (bad / f"c{k:02d}").mkdir(parents=True)
        src = next((digits[1] / str(min(k, 9))).iterdir())
        (bad / f"c{k:02d}" / src.name).write_bytes(src.read_bytes())
    rc, out = _run(capsys, "tune", str(model), "--data", str(bad), "--mean", "0.5", "--std", "0.5", "--no-screenshot")
    assert rc == 2 and len(out.err.strip().splitlines()) == 1 and "class" in out.err, out.err


def test_an_equalised_spec_quantises_the_equalised_model_and_travels_in_the_plan(digits, tmp_path):
    """Cross-layer equalisation as a spec option: the ranges are the equalised model's, every variant
    equalises its subgraph before quantising (the same float function), and the plan keeps the option."""
    model, _, _ = digits
    graph = open_model(str(model)).graph
    images, _ = digits_arrays()
    feeds = [{graph.inputs[0]: x[None]} for x in model_inputs(images[held_out(len(images))][:40])]
    float_model = to_onnx(graph)
    spec = replace(calibrate(equalize(float_model, 20), feeds[:20]), equalize_iterations=20)
    nodes = quantisable_nodes(float_model)
    plan = whole_graph_plan(graph, "onnxruntime", 1, nodes, "fp32", spec)
    rewritten = segment_variant(plan, plan.segments[0]).rewrite(float_model)
    plain = quantize(float_model, replace(spec, equalize_iterations=0), nodes)
    weights = {t.name: t.raw_data for t in plain.graph.initializer}
    assert any(weights.get(t.name) != t.raw_data for t in rewritten.graph.initializer)  # equalised first
    ex = Executor(graph, plan, check=False)
    ref = Executor(graph, Plan.builtin("reference", graph), check=False)
    out = graph.outputs[0]
    got, want = (np.concatenate([e.run(f)[out] for f in feeds]) for e in (ex, ref))
    assert (got.argmax(1) == want.argmax(1)).mean() > 0.9
    back = Plan.load(plan.save(tmp_path / "p.json"))
    assert QuantSpec.from_dict(back.quantization).equalize_iterations == 20
