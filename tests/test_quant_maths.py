"""Quantisation arithmetic (edgetune.quant.maths, metrics) against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from edgetune.quant import maths, nmse, sqnr_db


def test_affine_qparams_of_known_ranges() -> None:
    scale, zp = maths.affine_qparams(-1.0, 3.0)
    assert scale == pytest.approx(4.0 / 255, rel=1e-6) and zp == 64  # round(1 / (4/255)) = round(63.75)
    assert maths.affine_qparams(0.0, 6.0) == (pytest.approx(6.0 / 255, rel=1e-6), 0)
    assert maths.affine_qparams(2.0, 5.0) == (pytest.approx(5.0 / 255, rel=1e-6), 0)  # widened to contain 0
    assert maths.affine_qparams(-4.0, -1.0) == (pytest.approx(4.0 / 255, rel=1e-6), 255)
    assert maths.affine_qparams(0.0, 0.0) == (pytest.approx(1.0 / 255, rel=1e-6), 0)  # degenerate: [0, 1]
    assert maths.affine_qparams(-1.0, 1.0, qmax=127)[1] == 64  # reduce_range activations: 0..127


def test_zero_is_exact_and_round_trip_error_is_half_a_step() -> None:
    scale, zp = maths.affine_qparams(-1.3, 2.9)
    assert maths.fake_quant(np.zeros(3, np.float32), scale, zp).tolist() == [0.0, 0.0, 0.0]
    lo, hi = maths.representable(scale, zp)
    x = np.linspace(lo, hi, 10001, dtype=np.float32)
    err = np.abs(maths.fake_quant(x, scale, zp) - x)
    assert err.max() <= scale / 2 * (1 + 1e-4)
    assert maths.fake_quant(np.array([hi + 5.0], np.float32), scale, zp)[0] == pytest.approx(hi)  # clipped
    codes = maths.quantize_affine(np.array([lo, 0.0, hi], np.float32), scale, zp)
    assert codes.tolist() == [0, zp, 255]


def test_per_channel_symmetric_weight_scales() -> None:
    w = np.zeros((3, 2, 1, 1), np.float32)
    w[0, :, 0, 0] = [0.5, -0.25]
    w[1, :, 0, 0] = [-2.0, 1.0]  # channel 2 all zero
    s = maths.weight_scales(w, axis=0)
    assert s == pytest.approx([0.5 / 127, 2.0 / 127, 1.0])
    q = maths.quantize_weights(w, s, axis=0)
    assert q.dtype == np.int8 and q[0, :, 0, 0].tolist() == [127, -64] and q[1, :, 0, 0].tolist() == [-127, 64]
    back = q.astype(np.float32) * s.reshape(-1, 1, 1, 1)
    assert np.all(np.abs(back - w) <= s.reshape(-1, 1, 1, 1) / 2 + 1e-9)
    gemm_b = np.array([[1.0, -4.0], [0.5, 2.0]], np.float32)  # (K, N), output channels on axis 1
    assert maths.weight_scales(gemm_b, axis=1) == pytest.approx([1.0 / 127, 4.0 / 127])
    assert maths.quantize_weights(gemm_b, maths.weight_scales(gemm_b, 1), 1).tolist() == [[127, -127], [64, 64]]
    assert maths.weight_scales(gemm_b, axis=1, qmax=maths.INT8_MAX_REDUCED) == pytest.approx([1.0 / 63, 4.0 / 63])


def test_bias_in_units_of_input_times_weight_scale() -> None:
    codes, scales = maths.quantize_bias(np.array([0.3, -1.0]), 0.1, np.array([0.01, 0.02], np.float32))
    assert scales == pytest.approx([0.001, 0.002]) and codes.tolist() == [300, -500] and codes.dtype == np.int32
    widened = maths.widen_for_bias(np.array([1e9, 1.0]), 1.0, np.array([1e-6, 1e-3], np.float32))
    assert widened[0] > 1e-6 and widened[1] == np.float32(1e-3)
    assert abs(maths.quantize_bias(np.array([1e9]), 1.0, widened[:1])[0][0]) < maths.INT32.max


def test_sqnr_and_nmse_of_known_noise() -> None:
    ref = np.ones(1000)
    assert nmse(ref, ref + 0.1) == pytest.approx(0.01)
    assert sqnr_db(ref, ref + 0.1) == pytest.approx(20.0)
    assert sqnr_db(ref, ref) == 300.0 and np.isfinite(sqnr_db(ref, ref))
    assert sqnr_db([ref, 2 * ref], [ref + 0.1, 2 * ref + 0.2]) == pytest.approx(20.0)


def test_saturation_rule_follows_the_cpu() -> None:
    x86 = {"arch": "x86_64", "flags": ["avx2"]}
    assert maths.u8s8_saturates(x86)
    assert not maths.u8s8_saturates({"arch": "x86_64", "flags": ["avx2", "avx512f", "avx512_vnni"]})
    assert not maths.u8s8_saturates({"arch": "x86_64", "flags": ["avx2", "avx_vnni"]})
    assert not maths.u8s8_saturates({"arch": "aarch64", "flags": ["asimd"]})
