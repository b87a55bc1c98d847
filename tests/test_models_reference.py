"""Every zoo model: the reference executor matches ONNX Runtime, and the BLAS baseline matches the reference."""

import numpy as np
import onnxruntime as ort
import pytest

from edgetune import zoo
from edgetune.graph import load_graph
from edgetune.graph.reference import default_feeds, run_graph
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import Plan

MODELS = [e.name for e in zoo.list_models()]


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - ref)) / np.max(np.abs(ref)))


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    proto = zoo.build_onnx(request.param)
    graph = load_graph(proto, name=request.param)
    feeds = default_feeds(graph)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = dict(zip(graph.outputs, sess.run(None, feeds), strict=True))
    return graph, feeds, expected


def test_reference_matches_onnxruntime(model):
    graph, feeds, expected = model
    got = run_graph(graph, feeds)
    for name, want in expected.items():  # every output (the detector has boxes and scores)
        assert got[name].shape == want.shape
        assert rel_err(got[name], want) < 1e-4


def test_blas_baseline_matches_reference(model):
    graph, feeds, expected = model
    plan = Plan.builtin("blas", graph, threads=1)
    convs = [n for n in graph.nodes if n.op == "Conv"]
    assert convs and all(plan.choices[n.name].primitive == "conv.im2col.numpy" for n in convs)
    ex = Executor(graph, plan, check_input=feeds)
    assert ex.max_error is not None and ex.max_error < 1e-4
    got = ex.run(feeds)
    for name, want in expected.items():
        assert rel_err(got[name], want) < 1e-4
