"""Per-node sensitivity (edgetune.quant.sensitivity): one finite score per node and mode, equal to running
the whole variant, and a badly ranged node ranked the most sensitive."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgetune.graph import load_graph, to_onnx
from edgetune.quant import Quantizer, TensorRange, calibrate, node_sensitivity, quantisable_nodes
from edgetune.quant.calibrate import with_outputs
from edgetune.quant.metrics import output_nmse
from edgetune.quant.sensitivity import cut_model, run_model
from tests.test_quant_qdq import feeds, small_net


@pytest.fixture(scope="module")
def model_and_spec():
    model = to_onnx(load_graph(small_net(), name="small"))
    return model, calibrate(model, feeds(8, 0))


def test_one_finite_score_per_node_equal_to_the_whole_variant(model_and_spec) -> None:
    model, spec = model_and_spec
    ranking = feeds(3, 50)
    report = node_sensitivity(model, spec, ranking)
    names = quantisable_nodes(model)
    assert [s.node for s in report.nodes] == names
    for s in report.nodes:
        for v in (s.only_sqnr_db, s.only_nmse, s.all_but_sqnr_db, s.all_but_nmse):
            assert v is not None and np.isfinite(v)
    q = Quantizer(model, spec)
    ref = run_model(model, ranking)
    assert report.all_int8_nmse == pytest.approx(output_nmse(ref, run_model(q.build(), ranking)), rel=1e-6)
    by_name = {s.node: s for s in report.nodes}
    for name in ("c2", "cat", "fc"):  # the cut variants score exactly as the whole ones
        whole_only = output_nmse(ref, run_model(q.build([name]), ranking))
        whole_all_but = output_nmse(ref, run_model(q.build([n for n in names if n != name]), ranking))
        assert by_name[name].only_nmse == pytest.approx(whole_only, rel=1e-3, abs=1e-12)
        assert by_name[name].all_but_nmse == pytest.approx(whole_all_but, rel=1e-3, abs=1e-12)
    only = node_sensitivity(model, spec, ranking, ["c4b", "add"], modes=("only",))
    assert [s.node for s in only.nodes] == ["c4b", "add"] and only.nodes[0].all_but_nmse is None


def test_a_badly_ranged_node_is_the_most_sensitive(model_and_spec) -> None:
    model, spec = model_and_spec
    bad = dataclasses.replace(spec, tensors={**spec.tensors, "x": TensorRange(-0.05, 0.05, "minmax")})
    report = node_sensitivity(model, bad, feeds(2, 50))  # c1's input clipped to +-0.05: c1 alone reads x
    assert report.most_sensitive("only")[0] == "c1"
    assert report.most_sensitive("all_but")[0] == "c1"
    scores = {s.node: s.only_sqnr_db for s in report.nodes}
    assert scores["c1"] < min(v for k, v in scores.items() if k != "c1") - 10.0


def test_cut_model_keeps_what_the_outputs_need(model_and_spec) -> None:
    model, _ = model_and_spec
    full = run_model(model, feeds(1, 7))
    inner = run_model(with_outputs(model, ["cat"]), feeds(1, 7))[0][1]
    cut = cut_model(model, {"cat": inner})
    assert [i.name for i in cut.graph.input] == ["cat"]
    assert {n.name for n in cut.graph.node} == {"c5", "c5_relu", "gap", "flat", "fc"}
    np.testing.assert_allclose(run_model(cut, [{"cat": inner}])[0][0], full[0][0], rtol=1e-5, atol=1e-6)
