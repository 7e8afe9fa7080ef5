"""Winograd backward with one shared dout transform: the input transform's adjoint."""

from __future__ import annotations

import numpy as np
import pytest

import normlab
from normlab.functional import _winograd, _winograd4, _winograd_backward
from normlab.functional import conv_naive as N

TIGHT = dict(rtol=1e-12, atol=1e-12)
SCHEME = {2: _winograd, 4: _winograd4}


def _transform(m, x, padding, TH, TW):
    V = np.empty(((m + 2) ** 2, x.shape[1], x.shape[0], TH, TW))
    SCHEME[m]._input_transform(x, padding, V.transpose(0, 2, 1, 3, 4))
    return V.transpose(0, 2, 1, 3, 4)


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("hw,padding", [((8, 8), (1, 1)), ((7, 9), (1, 1)), ((6, 5), (0, 0)),
                                        ((5, 6), (2, 3)), ((9, 7), (-1, 0))])
def test_input_adjoint_is_the_transpose_of_the_input_transform(m, hw, padding, kernels):
    """<B^T x B, dV> == <x, adjoint(dV)> for random x and dV (the definition of an adjoint)."""
    rng = np.random.default_rng(sum(hw) + m)
    H, W = hw
    TH = -(-(H + 2 * padding[0] - 2) // m)
    TW = -(-(W + 2 * padding[1] - 2) // m)
    x = rng.standard_normal((2, 3, H, W))
    dV = rng.standard_normal(((m + 2) ** 2, 3, 2, TH, TW)).transpose(0, 2, 1, 3, 4)
    dx = np.full(x.shape, np.nan)  # every element must be written
    _winograd_backward.input_adjoint(m, dV, padding, dx)
    lhs = float(np.sum(_transform(m, x, padding, TH, TW) * dV))
    assert lhs == pytest.approx(float(np.sum(x * dx)), rel=1e-12)


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_input_adjoint_matches_reference(m, dtype):
    pytest.importorskip("numba")
    rng = np.random.default_rng(m)
    dV = rng.standard_normal(((m + 2) ** 2, 4, 3, 3, 2)).astype(dtype).transpose(0, 2, 1, 3, 4)
    results = []
    for setting in ("reference", "compiled"):
        with normlab.kernels(setting):
            for padding, hw in (((1, 1), (3 * m, 2 * m)), ((0, 2), (3 * m + 1, 2 * m - 1))):
                dx = np.full((3, 4) + hw, np.nan, dtype=dtype)
                _winograd_backward.input_adjoint(m, dV, padding, dx)
                results.append(dx)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else TIGHT
    for ref, got in zip(results[:2], results[2:]):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, ref, **tol)


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("two_pass", [False, True])
def test_backward3x3_matches_loop_reference_over_several_chunks(m, two_pass, monkeypatch,
                                                                kernels):
    monkeypatch.setattr(_winograd, "CHUNK_BYTES", 1)  # one sample per chunk
    monkeypatch.setattr(_winograd_backward, "TWO_PASS_MIN_RATIO", 0.0 if two_pass else np.inf)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 2, 9, 7))
    w = rng.standard_normal((4, 2, 3, 3))
    out, tiles = SCHEME[m].conv3x3(x, w, (1, 1), keep=True)
    dout = rng.standard_normal(out.shape)
    _, ref_cache = N.conv2d_forward_naive(x, w, padding=1)
    want_dx, want_dw = N.conv2d_backward_naive(dout, ref_cache)[:2]
    for kept in (tiles, None):
        dx, dw = _winograd_backward.backward3x3(m, x, dout, w, (1, 1), kept)
        np.testing.assert_allclose(dx, want_dx, **TIGHT)
        np.testing.assert_allclose(dw, want_dw, **TIGHT)
    dx, dw = _winograd_backward.backward3x3(m, x, dout, w, (1, 1), tiles, need_dx=False)
    assert dx is None
    np.testing.assert_allclose(dw, want_dw, **TIGHT)


def test_two_passes_hold_less_at_once(monkeypatch):
    """Where U (k, F, C) outweighs x (64 channels, 8x8, one thread), the two passes never
    hold Ut, the weight gradient's total and a whole part together: the peak of NumPy's
    allocations (tracemalloc) is lower than the one pass's by a (k, F, C) array, less the
    weight gradient that the two passes have made before dx.
    With dx written over dout, the dx pass (Ut, dx, V, D) is no longer the peak: the
    weight-gradient pass (total, a quarter part, V, D) is, half a (k, F, C) lower.
    The garbage collector is run before and kept off during each measurement: a
    collection inside one (of garbage that earlier tests in the process left) moved the
    peaks by about 10 KB either way, more than the first bound leaves (under 1 KB)."""
    import gc
    import tracemalloc

    from normlab.functional import _parallel

    monkeypatch.setattr(_parallel, "thread_count", lambda: 1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 64, 8, 8)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    U = 36 * 64 * 64 * 4  # bytes of one (k, F, C) array, F(4x4)

    def peak(ratio, into=None):
        monkeypatch.setattr(_winograd_backward, "TWO_PASS_MIN_RATIO", ratio)
        gc.collect()
        gc.disable()
        tracemalloc.start()
        try:
            _winograd_backward.backward3x3(4, x, dout, w, (1, 1), into=into)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            gc.enable()

    peak(np.inf), peak(1.0)  # compiled kernels loaded: Python's allocations not counted
    one, two = peak(np.inf), peak(1.0)
    assert two <= one - (U - w.nbytes)
    assert peak(1.0, into=dout.copy()) <= two - U // 2
