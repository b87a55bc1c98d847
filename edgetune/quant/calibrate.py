"""Calibration: the float activation statistics of an ONNX model over feeds, and the `QuantSpec` they give.

ONNX Runtime runs the float model once per feed with every tensor a variant may quantise added as an
output (`ModelIndex.calibration_tensors`); each is folded into a streaming `TensorStats` and dropped, so
memory does not grow with the number of samples. Then each tensor gets its three candidate ranges and
the one with the least expected quantisation MSE (`ranges`). ONNX Runtime's own calibrators compute one
method per run and keep every batch's outputs until the end, so they are not used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import onnx
from onnx import helper

from edgetune.errors import EdgetuneError
from edgetune.kernels.libraries.onnxruntime.session import session
from edgetune.quant import ranges
from edgetune.quant.histogram import DEFAULT_BINS, TensorStats
from edgetune.quant.maths import u8s8_saturates
from edgetune.quant.model_index import ModelIndex
from edgetune.quant.spec import QuantSpec, TensorRange


def with_outputs(model: onnx.ModelProto, tensors: Iterable[str]) -> onnx.ModelProto:
    """A copy of `model` that also outputs `tensors` (float32; those already outputs are not repeated)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    have = {o.name for o in out.graph.output}
    out.graph.output.extend(helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None)
                            for t in tensors if t not in have)
    return out


def collect_stats(model: onnx.ModelProto, feeds: Iterable[Mapping[str, np.ndarray]], tensors: list[str] | None = None,
                  threads: int = 1, bins: int = DEFAULT_BINS) -> tuple[dict[str, TensorStats], int]:
    """({tensor: statistics}, number of feeds) over `feeds`, for `tensors` (default: every tensor a
    quantised variant can need)."""
    if tensors is None:
        tensors = ModelIndex(model).calibration_tensors()
    stats = {t: TensorStats(bins) for t in tensors}
    sess = session(with_outputs(model, tensors), threads, "basic")
    names = [o.name for o in sess.get_outputs()]
    wanted = [(k, stats[n]) for k, n in enumerate(names) if n in stats]
    inputs = {i.name for i in sess.get_inputs()}
    n = 0
    for feed in feeds:
        missing = inputs - set(feed)
        if missing:
            raise EdgetuneError(f"calibration feed {n}: no value for input {sorted(missing)[0]!r}")
        outs = sess.run(None, {k: v for k, v in feed.items() if k in inputs})
        for k, st in wanted:
            st.update(outs[k])
        del outs
        n += 1
    if n == 0:
        raise EdgetuneError("calibration needs at least one feed")
    return stats, n


def tensor_range(stats: TensorStats, percentile: float = ranges.DEFAULT_PERCENTILE,
                 bounds: tuple[float, float] = (-np.inf, np.inf)) -> TensorRange:
    """One tensor's candidates, their expected MSE and the chosen method; `bounds` clamp every range
    (an activation folded into the range, Clip(0, 6): never wider than the clip)."""
    if not stats.seen:
        return TensorRange(0.0, 1.0, "minmax", {m: (0.0, 1.0) for m in ranges.METHODS})
    cands = {m: (max(lo, bounds[0]), min(hi, bounds[1]))
             for m, (lo, hi) in ranges.candidate_ranges(stats, percentile).items()}
    errors = {m: ranges.histogram_mse(stats, lo, hi) for m, (lo, hi) in cands.items()}
    method = ranges.choose(errors)
    lo, hi = cands[method]
    return TensorRange(lo, hi, method, cands, errors)


def calibrate(model: onnx.ModelProto, feeds: Iterable[Mapping[str, np.ndarray]], *,
              percentile: float = ranges.DEFAULT_PERCENTILE, reduce_range: bool | None = None, threads: int = 1,
              bins: int = DEFAULT_BINS) -> QuantSpec:
    """The `QuantSpec` of `model` (a float ONNX model, e.g. `to_onnx(graph)`) calibrated on `feeds`
    (dicts input name -> array, streamed once). `reduce_range` (7-bit weights) defaults to this CPU's
    need (`maths.u8s8_saturates`); the spec records it, so a plan's variants are rebuilt alike."""
    index = ModelIndex(model)
    stats, n = collect_stats(model, feeds, index.calibration_tensors(), threads, bins)
    bounds = {u.output: u.output_bounds for u in index.units.values() if u.folded is not None}
    tensors = {t: tensor_range(st, percentile, bounds.get(t, (-np.inf, np.inf))) for t, st in stats.items()}
    if reduce_range is None:
        reduce_range = u8s8_saturates()
    return QuantSpec(tensors, percentile, n, bool(reduce_range))
