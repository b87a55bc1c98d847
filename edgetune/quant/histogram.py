"""Streaming statistics of one float tensor: min, max, count, exact zeros and a histogram.

Why streaming: 300 ImageNet samples of every activation of a CNN do not fit in memory, and a range
method needs only the distribution. The histogram covers [-R, R] with a fixed number of bins; R starts
at the first power of two above the first batch's max |x| and doubles when later data exceed it, each
doubling merging adjacent bin pairs. Bin edges stay aligned, so the merge is exact (no re-binning
interpolation), and the resolution is never coarser than 2R / bins with R < 2 max|x|.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_BINS = 8192  # per tensor; 4096 per sign, at least 2048 over [0, max|x|] (TensorRT uses 2048)


@dataclass
class TensorStats:
    """What calibration keeps of one tensor; `update` with every batch."""

    bins: int = DEFAULT_BINS
    lo: float = np.inf
    hi: float = -np.inf
    count: int = 0
    zeros: int = 0
    half_width: float = 0.0  # R: the histogram spans [-R, R]
    hist: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        if self.bins % 4:
            raise ValueError(f"bins must be a multiple of 4 (exact merges), got {self.bins}")

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float32).ravel()
        if x.size == 0:
            return
        if not np.all(np.isfinite(x)):
            x = x[np.isfinite(x)]
            if x.size == 0:
                return
        lo, hi = float(x.min()), float(x.max())
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        self.count += int(x.size)
        self.zeros += int(x.size - np.count_nonzero(x))
        self._grow(max(abs(lo), abs(hi)))
        width = 2.0 * self.half_width / self.bins
        idx = np.floor((x.astype(np.float64) + self.half_width) / width).astype(np.int64)
        np.clip(idx, 0, self.bins - 1, out=idx)
        self.hist += np.bincount(idx, minlength=self.bins)

    def _grow(self, maxabs: float) -> None:
        if not self.hist.size:
            self.half_width = float(2.0 ** np.ceil(np.log2(max(maxabs, 1e-30)))) if maxabs > 0 else 1.0
            if self.half_width <= maxabs:
                self.half_width *= 2.0
            self.hist = np.zeros(self.bins, np.int64)
            return
        while maxabs >= self.half_width:
            pairs = self.hist.reshape(-1, 2).sum(axis=1)  # bins of twice the width over the old span
            quarter = self.bins // 4
            merged = np.zeros(self.bins, np.int64)
            merged[quarter:quarter + self.bins // 2] = pairs
            self.hist, self.half_width = merged, self.half_width * 2.0

    @property
    def bin_width(self) -> float:
        return 2.0 * self.half_width / self.bins

    def centers(self) -> np.ndarray:
        return -self.half_width + (np.arange(self.bins) + 0.5) * self.bin_width

    def zero_bin(self) -> int:
        """The bin holding 0 (its left edge is 0)."""
        return self.bins // 2

    @property
    def seen(self) -> bool:
        return self.count > 0
