"""How close a quantised model's outputs are to the fp32 ones: NMSE and SQNR.

NMSE = ||ref - test||^2 / ||ref||^2 is NNCF's logits-based ranking score; SQNR (dB) = -10 log10(NMSE) is
AIMET's. Both are taken over every element of every feed; with several outputs, the NMSE is averaged over
outputs so that a large-valued output does not drown the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_MAX_DB = 300.0  # identical outputs: a large finite SQNR, so rankings and JSON stay numeric


def _as_list(x: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(a) for a in x] if isinstance(x, (list, tuple)) else [np.asarray(x)]


def nmse(ref: np.ndarray | Sequence[np.ndarray], test: np.ndarray | Sequence[np.ndarray]) -> float:
    """Normalised MSE; `ref`/`test` are arrays or equal-length lists of arrays (one per output or feed)."""
    refs, tests = _as_list(ref), _as_list(test)
    if len(refs) != len(tests):
        raise ValueError(f"{len(refs)} reference arrays but {len(tests)} test arrays")
    pairs = zip(refs, tests, strict=True)
    num = sum(float(np.sum((r.astype(np.float64) - t.astype(np.float64)) ** 2)) for r, t in pairs)
    den = sum(float(np.sum(r.astype(np.float64) ** 2)) for r in refs)
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return num / den


def sqnr_db(ref: np.ndarray | Sequence[np.ndarray], test: np.ndarray | Sequence[np.ndarray]) -> float:
    """Signal-to-quantisation-noise ratio in dB (higher is better), capped at 300 dB."""
    e = nmse(ref, test)
    return _MAX_DB if e <= 10 ** (-_MAX_DB / 10) else float(-10.0 * np.log10(e))


def output_nmse(refs: Sequence[Sequence[np.ndarray]], tests: Sequence[Sequence[np.ndarray]]) -> float:
    """NMSE of a model's outputs over feeds: refs[feed][output]; per output over all feeds, then the mean
    over outputs."""
    n_out = len(refs[0]) if refs else 0
    per_output = [nmse([r[k] for r in refs], [t[k] for t in tests]) for k in range(n_out)]
    return float(np.mean(per_output)) if per_output else 0.0


def db_of(nmse_value: float) -> float:
    """SQNR in dB of an NMSE, capped like `sqnr_db`."""
    return _MAX_DB if nmse_value <= 10 ** (-_MAX_DB / 10) else float(-10.0 * np.log10(nmse_value))
