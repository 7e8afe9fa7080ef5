"""Winograd F(4x4, 3x3): exact transform matrices, float32 accuracy, transforms, dispatch."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import normlab
from normlab import functional as F
from normlab.functional import _winograd, _winograd4, _winograd_backward
from normlab.functional import conv_naive as N

TIGHT = dict(rtol=1e-12, atol=1e-12)


@pytest.fixture
def f4():
    """Force Winograd with 4x4 output tiles wherever Winograd applies."""
    old_mode, old_tile = _winograd.use_winograd(True), _winograd.use_tile(4)
    yield
    _winograd.use_winograd(old_mode)
    _winograd.use_tile(old_tile)


def test_transform_matrices_compute_f43_exactly():
    """``A^T [(G g) * (B^T d)]`` is the 4-output correlation, in exact rational arithmetic."""
    rng = np.random.default_rng(0)
    BT = [[Fraction(v) for v in r] for r in _winograd4.BT]
    G = [[Fraction(v).limit_denominator(24) for v in r] for r in _winograd4.G]
    AT = [[Fraction(v) for v in r] for r in _winograd4.AT]
    for _ in range(5):
        d = [Fraction(int(v)) for v in rng.integers(-9, 10, 6)]
        g = [Fraction(int(v)) for v in rng.integers(-9, 10, 3)]
        m = [sum(G[k][i] * g[i] for i in range(3)) * sum(BT[k][i] * d[i] for i in range(6))
             for k in range(6)]
        y = [sum(AT[i][k] * m[k] for k in range(6)) for i in range(4)]
        assert y == [sum(d[i + k] * g[k] for k in range(3)) for i in range(4)]


# The float64 sweep against the loop reference and the torch parity tests run for both
# tile sizes in test_conv_winograd.py (fixture ``tile``).


def _rel(a, ref):
    return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))


@pytest.mark.parametrize("C,hw", [(16, 16), (32, 16)])
def test_f4_float32_accuracy_resnet_sized(C, hw, kernels):
    """float32 F(4x4, 3x3) stays within 1e-5 of the float64 result (relative, Frobenius).

    Measured on batch-8 ResNet-20 layers (Kaiming-scaled weights): 1.0e-6 to 1.9e-6 for
    F(4x4) against 1.6e-7 to 3.7e-7 for F(2x2), the larger transform constants amplifying
    rounding about 6x.
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, C, hw, hw)).astype(np.float32).astype(np.float64)
    w = rng.standard_normal((C, C, 3, 3)) * np.sqrt(2.0 / (C * 9))
    w = w.astype(np.float32).astype(np.float64)
    dout = rng.standard_normal((8, C, hw, hw)).astype(np.float32).astype(np.float64)
    old = _winograd.use_winograd(False)
    try:  # reference: im2col in float64
        out64, cache64 = F.conv2d_forward(x, w, padding=1)
        want = (out64,) + F.conv2d_backward(dout, cache64)[:2]
    finally:
        _winograd.use_winograd(old)
    out32, cache32 = F.conv2d_forward(x.astype(np.float32), w.astype(np.float32), padding=1)
    assert cache32.winograd and cache32.wino_tile == 4  # "auto": 16x16 output, 128 tiles
    got = (out32,) + F.conv2d_backward(dout.astype(np.float32), cache32)[:2]
    for g, t in zip(got, want):
        assert g.dtype == np.float32
        assert _rel(g.astype(np.float64), t) < 1e-5


