"""Calibration (edgetune.quant.histogram, ranges, calibrate, spec): streaming statistics, the three range
methods, the per-tensor choice by expected MSE, and the spec's JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from edgetune.errors import EdgetuneError
from edgetune.graph import load_graph, to_onnx
from edgetune.quant import QuantSpec, calibrate, ranges
from edgetune.quant.calibrate import collect_stats, tensor_range
from edgetune.quant.histogram import TensorStats
from edgetune.quant.model_index import ModelIndex
from tests.test_quant_qdq import feeds, small_net


def _stats(x: np.ndarray, pieces: int = 1, bins: int = 2048) -> TensorStats:
    st = TensorStats(bins)
    for part in np.array_split(x, pieces):
        st.update(part)
    return st


def test_streaming_histogram_merges_exactly() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(5000) * 0.1, rng.standard_normal(5000) * 30.0]).astype(np.float32)
    whole = TensorStats(2048)
    whole.update(np.array([x[np.argmax(np.abs(x))]]))  # the final range from the start
    whole.update(x)
    streamed = _stats(x, pieces=10)
    assert streamed.half_width == whole.half_width and streamed.count == x.size
    assert streamed.lo == x.min() and streamed.hi == x.max()
    # the same bins up to the one extra value in `whole`
    diff = whole.hist - streamed.hist
    assert diff.sum() == 1 and diff.min() == 0
    assert _stats(np.array([0.0, 0.0, 1.0])).zeros == 2


def test_a_clipped_range_wins_on_a_heavy_tailed_tensor() -> None:
    x = np.random.default_rng(1).laplace(size=200_000).astype(np.float32)  # ACIQ's model of activations
    st = _stats(x, pieces=4, bins=8192)
    r = tensor_range(st)
    assert r.method in ("percentile", "entropy")
    assert r.hi - r.lo < 0.95 * (st.hi - st.lo)
    assert r.mse[r.method] < (1 - ranges.TIE_TOLERANCE) * r.mse["minmax"]
    for method in ("percentile", "entropy"):
        lo, hi = r.candidates[method]
        assert st.lo <= lo and hi <= st.hi and hi - lo < st.hi - st.lo


def test_minmax_wins_on_a_uniform_tensor() -> None:
    x = np.random.default_rng(2).uniform(-1.0, 3.0, 200_000).astype(np.float32)
    r = tensor_range(_stats(x, pieces=3, bins=8192))
    assert r.method == "minmax" and (r.lo, r.hi) == (float(x.min()), float(x.max()))


def test_percentile_of_known_data() -> None:
    x = np.arange(10_000, dtype=np.float32)  # 0..9999
    lo, hi = ranges.percentile_range(_stats(x, bins=8192), 99.0)
    assert hi == pytest.approx(9900, rel=0.01) and lo == pytest.approx(100, rel=0.1)


def test_histogram_mse_is_rounding_noise_inside_the_range() -> None:
    x = np.random.default_rng(3).uniform(0.5, 2.0, 100_000).astype(np.float32)
    st = _stats(x, bins=8192)
    scale = 2.0 / 255  # [0, 2]: zero is always in range
    assert ranges.histogram_mse(st, 0.0, 2.0) == pytest.approx(scale ** 2 / 12, rel=0.02)
    clipped = ranges.histogram_mse(st, 0.0, 1.0)  # 2/3 of the data clipped to 1, mean (x - 1)^2 there 1/3
    assert clipped == pytest.approx((2.0 / 3.0) * (1.0 / 3.0) + (1 / 255) ** 2 / 12 / 3, rel=0.02)


def test_exact_zeros_cost_nothing() -> None:
    x = np.concatenate([np.zeros(50_000), np.random.default_rng(4).uniform(0, 1, 50_000)]).astype(np.float32)
    st = _stats(x, bins=8192)
    assert ranges.histogram_mse(st, 0.0, 1.0) == pytest.approx(0.5 * (1 / 255) ** 2 / 12, rel=0.05)


def test_calibrate_covers_every_tensor_a_variant_needs() -> None:
    model = to_onnx(load_graph(small_net(), name="small"))
    spec = calibrate(model, feeds(4, 0), reduce_range=False)
    assert set(spec.tensors) == set(ModelIndex(model).calibration_tensors())
    assert "t1__pre" not in spec.tensors  # c1's pre-Relu output: folded, never quantised
    assert spec.samples == 4 and not spec.reduce_range
    assert spec.tensors["r2"].hi <= 6.0 and spec.tensors["r2"].lo == 0.0  # the Clip(0, 6) output
    assert all(set(r.candidates) == set(ranges.METHODS) for r in spec.tensors.values())


def test_stats_stream_every_feed() -> None:
    model = to_onnx(load_graph(small_net(), name="small"))
    stats, n = collect_stats(model, iter(feeds(3, 0)), ["x"])
    assert n == 3 and stats["x"].count == 3 * 3 * 16 * 16
    with pytest.raises(EdgetuneError, match="at least one feed"):
        collect_stats(model, [], ["x"])
    with pytest.raises(EdgetuneError, match="no value for input 'x'"):
        collect_stats(model, [{"y": np.zeros(1)}], ["x"])


def test_spec_json_round_trip() -> None:
    model = to_onnx(load_graph(small_net(), name="small"))
    spec = calibrate(model, feeds(2, 0))
    back = QuantSpec.from_json(spec.to_json())
    assert back == spec
    assert json.loads(spec.to_json())["tensors"]["r1"]["zero_point"] == 0
    assert back.qparams("x") == spec.qparams("x")
    switched = spec.with_method("r1", "percentile")
    assert switched.tensors["r1"].method == "percentile" and spec.tensors["r1"] is not switched.tensors["r1"]
    assert QuantSpec.from_json(switched.to_json()) == switched
    other = dataclasses.replace(spec, per_channel=False, reduce_range=True, bias_corrections={"c1": (0.5, -1e-7)})
    assert QuantSpec.from_json(other.to_json()) == other


@pytest.mark.parametrize("text, message", [
    ("not json", "not JSON"),
    ('{"edgetune_quant_spec": 99}', "format 99"),
    ('{"edgetune_quant_spec": 1, "percentile": 99.9, "samples": 1, "tensors": {"a": {"lo": 1, "hi": 0, '
     '"method": "minmax"}}}', "tensor 'a' has lo 1.0 > hi 0.0"),
    ('{"edgetune_quant_spec": 1, "percentile": 99.9, "samples": 1, "tensors": {"a": {"hi": 0}}}',
     "tensor 'a' is malformed"),
])
def test_bad_spec_is_a_one_line_error(text: str, message: str) -> None:
    with pytest.raises(EdgetuneError, match=message) as e:
        QuantSpec.from_json(text)
    assert "\n" not in str(e.value)
