"""A tensor's quantisation range from its statistics, by three methods, and the per-tensor choice.

Why choose per tensor: no method is best everywhere (min/max is right for bounded tensors, clipping wins
on heavy tails, and for EfficientNet-B0 percentile accuracy is not even monotonic in the clip level,
Wu et al. 2020), so every tensor gets the range whose uint8 quantisation of its own histogram has the
least expected squared error. Methods:

- `minmax`: [min, max] seen.
- `percentile`: the two-sided p / (100 - p) percentiles of the histogram (ONNX Runtime's is symmetric on
  |x|; two-sided suits asymmetric uint8), inside [min, max].
- `entropy`: TensorRT's KL calibration on the histogram: the threshold T whose clipped distribution,
  merged into the quantiser's levels, keeps the least KL divergence from the original; 256 levels on
  [0, T] for a non-negative tensor, 128 per sign on |x| otherwise; the range is [-T, T] inside [min, max].

Expected MSE of a range (`histogram_mse`): values inside the quantiser's interval cost scale^2 / 12
(uniform rounding), except exact zeros (zero is exactly representable); values outside cost their squared
distance to the bound. Ties go to the simpler method: a clipped range must beat min/max by
`TIE_TOLERANCE` (the histogram is an estimate, and clipping risks outliers calibration did not see).
"""

from __future__ import annotations

import numpy as np

from edgetune.quant.histogram import TensorStats
from edgetune.quant.maths import UINT8_MAX, affine_qparams, representable

METHODS = ("minmax", "percentile", "entropy")
DEFAULT_PERCENTILE = 99.99
TIE_TOLERANCE = 0.01
_KL_CANDIDATES = 192  # thresholds tried by the entropy method (TensorRT tries every bin; these are spread evenly)


def minmax_range(stats: TensorStats) -> tuple[float, float]:
    return float(stats.lo), float(stats.hi)


def percentile_range(stats: TensorStats, percentile: float = DEFAULT_PERCENTILE) -> tuple[float, float]:
    """[q(100 - p), q(p)] from the histogram's CDF (linear within a bin), clamped to [min, max]."""
    if not 50.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be in (50, 100], got {percentile}")
    cdf = np.cumsum(stats.hist, dtype=np.float64)
    total = cdf[-1]
    edges = -stats.half_width + np.arange(stats.bins + 1) * stats.bin_width

    def quantile(q: float) -> float:
        target = q * total
        i = int(np.searchsorted(cdf, target, side="left"))
        i = min(i, stats.bins - 1)
        before = cdf[i - 1] if i else 0.0
        frac = (target - before) / stats.hist[i] if stats.hist[i] else 0.0
        return float(edges[i] + frac * stats.bin_width)

    lo = max(quantile(1.0 - percentile / 100.0), stats.lo)
    hi = min(quantile(percentile / 100.0), stats.hi)
    return float(lo), float(hi)


def _one_sided(stats: TensorStats) -> tuple[np.ndarray, int]:
    """The histogram over [0, R] to calibrate by entropy and its number of levels: the non-negative half
    with 256 levels when min >= 0, else |x| (both halves folded) with 128 levels."""
    half = stats.bins // 2
    pos = stats.hist[half:].astype(np.float64)
    if stats.lo >= 0:
        return pos, UINT8_MAX + 1
    return pos + stats.hist[:half][::-1].astype(np.float64), (UINT8_MAX + 1) // 2


def _kl(hist: np.ndarray, i: int, levels: int) -> float:
    """KL(P || Q): P = hist[:i] with the clipped tail added to its last bin, Q = hist[:i] merged into
    `levels` groups, each group's mass spread evenly over its non-empty bins (TensorRT)."""
    p = hist[:i].copy()
    p[-1] += hist[i:].sum()
    nz = p > 0
    group = (np.arange(i) * levels) // i
    mass = np.bincount(group, weights=hist[:i], minlength=levels)
    nonempty = np.bincount(group, weights=nz, minlength=levels)
    q = np.where(nz, mass[group] / np.maximum(nonempty[group], 1), 0.0)
    ps, qs = p.sum(), q.sum()
    if ps <= 0 or qs <= 0:
        return float("inf")
    p, q = p / ps, q / qs
    keep = p > 0
    qk = np.where(q[keep] > 0, q[keep], 1e-12)  # a clipped-tail bin Q left empty: large, finite penalty
    return float(np.sum(p[keep] * np.log(p[keep] / qk)))


def entropy_range(stats: TensorStats) -> tuple[float, float]:
    """TensorRT-style KL threshold, as a range inside [min, max]."""
    hist, levels = _one_sided(stats)
    last = int(np.flatnonzero(hist)[-1]) + 1 if np.any(hist) else 0
    if last <= levels:
        return minmax_range(stats)
    candidates = np.unique(np.linspace(levels, last, min(_KL_CANDIDATES, last - levels + 1)).astype(int))
    divergences = [_kl(hist, int(i), levels) for i in candidates]
    threshold = float(candidates[int(np.argmin(divergences))]) * stats.bin_width
    if stats.lo >= 0:
        return float(stats.lo), float(min(threshold, stats.hi))
    return float(max(-threshold, stats.lo)), float(min(threshold, stats.hi))


def histogram_mse(stats: TensorStats, lo: float, hi: float, qmax: int = UINT8_MAX) -> float:
    """Expected squared error per element of quantising the histogram's data with the range [lo, hi]."""
    scale, zp = affine_qparams(lo, hi, qmax)
    qlo, qhi = representable(scale, zp, qmax)
    c, n = stats.centers(), stats.hist.astype(np.float64)
    inside = (c >= qlo) & (c <= qhi)
    rounding_count = n[inside].sum() - stats.zeros  # exact zeros (ReLU's) are exact
    spread = stats.bin_width ** 2 / 12.0
    below, above = c < qlo, c > qhi
    clipping = float(np.sum(n[below] * ((c[below] - qlo) ** 2 + spread)) +
                     np.sum(n[above] * ((c[above] - qhi) ** 2 + spread)))
    return (max(rounding_count, 0.0) * scale ** 2 / 12.0 + clipping) / max(stats.count, 1)


def candidate_ranges(stats: TensorStats, percentile: float = DEFAULT_PERCENTILE) -> dict[str, tuple[float, float]]:
    """Every method's range for one tensor."""
    return {"minmax": minmax_range(stats), "percentile": percentile_range(stats, percentile),
            "entropy": entropy_range(stats)}


def choose(errors: dict[str, float], tolerance: float = TIE_TOLERANCE) -> str:
    """The method to use: the least expected MSE; a method later in `METHODS` only when it beats every
    earlier one by more than `tolerance` (relative)."""
    best = min(errors.values())
    for method in METHODS:
        if method in errors and errors[method] <= best * (1.0 + tolerance):
            return method
    return min(errors, key=errors.__getitem__)
