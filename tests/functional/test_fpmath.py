"""``compiled/_fpmath``: the fused multiply-add and bit cast intrinsics, and ``sigmoid32``'s
special values (its accuracy over the whole range: ``test_activation``)."""

from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from normlab.functional.compiled import _fpmath  # noqa: E402


@numba.njit
def _fma_all(a, b, c, out):
    for i in range(a.size):
        out[i] = _fpmath.fma32(a[i], b[i], c[i])


@numba.njit
def _from_bits_all(bits, out):
    for i in range(bits.size):
        out[i] = _fpmath.float32_from_bits(bits[i])


@numba.njit
def _sigmoid_all(x, out):
    for i in range(x.size):
        out[i] = _fpmath.sigmoid32(x[i])


def test_fma32_rounds_once():
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(1000).astype(np.float32) for _ in range(3))
    out = np.empty_like(a)
    _fma_all(a, b, c, out)
    # a float32 product is exact in float64, so float64 (a*b + c) rounded to float32 is
    # the fused result (double rounding cannot move it here: checked against the float32
    # two-step result differing somewhere)
    once = (a.astype(np.float64) * b + c).astype(np.float32)
    np.testing.assert_array_equal(out, once)
    assert np.any(out != a * b + c)
    # the classic case: (1 + 2**-12)**2 - (1 + 2**-11) is 2**-24, lost by the two roundings
    x = np.array([1 + 2.0 ** -12], np.float32)
    r = np.empty(1, np.float32)
    _fma_all(x, x, -np.array([1 + 2.0 ** -11], np.float32), r)
    assert r[0] == np.float32(2.0 ** -24) and x[0] * x[0] - np.float32(1 + 2.0 ** -11) == 0


def test_float32_from_bits_is_the_ieee_view():
    bits = np.array([0, 1, 0x3F800000, 0x7F800000, -0x80000000, 0x7FC00000, 0x00800000],
                    np.int32)
    out = np.empty(bits.size, np.float32)
    _from_bits_all(bits, out)
    np.testing.assert_array_equal(out.view(np.int32), bits)


def test_sigmoid32_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 200.0, -200.0,
                  -103.0], np.float32)
    out = np.empty_like(x)
    _sigmoid_all(x, out)
    assert np.isnan(out[0])
    np.testing.assert_array_equal(out[1:9], [1.0, 0.0, 0.5, 0.5, 0.5, 0.5, 1.0, 0.0])
    assert 0 < out[9] < np.finfo(np.float32).tiny  # exp(-103): a subnormal, kept
