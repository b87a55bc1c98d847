"""Accuracy and fidelity on hand-made logits: the numbers a budget is decided on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgetune.data import (
    AGREEMENT,
    TOP1,
    Evaluation,
    accuracy_drop,
    agreement,
    evaluate,
    evaluate_fidelity,
    evaluate_labels,
    sqnr_db,
    top_k_accuracy,
)

# 4 samples, 6 classes; the label's rank: 1st, 2nd, 6th, 3rd
LOGITS = np.array([[9, 1, 2, 3, 4, 5],
                   [1, 8, 9, 0, 0, 0],
                   [5, 4, 3, 2, 1, 0],
                   [0, 1, 2, 3, 4, 5]], dtype=np.float32)
LABELS = np.array([0, 1, 5, 3])


def test_top_k() -> None:
    assert top_k_accuracy(LOGITS, LABELS, 1) == 25.0
    assert top_k_accuracy(LOGITS, LABELS, 2) == 50.0
    assert top_k_accuracy(LOGITS, LABELS, 3) == 75.0
    assert top_k_accuracy(LOGITS, LABELS, 5) == 75.0
    assert top_k_accuracy(LOGITS, LABELS, 6) == 100.0
    assert top_k_accuracy(LOGITS, LABELS, 10) == 100.0  # k beyond the classes: all of them
    assert top_k_accuracy(LOGITS[:, :, None, None], LABELS, 1) == 25.0  # (N, C, 1, 1) outputs
    with pytest.raises(ValueError):
        top_k_accuracy(LOGITS, LABELS[:3])


def test_evaluate_labels() -> None:
    e = evaluate_labels(LOGITS, LABELS)
    assert (e.metric, e.value, e.top5, e.samples, e.sqnr_db) == (TOP1, 25.0, 75.0, 4, None)
    assert e.labelled
    assert e.describe() == "top-1 25.0 % (top-5 75.0 %) on 4 labelled samples"
    with_ref = evaluate(LOGITS, LABELS, reference=LOGITS)
    assert with_ref.value == 25.0 and with_ref.sqnr_db == math.inf


def test_fidelity() -> None:
    ref = np.array([[3.0, 4.0], [1.0, 0.0]])
    cand = np.array([[3.0, 4.5], [1.0, 0.0]])  # signal 26, noise 0.25
    assert sqnr_db(ref, cand) == pytest.approx(10 * math.log10(26 / 0.25))
    assert sqnr_db(ref, ref) == math.inf
    assert sqnr_db(np.zeros(2), np.ones(2)) == -math.inf
    flipped = np.array([[3.0, 2.0], [1.0, 0.0]])
    assert agreement(ref, cand) == 100.0 and agreement(ref, flipped) == 50.0
    e = evaluate_fidelity(ref, flipped)
    assert (e.metric, e.value, e.samples) == (AGREEMENT, 50.0, 2) and not e.labelled
    assert e.sqnr_db == pytest.approx(10 * math.log10(26 / 4))
    assert e.describe() == "top-1 agreement with fp32 50.0 % (logits SQNR 8.1 dB) on 2 samples"
    assert evaluate(flipped, reference=ref) == e
    assert "inf dB" in evaluate_fidelity(ref, ref).describe()
    with pytest.raises(ValueError):
        evaluate(flipped)
    with pytest.raises(ValueError):
        agreement(ref, ref[:1])


def test_accuracy_drop_in_points() -> None:
    fp32 = Evaluation(TOP1, 81.3, 1000)
    int8 = Evaluation(TOP1, 80.9, 1000)
    assert accuracy_drop(fp32, int8) == pytest.approx(0.4)
    assert accuracy_drop(int8, fp32) == pytest.approx(-0.4)
    ref = np.array([[3.0, 4.0], [1.0, 0.0]])
    self_agreement = evaluate_fidelity(ref, ref)
    assert self_agreement.value == 100.0
    assert accuracy_drop(self_agreement, evaluate_fidelity(ref, ref[:, ::-1])) == 100.0
    with pytest.raises(ValueError, match="top-1 agreement"):
        accuracy_drop(fp32, Evaluation(AGREEMENT, 99.0, 1000))
    with pytest.raises(ValueError, match="samples"):
        accuracy_drop(fp32, Evaluation(TOP1, 80.0, 999))
