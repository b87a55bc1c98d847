"""Thread pools and the executor's own cost: a plan that is one ONNX Runtime session runs with ORT's own
settings; sessions among other steps spin only while their run is in flight; the inner loop decides
thread changes at compile time; the executor's overhead is measurable; tune's verdict against peers."""

import numpy as np
import pytest

from edgetune import zoo
from edgetune.errors import EdgetuneError
from edgetune.graph import load_graph
from edgetune.graph.reference import default_feeds
from edgetune.kernels.segments import fusable_primitive
from edgetune.measure.overhead import executor_overhead
from edgetune.planning.candidates import WHOLE_GRAPH_ORT, Candidate
from edgetune.planning.verdict import peer_verdict
from edgetune.runtime.executor import Executor, Step, compile_program
from edgetune.runtime.plan import NodeChoice, Plan


@pytest.fixture(scope="module")
def resnet20():
    return load_graph(zoo.build_onnx("resnet20_cifar"), name="resnet20_cifar")


def all_ort(graph, threads=2):
    return Plan.for_graph(graph, {n.name: NodeChoice(fusable_primitive(n), threads) for n in graph.nodes})


def mixed(graph, every=3):
    """ORT everywhere but every `every`-th conv on numpy im2col: several ORT segments between numpy steps."""
    plan = all_ort(graph)
    convs = [n for n in graph.nodes if n.op == "Conv"]
    for n in convs[::every]:
        plan.choices[n.name] = NodeChoice("conv.im2col.numpy", 2)
    return plan


def config(kernel, key):
    try:
        return kernel.session.get_session_options().get_session_config_entry(key)
    except Exception:  # noqa: BLE001 - ORT raises when the entry was never set (its default applies)
        return None


def test_single_session_plan_runs_with_ort_defaults(resnet20):
    ex = Executor(resnet20, all_ort(resnet20))
    assert len(ex.steps) == 1 and ex.ort_spin == "on" and ex.libraries == {"onnxruntime"}
    kernel = ex.steps[0].fn
    # exactly what a user's default session has: no spinning overrides at all
    assert config(kernel, "session.intra_op.allow_spinning") is None
    assert config(kernel, "session.force_spinning_stop") is None
    assert kernel.session.get_session_options().intra_op_num_threads == 2


def test_sessions_among_other_steps_spin_only_during_their_run(resnet20):
    ex = Executor(resnet20, mixed(resnet20))
    sessions = [s.fn for s in ex.steps if s.primitive.startswith(("ort.segment", "conv.mlas", "op.ort"))]
    assert ex.ort_spin == "stop" and len(sessions) >= 3 and ex.libraries == {"onnxruntime", "numpy"}
    for k in sessions:
        assert config(k, "session.intra_op.allow_spinning") == "1"
        assert config(k, "session.force_spinning_stop") == "1"
    feeds = default_feeds(resnet20)
    ref = Executor(resnet20, Plan.builtin("reference", resnet20), check=False).run(feeds)
    out = resnet20.outputs[0]
    np.testing.assert_allclose(ex.run(feeds)[out], ref[out], rtol=1e-3, atol=1e-4)


def test_explicit_spin_mode_is_kept_and_saved(resnet20, tmp_path):
    plan = mixed(resnet20)
    plan.ort_spin = "off"
    ex = Executor(resnet20, Plan.load(plan.save(tmp_path / "p.json")))
    assert ex.ort_spin == "off"
    seg = next(s.fn for s in ex.steps if s.primitive.startswith("ort.segment"))
    assert config(seg, "session.intra_op.allow_spinning") == "0"
    assert Plan.load(tmp_path / "p.json").hash() != mixed(resnet20).hash()  # the mode is part of the plan


def test_unknown_spin_mode_is_refused(resnet20, tmp_path):
    p = tmp_path / "p.json"
    plan = all_ort(resnet20)
    plan.save(p)
    p.write_text(p.read_text().replace('"ort_spin": "auto"', '"ort_spin": "sometimes"'))
    with pytest.raises(EdgetuneError, match="ort_spin 'sometimes'"):
        Plan.load(p)


def test_program_sets_threads_only_where_they_change():
    steps = [Step("node", f"s{i}", lambda x: [x], [i], [i + 1], t, "noop") for i, t in enumerate([2, 2, 1, 1, 2])]
    assert [ins[4] for ins in compile_program(steps)] == [2, 0, 1, 0, 2]


def test_overhead_of_the_executor_is_measured_without_kernels(resnet20):
    ex = Executor(resnet20, Plan.builtin("blas", resnet20, 1), check=False)
    feeds = default_feeds(resnet20)
    stub = ex.stub_program(feeds)
    out = resnet20.outputs[0]
    np.testing.assert_array_equal(ex.run_program(stub, feeds)[out], ex.run(feeds)[out])
    o = executor_overhead(ex, feeds, time_cap_s=0.1)
    assert o["steps"] == len(ex.steps) and 0 < o["per_step_us"] < 1e3
    assert o["per_inference_us"] == pytest.approx(o["per_step_us"] * o["steps"])


def row(name, ms, spread=0.02):
    return {"variant": name, "median_ms": ms, "spread": spread}


def test_verdict_names_ort_alone_when_it_is_the_plan():
    best = Candidate(WHOLE_GRAPH_ORT, [], 1.0, 0)
    v = peer_verdict(best, row(WHOLE_GRAPH_ORT, 3.02), [row("onnxruntime fp32", 3.0), row("torch eager NCHW", 9.0)])
    assert v["within_noise"] and v["best_peer"] == "onnxruntime fp32"
    assert v["statement"].startswith("ONNX Runtime alone is the best plan on this CPU; edgetune's plan is that")


def test_verdict_says_plainly_when_a_peer_is_faster():
    best = Candidate("exact optimum (predicted)", [], 1.0, 0)
    v = peer_verdict(best, row("x", 4.0), [row("onnxruntime fp32", 3.0), row("torch eager NCHW", 2.0)])
    assert not v["within_noise"] and v["best_peer"] == "torch eager NCHW"
    assert "SLOWER than torch eager NCHW by 100 %" in v["statement"]
    faster = peer_verdict(best, row("x", 2.0), [row("onnxruntime fp32", 3.0)])
    assert "1.50x faster than the fastest peer" in faster["statement"]
