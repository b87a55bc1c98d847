"""Cross-layer equalisation and bias correction (edgetune.quant.equalize): CLE keeps the float function and
rescues per-tensor int8 on badly scaled channels; bias correction removes the int8 output's mean shift."""

from __future__ import annotations

import dataclasses

import numpy as np
from onnx import helper, numpy_helper

from edgetune.quant import Quantizer, calibrate, quantize, sqnr_db
from edgetune.quant.equalize import bias_corrections, equalisable_pairs, equalize
from edgetune.quant.model_index import ModelIndex
from edgetune.quant.sensitivity import run_model
from tests.graph_cases import mk, vi


def _badly_scaled(act: str = "Relu", seed: int = 0, spread: float = 1.5):
    """c1 -> act -> c2 -> Relu -> depthwise dw -> c3; c1's output channels scaled by 10^-spread..10^spread
    and c2's input channels by the inverse (the same function as the balanced net)."""
    rng = np.random.default_rng(seed)
    f = 10.0 ** np.linspace(-spread, spread, 8)
    w1 = rng.standard_normal((8, 4, 3, 3)) * 0.3
    w2 = rng.standard_normal((8, 8, 3, 3)) * 0.15
    if act == "Relu":
        w1, w2 = w1 * f[:, None, None, None], w2 / f[None, :, None, None]
    b1 = 0.1 * rng.standard_normal(8) * (f if act == "Relu" else 1.0)
    inits = {"w1": w1, "b1": b1, "w2": w2, "b2": 0.1 * rng.standard_normal(8),
             "wd": rng.standard_normal((8, 1, 3, 3)) * 0.4 * f[:, None, None, None],
             "bd": 0.05 * rng.standard_normal(8) * f, "w3": rng.standard_normal((6, 8, 1, 1)) * 0.3,
             "b3": np.zeros(6), "lo": np.array(0.0), "hi": np.array(6.0)}
    inits = {k: np.asarray(v, np.float32) for k, v in inits.items()}
    first_act = helper.make_node("Relu", ["t1"], ["r1"], name="a1") if act == "Relu" else \
        helper.make_node("Clip", ["t1", "lo", "hi"], ["r1"], name="a1")
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["t1"], name="c1"), first_act,
        helper.make_node("Conv", ["r1", "w2", "b2"], ["t2"], name="c2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["t2"], ["r2"], name="a2"),
        helper.make_node("Conv", ["r2", "wd", "bd"], ["td"], name="dw", pads=[1, 1, 1, 1], group=8),
        helper.make_node("Conv", ["td", "w3", "b3"], ["y"], name="c3"),
    ]
    return mk(nodes, [vi("x", [1, 4, 12, 12])], [vi("y", [1, 6, 10, 10])], inits)


def _feeds(n: int, seed: int, mean: float = 0.0) -> list[dict[str, np.ndarray]]:
    return [{"x": (mean + np.random.default_rng(seed + k).standard_normal((1, 4, 12, 12))).astype(np.float32)}
            for k in range(n)]


def _first(outs):
    return [o[0] for o in outs]


def test_cle_finds_the_chain_and_keeps_the_function() -> None:
    model = _badly_scaled()
    pairs = equalisable_pairs(ModelIndex(model))
    names = [(ModelIndex(model).names[p.first], ModelIndex(model).names[p.second]) for p in pairs]
    assert names == [("c1", "c2"), ("c2", "dw"), ("dw", "c3")]
    eq = equalize(model)
    test = _feeds(3, 10)
    ref, out = _first(run_model(model, test)), _first(run_model(eq, test))
    for r, o in zip(ref, out, strict=True):
        assert np.max(np.abs(o - r)) <= 1e-4 * np.max(np.abs(r))
    spread = [_channel_spread(m, "w1") for m in (model, eq)]
    assert spread[0] > 100 and spread[1] < 0.1 * spread[0]


def _channel_spread(model, weight: str) -> float:
    """Largest over smallest per-output-channel max |w|."""
    w = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == weight))
    r = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
    return float(r.max() / r.min())


def test_cle_rescues_per_tensor_int8() -> None:
    model = _badly_scaled()
    calib, test = _feeds(6, 0), _feeds(3, 10)
    ref = _first(run_model(model, test))
    scores = []
    for m in (model, equalize(model)):
        spec = dataclasses.replace(calibrate(m, calib), per_channel=False)
        scores.append(sqnr_db(ref, _first(run_model(quantize(m, spec), test))))
    assert scores[1] > scores[0] + 6.0, scores


def test_clip_pairs_only_with_clip_as_relu() -> None:
    model = _badly_scaled(act="Clip")
    idx = ModelIndex(model)
    assert [idx.names[p.first] for p in equalisable_pairs(idx)] == ["c2", "dw"]
    assert [idx.names[p.first] for p in equalisable_pairs(idx, clip_as_relu=True)] == ["c1", "c2", "dw"]
    eq = equalize(model, clip_as_relu=True)
    assert [n.op_type for n in eq.graph.node].count("Clip") == 0


def test_bias_correction_removes_the_mean_shift() -> None:
    model = _badly_scaled(seed=3, spread=0.0)  # balanced, inputs of mean 2: weight errors shift outputs
    calib, test = _feeds(6, 0, mean=2.0), _feeds(3, 10, mean=2.0)
    spec = dataclasses.replace(calibrate(model, calib), per_channel=False, reduce_range=True)
    corrections = bias_corrections(model, calib, spec)
    assert set(corrections) == {"c1", "c2", "dw", "c3"} and all(len(v) in (6, 8) for v in corrections.values())
    corrected = dataclasses.replace(spec, bias_corrections=corrections)
    ref = np.stack(_first(run_model(model, test)))
    plain = np.stack(_first(run_model(quantize(model, spec), test)))
    fixed = np.stack(_first(run_model(quantize(model, corrected), test)))
    shift = lambda y: np.abs((y - ref).mean(axis=(0, 1, 3, 4))).mean()  # noqa: E731 - per channel, averaged
    assert shift(fixed) < 0.5 * shift(plain)
    assert sqnr_db(list(ref), list(fixed)) > sqnr_db(list(ref), list(plain))
    # a float node keeps its own bias: only c3 int8 uses only c3's correction
    only = Quantizer(model, corrected).build(["c3"])
    assert sum(n.op_type == "QuantizeLinear" for n in only.graph.node) == 2
