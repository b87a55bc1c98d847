"""The peers edgetune compares itself with: OpenVINO's three (f32, default precision, int8 QDQ) give the
reference's outputs within their precision's tolerance and say which precision they ran at; a peer's
memory measured in a fresh process is what running it costs; the verdict holds plans to fp32 peers only."""

import io

import numpy as np
import pytest
from rich.console import Console

from edgetune.device.cpu import features
from edgetune.errors import EdgetuneError
from edgetune.graph.reference import default_feeds, run_graph
from edgetune.measure import compare as compare_mod
from edgetune.measure.db import ProfileDB
from edgetune.measure.peer_memory import measure_peer_memory
from edgetune.peers import runtimes
from edgetune.peers.runtimes import OV_DEFAULT, OV_F32, OV_INT8, build_peers, peer_outputs
from edgetune.planning.verdict import FP32_PEERS, peer_verdict
from edgetune.user_model import open_model

# max|out - ref| / max|ref| over the outputs, per precision the peer computes in
TOLERANCE = {"fp32": 1e-4, "bf16": 0.05, "fp16": 0.05, "int8": 0.1}

needs_openvino = pytest.mark.skipif(runtimes.openvino_unavailable() is not None,
                                    reason=f"OpenVINO unusable here: {runtimes.openvino_unavailable()}")


@pytest.fixture(scope="module")
def mnist():
    return open_model("mnist_cnn")


@pytest.fixture(scope="module")
def mnist_peers(mnist):
    feeds = default_feeds(mnist.graph)
    return {p.name: p for p in build_peers(mnist.graph, mnist.onnx_model, feeds, 1, int8=True)}, feeds


def rel_error(outs, ref):
    return max(float(np.max(np.abs(o - r)) / max(float(np.max(np.abs(r))), 1e-12))
               for o, r in zip(outs, ref, strict=True))


@needs_openvino
@pytest.mark.parametrize("name", [OV_F32, OV_DEFAULT, OV_INT8])
def test_openvino_peers_match_the_reference(mnist, mnist_peers, name):
    peers, feeds = mnist_peers
    peer = peers[name]
    ref = list(run_graph(mnist.graph, feeds).values())
    outs = peer_outputs(peer.fn())
    assert [o.shape for o in outs] == [r.shape for r in ref]
    tol = TOLERANCE["int8" if "int8" in peer.precision else peer.precision]
    assert rel_error(outs, ref) <= tol, (name, peer.precision)
    assert peer.model is not None and peer.note


@needs_openvino
def test_openvino_reports_the_precision_it_ran_at(mnist_peers):
    peers, _ = mnist_peers
    assert peers[OV_F32].inference_precision == "f32" and peers[OV_F32].precision == "fp32"
    default = peers[OV_DEFAULT].inference_precision
    assert default in {"f32", "bf16", "f16"}
    assert peers[OV_DEFAULT].precision == {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}[default]
    f = features()
    if not (f.get("BF16") or f.get("FP16")):
        assert default == "f32"
    assert peers[OV_DEFAULT].compiled_model.get_property("INFERENCE_PRECISION_HINT").get_type_name() == default
    # the int8 peer runs the ORT int8 peer's quantised model, the rest at the default precision
    assert peers[OV_INT8].model is peers[runtimes.ORT_INT8].model
    assert peers[OV_INT8].precision == ("int8" if default == "f32" else f"int8+{peers[OV_DEFAULT].precision}")


def test_without_openvino_its_peers_are_skipped_with_one_line(mnist, monkeypatch):
    monkeypatch.setattr(runtimes, "openvino_unavailable", lambda: "openvino is not installed (test)")
    skipped = []
    peers = build_peers(mnist.graph, mnist.onnx_model, default_feeds(mnist.graph), 1, int8=False, skipped=skipped)
    assert [p.name for p in peers] == [runtimes.ORT_FP32]
    assert skipped == ["OpenVINO peers skipped: openvino is not installed (test)"]


def test_peer_memory_in_a_fresh_process_is_more_than_the_weights(mnist):
    weights = sum(a.nbytes for a in mnist.graph.initializers.values())
    r = measure_peer_memory(runtimes.ORT_FP32, "mnist_cnn", 1)
    m = r["measured"]
    assert m["total"] > weights > 0 and m["static"] > 0
    assert m["total"] == m["static"] + m["transient"] and r["precision"] == "fp32"
    with pytest.raises(EdgetuneError, match="unknown peer"):
        measure_peer_memory("tvm", "mnist_cnn", 1)


@needs_openvino
def test_openvino_peer_memory_in_a_fresh_process(mnist):
    r = measure_peer_memory(OV_F32, "mnist_cnn", 1, feeds=default_feeds(mnist.graph))
    assert r["measured"]["total"] > 0 and r["inference_precision"] == "f32"


def _row(variant, ms, kind="peer", precision="fp32"):
    return {"variant": variant, "median_ms": ms, "spread": 0.01, "kind": kind, "precision": precision}


def test_verdict_bars_are_fp32_peers_of_every_runtime():
    assert "openvino f32" in FP32_PEERS and "openvino default" not in FP32_PEERS
    best = type("C", (), {"name": "exact"})()
    plan = _row("exact", 2.0, "plan")
    rows = [plan, _row("onnxruntime fp32", 3.0), _row("openvino f32", 2.5),
            _row("openvino default", 1.0, "peer", "bf16"), _row("onnxruntime int8", 0.8, "peer", "int8")]
    v = peer_verdict(best, plan, rows)
    assert v["best_peer"] == "openvino f32" and v["speedup_vs_best_peer"] == pytest.approx(1.25)
    assert "faster than the fastest peer at fp32" in v["statement"]
    # the faster bf16 and int8 peers are named, as what they are, not as the bar
    tail = v["statement"].split("Peers at other numerics, not fp32 bars: ")[1]
    assert tail.startswith("onnxruntime int8 (int8) 0.80 ms, openvino default (bf16) 1.00 ms")


def test_a_warm_comparison_reads_the_peers_memory_from_the_db_instead_of_measuring_it_again(mnist, tmp_path,
                                                                                           monkeypatch):
    """The peers' fresh-process memory is kept per model structure, peer and threads: the second comparison
    of the same model starts no process for it and reports the same figures; another thread count measures."""
    calls: list[tuple[str, int]] = []

    def fake_measure(peer, model, threads, **kw):
        calls.append((peer, threads))
        return {"measured": {"static": 1000 + len(calls), "transient": 10, "total": 1010 + len(calls)}}

    monkeypatch.setattr(compare_mod, "measure_peer_memory", fake_measure)
    console = Console(file=io.StringIO())

    def memories(threads):
        rows = compare_mod.compare(mnist, {}, threads=threads, time_cap=0.2, console=console, int8=False, db=db)
        return {r["variant"]: r["memory"]["fresh_process"] for r in rows if r["kind"] == "peer"}

    with ProfileDB(tmp_path / "p.db") as db:
        first = memories(1)
        n = len(calls)
        assert n == len(first) >= 1 and db.count()["peer_memory"] == n
        assert memories(1) == first and len(calls) == n  # warm: from the DB, no new process
        memories(2)
        assert len(calls) == 2 * n and {t for _, t in calls[n:]} == {2}