@pytest.mark.parametrize("channel_major", [True, False])
def test_numba_and_numpy_transforms_agree(channel_major):
    """On the library's channel-major (36, C, n, TH, TW) buffers viewed as (36, n, C, TH,
    TW) and on plain (36, n, C, TH, TW) arrays."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(3)
    n, C, TH, TW = 2, 3, 2, 3

    def buffer():
        if channel_major:
            return np.empty((36, C, n, TH, TW)).transpose(0, 2, 1, 3, 4)
        return np.empty((36, n, C, TH, TW))

    xt = rng.standard_normal((n, C, 4 * TH + 1, 4 * TW - 1))  # cropped below, padded right
    M = buffer()
    M[...] = rng.standard_normal(M.shape)
    d = rng.standard_normal((n, C, 4 * TH, 4 * TW))
    results = []
    for compiled in (False, True):
        with normlab.kernels("compiled" if compiled else "reference"):
            V = buffer()
            _winograd4._input_transform(xt, (-1, 0), V)
            D = buffer()
            _winograd4._dout_transform(d, D)
            out = np.empty((n, C, 4 * TH, 4 * TW))
            _winograd4._output_transform(M, out)
        results.append((V, D, out))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, **TIGHT)


@pytest.mark.parametrize("n, TH, TW", [(5, 3, 9), (40, 2, 2), (2, 8, 8), (1, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_output_and_dout_transforms_over_runs(monkeypatch, n, TH, TW, dtype):
    """The output and dout transforms gather and scatter a run's rows through column phases
    (``compiled/_phases``): the reference's values on runs of several samples, of one
    sample (``LONGEST_RUN`` 1) and of rows longer than a vector, NaN where it was, and the
    same bits whatever the run."""
    pytest.importorskip("numba")
    from normlab.functional.compiled import numba_winograd4
    rng = np.random.default_rng(5)
    C = 3
    M = np.empty((36, C, n, TH, TW), dtype).transpose(0, 2, 1, 3, 4)  # the library's layout
    M[...] = rng.standard_normal(M.shape)
    M[7, 0, 1, 0, 0] = np.nan
    d = rng.standard_normal((n, C, 4 * TH, 4 * TW)).astype(dtype)
    d[-1, 2, -1, -1] = np.nan
    results = []
    for setting, longest in (("reference", None), ("compiled", None), ("compiled", 1)):
        if longest is not None:
            monkeypatch.setattr(numba_winograd4, "LONGEST_RUN", longest)
        with normlab.kernels(setting):
            out = np.full((n, C, 4 * TH, 4 * TW), 7.0, dtype)
            _winograd4._output_transform(M, out)
            D = np.full((36, C, n, TH, TW), 7.0, dtype).transpose(0, 2, 1, 3, 4)
            _winograd4._dout_transform(d, D)
        results.append((out, D))
    tol = TIGHT if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    for want, got, other in zip(*results):
        np.testing.assert_allclose(got, want, **tol)  # NaN where the reference has it
        np.testing.assert_array_equal(other, got)


def _planes_like(layout, shape, rng):
    """A (36, n, C, TH, TW) float64 array of random values in one of the layouts the
    compiled transforms meet: inside a padded scratch buffer (``_winograd_scratch``), with
    non-contiguous planes, viewed from a byte buffer, with a reversed sample axis."""
    k, n, C, TH, TW = shape
    if layout == "scratch":
        from normlab.functional._winograd_scratch import planes
        P = planes(np.empty(k * (C * n * TH * TW + 40) + 7), k, (C, n, TH, TW), 7)
        P = P.transpose(0, 2, 1, 3, 4)
    elif layout == "strided_planes":
        P = np.empty((k, n, C, TH, 2 * TW))[..., ::2]
    elif layout == "byte_view":
        P = np.empty(8 * k * n * C * TH * TW, np.uint8).view(np.float64).reshape(shape)
    else:  # "reversed"
        P = np.empty(shape)[:, ::-1]
    P[...] = rng.standard_normal(shape)
    return P


@pytest.mark.parametrize("layout", ["scratch", "strided_planes", "byte_view", "reversed"])
def test_compiled_transforms_take_any_plane_layout(layout):
    """The compiled kernels find each array's memory themselves (``_planes.home``, ``runs``), or
    fall back to a contiguous copy; either way all four transforms give the reference's
    values, and the written planes land in the array passed."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(8)
    n, C, TH, TW = 3, 2, 2, 3
    shape = (36, n, C, TH, TW)
    x = rng.standard_normal((n, C, 4 * TH + 2, 4 * TW + 2))
    d = rng.standard_normal((n, C, 4 * TH, 4 * TW))
    M = _planes_like(layout, shape, rng)
    results = []
    for compiled in (False, True):
        with normlab.kernels("compiled" if compiled else "reference"):
            V = _planes_like(layout, shape, rng)
            _winograd4._input_transform(x, (0, 0), V)
            D = _planes_like(layout, shape, rng)
            _winograd4._dout_transform(d, D)
            out = np.empty((n, C, 4 * TH, 4 * TW))
            _winograd4._output_transform(M, out)
            dx = np.empty(x.shape)
            _winograd_backward.input_adjoint(4, M, (0, 0), dx)
        results.append((V, D, out, dx))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, **TIGHT)


def test_f4_weight_grad_reuses_tiles_over_several_chunks(monkeypatch, kernels):
    monkeypatch.setattr(_winograd, "CHUNK_BYTES", 1)  # one sample per chunk
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 9, 6))
    w = rng.standard_normal((3, 2, 3, 3))
    out, tiles = _winograd4.conv3x3(x, w, (1, 1), keep=True)
    assert [sl for sl, _ in tiles] == [slice(0, 1), slice(1, 2), slice(2, 3)]
    dout = rng.standard_normal(out.shape)
    reused = _winograd4.weight_grad3x3(x, dout, (1, 1), tiles)
    _, ref_cache = N.conv2d_forward_naive(x, w, padding=1)
    np.testing.assert_allclose(reused, N.conv2d_backward_naive(dout, ref_cache)[1], **TIGHT)
    np.testing.assert_allclose(_winograd4.weight_grad3x3(x, dout, (1, 1)), reused, **TIGHT)


@pytest.mark.parametrize("tile,batch,hw,padding,expected", [
    ("auto", 8, 16, 1, 4),  # ResNet 32x32 and 16x16 stages: F(4x4) from 128 tiles
    ("auto", 8, 18, 0, 4),
    ("auto", 4, 17, 0, 2),  # 15x15 output, 64 tiles of 4x4 are too few
    ("auto", 8, 17, 0, 4),  # 128 tiles
    ("auto", 16, 8, 1, 2),  # 64x8x8 stage at batch 16: 64 tiles of 4x4
    ("auto", 32, 8, 1, 4),  # 128 tiles
    ("auto", 512, 7, 1, 2),  # below 8x8: F(2x2) at any batch
    (2, 8, 16, 1, 2),
    (4, 32, 8, 1, 4),
])
def test_tile_dispatch(tile, batch, hw, padding, expected):
    old = _winograd.use_tile(tile)
    try:
        _, cache = F.conv2d_forward(np.zeros((batch, 16, hw, hw), np.float32),
                                    np.zeros((16, 16, 3, 3), np.float32), padding=padding)
    finally:
        _winograd.use_tile(old)
    assert cache.winograd and cache.wino_tile == expected


@pytest.mark.parametrize("bad", [3, True, "4", None])
def test_use_tile_returns_old_setting_and_rejects_bad_tile(bad):
    old = _winograd.use_tile(2)
    try:
        assert _winograd.use_tile("auto") == 2
        with pytest.raises(ValueError, match=r"use_tile: expected 2, 4 or 'auto', got "):
            _winograd.use_tile(bad)
    finally:
        _winograd.use_tile(old)
