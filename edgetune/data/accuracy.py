"""How good a model's outputs are: accuracy against labels, or fidelity to the fp32 model without them.

All percentages are points (0..100), so a budget such as ``--max-accuracy-drop 0.5`` reads the same for
either metric: with labels, the drop is in top-1 accuracy; without, it is in top-1 agreement with the fp32
model (whose agreement with itself is 100). SQNR (dB) of the logits is reported beside agreement: it moves
before the arg-max does, so it tells how close a candidate came to flipping decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TOP1, TOP5, AGREEMENT = "top-1", "top-5", "top-1 agreement"


@dataclass(frozen=True)
class Evaluation:
    """One model's score: ``value`` in points of ``metric`` ("top-1"/"top-5" accuracy against labels, or
    "top-1 agreement" with the fp32 model), on ``samples`` inputs; ``top5`` and ``sqnr_db`` ride along where
    they were measured (SQNR is inf for outputs identical to the reference)."""

    metric: str
    value: float
    samples: int
    top5: float | None = None
    sqnr_db: float | None = None

    @property
    def labelled(self) -> bool:
        return self.metric != AGREEMENT

    def describe(self) -> str:
        """One line, e.g. "top-1 81.3 % (top-5 95.0 %) on 1000 labelled samples"."""
        if not self.labelled:
            sqnr = "" if self.sqnr_db is None else f" (logits SQNR {_db(self.sqnr_db)})"
            return f"top-1 agreement with fp32 {self.value:.1f} %{sqnr} on {self.samples} samples"
        extra = f" (top-5 {self.top5:.1f} %)" if self.top5 is not None and self.metric == TOP1 else ""
        return f"{self.metric} {self.value:.1f} %{extra} on {self.samples} labelled samples"


def _db(x: float) -> str:
    return "inf dB" if math.isinf(x) else f"{x:.1f} dB"


def _as_logits(logits: np.ndarray) -> np.ndarray:
    """(N, classes): trailing singleton axes (N, C, 1, 1) squeezed."""
    x = np.asarray(logits)
    if x.ndim < 2:
        raise ValueError(f"logits need shape (samples, classes), got {x.shape}")
    if x.ndim > 2:
        if any(d != 1 for d in x.shape[2:]):
            raise ValueError(f"logits need shape (samples, classes), got {x.shape}")
        x = x.reshape(x.shape[0], x.shape[1])
    return x


def top_k_accuracy(logits: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Points (0..100) of samples whose label is among the ``k`` largest logits."""
    x = _as_logits(logits)
    y = np.asarray(labels).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"{len(x)} logit rows but {len(y)} labels")
    if len(y) == 0:
        raise ValueError("accuracy of no samples")
    k = min(k, x.shape[1])
    top = np.argpartition(-x, k - 1, axis=1)[:, :k]
    return 100.0 * float(np.mean(np.any(top == y[:, None], axis=1)))


def agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Points (0..100) of samples where the candidate's arg-max is the reference's."""
    r, c = _as_logits(reference), _as_logits(candidate)
    if r.shape != c.shape:
        raise ValueError(f"reference logits {r.shape} and candidate logits {c.shape} differ")
    return 100.0 * float(np.mean(np.argmax(r, axis=1) == np.argmax(c, axis=1)))


def sqnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Signal-to-quantisation-noise ratio 10 log10(sum ref^2 / sum (ref - cand)^2) over all logits."""
    r = np.asarray(reference, np.float64)
    c = np.asarray(candidate, np.float64)
    if r.shape != c.shape:
        raise ValueError(f"reference {r.shape} and candidate {c.shape} differ")
    noise = float(np.sum((r - c) ** 2))
    signal = float(np.sum(r ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def evaluate_labels(logits: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Top-1 accuracy (the budget's metric) with top-5 beside it."""
    x = _as_logits(logits)
    return Evaluation(TOP1, top_k_accuracy(x, labels, 1), len(x), top5=top_k_accuracy(x, labels, 5))


def evaluate_fidelity(reference: np.ndarray, candidate: np.ndarray) -> Evaluation:
    """Top-1 agreement with the fp32 model's logits and the logits' SQNR, for data without labels."""
    return Evaluation(AGREEMENT, agreement(reference, candidate), len(_as_logits(candidate)),
                      sqnr_db=sqnr_db(reference, candidate))


def evaluate(logits: np.ndarray, labels: np.ndarray | None = None,
             reference: np.ndarray | None = None) -> Evaluation:
    """Accuracy against ``labels`` when given (SQNR against ``reference`` beside it when that is given too),
    else fidelity to ``reference`` (the fp32 model's logits on the same inputs)."""
    if labels is not None:
        result = evaluate_labels(logits, labels)
        if reference is not None:
            result = Evaluation(result.metric, result.value, result.samples, result.top5, sqnr_db(reference, logits))
        return result
    if reference is None:
        raise ValueError("evaluate needs labels or the reference logits")
    return evaluate_fidelity(reference, logits)


def accuracy_drop(reference: Evaluation, candidate: Evaluation) -> float:
    """Points the candidate lost against the reference (negative: it gained), in the shared metric."""
    if reference.metric != candidate.metric:
        raise ValueError(f"cannot compare {reference.metric} with {candidate.metric}")
    if reference.samples != candidate.samples:
        raise ValueError(f"reference on {reference.samples} samples, candidate on {candidate.samples}")
    return reference.value - candidate.value
