"""Winograd F(2x2, 3x3) conv path: loop reference, PyTorch parity, float32 accuracy, dispatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import normlab
from normlab import functional as F
from normlab.functional import _winograd, _winograd4
from normlab.functional import conv_naive as N

TIGHT = dict(rtol=1e-12, atol=1e-12)


@pytest.fixture
def winograd():
    """Force the Winograd path wherever it applies, whatever the channel counts."""
    old = _winograd.use_winograd(True)
    yield
    _winograd.use_winograd(old)


@pytest.fixture(params=[2, 4], ids=["F2x2", "F4x4"])
def tile(request):
    """Force Winograd with output tile 2 (F(2x2, 3x3)) or 4 (F(4x4, 3x3))."""
    old_mode, old_tile = _winograd.use_winograd(True), _winograd.use_tile(request.param)
    yield request.param
    _winograd.use_winograd(old_mode)
    _winograd.use_tile(old_tile)


@st.composite
def winograd_configs(draw):
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    # padded input at least 3x3; output sizes of every residue mod 2 and mod 4
    h = draw(st.integers(max(1, 3 - 2 * ph), 11))
    w = draw(st.integers(max(1, 3 - 2 * pw), 11))
    return dict(x=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w),
                f=draw(st.integers(1, 3)), padding=(ph, pw), bias=draw(st.booleans()),
                seed=draw(st.integers(0, 2**16)))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=winograd_configs())
def test_winograd_matches_loop_reference_float64(cfg, tile, kernels):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(cfg["x"])
    w = rng.standard_normal((cfg["f"], cfg["x"][1], 3, 3))
    b = rng.standard_normal(cfg["f"]) if cfg["bias"] else None
    x0, w0 = x.copy(), w.copy()
    out, cache = F.conv2d_forward(x, w, b, padding=cfg["padding"])
    assert cache.winograd and cache.wino_tile == tile
    ref, ref_cache = N.conv2d_forward_naive(x, w, b, padding=cfg["padding"])
    np.testing.assert_allclose(out, ref, **TIGHT)
    dout = rng.standard_normal(out.shape)
    got = F.conv2d_backward(dout, cache)
    want = N.conv2d_backward_naive(dout, ref_cache)
    for g, t in zip(got, want):
        if t is None:
            assert g is None
        else:
            assert g.shape == t.shape
            np.testing.assert_allclose(g, t, **TIGHT)
    np.testing.assert_array_equal(x, x0)  # pure: inputs untouched
    np.testing.assert_array_equal(w, w0)


@pytest.mark.parametrize("shape,f,padding", [
    ((2, 3, 8, 8), 4, 1),  # even output, ResNet padding
    ((2, 2, 7, 9), 3, 1),  # odd output sizes: last tile padded and cropped
    ((1, 3, 6, 5), 2, 0),
    ((2, 2, 5, 5), 3, 2),
    ((1, 2, 4, 6), 2, (3, 1)),  # padding above 2: dx crops dout
])
def test_winograd_torch_parity_float64(shape, f, padding, tile, kernels):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((f, shape[1], 3, 3))
    b = rng.standard_normal(f)
    out, cache = F.conv2d_forward(x, w, b, padding=padding)
    assert cache.winograd and cache.wino_tile == tile
    dout = rng.standard_normal(out.shape)
    dx, dw, db = F.conv2d_backward(dout, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.conv2d(tx, tw, tb, padding=padding)
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-7, atol=1e-12)
    for got, want in ((dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-7, atol=1e-12)


def _rel(a, ref):
    return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))


def test_winograd_float32_accuracy_resnet_sized(kernels):
    """float32 Winograd stays within float32 rounding of the float64 result.

    The reference is float64 on the same (float32-representable) inputs, so only the
    algorithm's rounding is measured. On batch-16 ResNet-20 layers the relative errors
    (Frobenius norm) were 1.6e-7 to 4.3e-7 for Winograd against 0.9e-7 to 2.6e-7 for
    im2col; the bound leaves room for other BLAS summation orders.
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 32, 16, 16)).astype(np.float32).astype(np.float64)
    w = rng.standard_normal((32, 32, 3, 3)) * np.sqrt(2.0 / (32 * 9))  # Kaiming scale
    w = w.astype(np.float32).astype(np.float64)
    out64, cache64 = F.conv2d_forward(x, w, padding=1)
    dout = rng.standard_normal(out64.shape).astype(np.float32).astype(np.float64)
    want = (out64,) + F.conv2d_backward(dout, cache64)[:2]
    out32, cache32 = F.conv2d_forward(x.astype(np.float32), w.astype(np.float32), padding=1)
    assert cache32.winograd  # chosen by "auto" for 32 channels and 8 x 4x4 tiles
    got = (out32,) + F.conv2d_backward(dout.astype(np.float32), cache32)[:2]
    for g, t in zip(got, want):
        assert g.dtype == np.float32
        assert _rel(g.astype(np.float64), t) < 1e-5


@pytest.mark.parametrize("mode,x_shape,w_shape,kw,expected", [
    ("auto", (32, 16, 6, 6), (16, 16, 3, 3), {}, True),  # 32 x 2x2 = 128 tiles
    ("auto", (32, 64, 6, 6), (32, 64, 3, 3), dict(padding=1), True),
    ("auto", (31, 16, 6, 6), (16, 16, 3, 3), {}, False),  # 124 tiles: too few to pay off
    ("auto", (1, 16, 6, 6), (16, 16, 3, 3), {}, False),
    ("auto", (1, 8, 6, 6), (16, 8, 3, 3), {}, False),  # too few channels to pay off
    ("auto", (1, 16, 6, 6), (8, 16, 3, 3), {}, False),
    ("auto", (1, 16, 6, 6), (16, 16, 3, 3), dict(stride=2), False),
    ("auto", (1, 16, 6, 6), (16, 16, 3, 3), dict(dilation=2), False),
    ("auto", (1, 16, 6, 6), (16, 8, 3, 3), dict(groups=2), False),
    ("auto", (1, 16, 6, 6), (16, 16, 5, 5), {}, False),
    ("auto", (1, 16, 6, 6), (16, 16, 3, 1), {}, False),
    (False, (1, 16, 6, 6), (16, 16, 3, 3), {}, False),
    (True, (1, 1, 4, 4), (1, 1, 3, 3), {}, True),
    (True, (1, 2, 6, 6), (2, 2, 3, 3), dict(stride=(1, 2)), False),
])
def test_winograd_dispatch(mode, x_shape, w_shape, kw, expected):
    old = _winograd.use_winograd(mode)
    try:
        x = np.zeros(x_shape, np.float32)
        _, cache = F.conv2d_forward(x, np.zeros(w_shape, np.float32), **kw)
    finally:
        _winograd.use_winograd(old)
    assert cache.winograd is expected


def test_winograd_chosen_on_the_cpu_only_in_auto_mode():
    args = (16, 16, (3, 3), (1, 1), (1, 1), 1, 512)
    assert _winograd.chosen(*args) and not _winograd.chosen(*args, gpu=True)
    old = _winograd.use_winograd(True)
    try:
        assert _winograd.chosen(*args, gpu=True)  # forced: wherever it applies
    finally:
        _winograd.use_winograd(old)


@pytest.mark.gpu
def test_cuda_takes_im2col_and_matches_the_cpu_winograd(rng):
    """On CuPy the transforms are many small launches (no compiled kernel), so "auto"
    runs im2col's one product there; the results equal the CPU's Winograd to round-off."""
    from normlab import backend

    x, w, b = rng.standard_normal((8, 16, 16, 16)), rng.standard_normal((16, 16, 3, 3)), \
        rng.standard_normal(16)
    ref, ref_cache = F.conv2d_forward(x, w, b, padding=1)
    out, cache = F.conv2d_forward(*(backend.to_device(a, "cuda") for a in (x, w, b)), padding=1)
    assert ref_cache.winograd and not cache.winograd
    np.testing.assert_allclose(backend.to_numpy(out), ref, rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(ref.shape)
    for got, want in zip(F.conv2d_backward(backend.to_device(dout, "cuda"), cache),
                         F.conv2d_backward(dout, ref_cache)):
        np.testing.assert_allclose(backend.to_numpy(got), want, rtol=1e-10, atol=1e-10)


def test_conv1d_never_takes_winograd(winograd):
    _, cache = F.conv1d_forward(np.zeros((1, 2, 8)), np.zeros((2, 2, 3)), padding=1)
    assert not cache.winograd


def test_use_winograd_returns_old_setting_and_rejects_bad_mode():
    old = _winograd.use_winograd(False)
    try:
        assert _winograd.use_winograd("auto") is False
        with pytest.raises(ValueError, match=r"use_winograd: expected True, False or 'auto', got 1"):
            _winograd.use_winograd(1)
    finally:
        _winograd.use_winograd(old)


@pytest.mark.parametrize("channel_major", [True, False])
def test_numba_transforms_bit_identical_to_numpy_on_channel_major_views(channel_major):
    """The compiled transforms do the NumPy versions' operations in the same order, on
    the channel-major (16, C, n, TH, TW) buffers viewed as (16, n, C, TH, TW) (one run of
    n*TH*TW tiles per channel in ``numba_winograd2``) and on plain (16, n, C, TH, TW)
    arrays (runs of one image)."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(3)
    n, C, TH, TW = 2, 3, 3, 4

    def buffer():  # a (16, n, C, TH, TW) array in the layout under test
        if channel_major:
            return np.empty((16, C, n, TH, TW), np.float32).transpose(0, 2, 1, 3, 4)
        return np.empty((16, n, C, TH, TW), np.float32)

    xt = rng.standard_normal((n, C, 2 * TH + 1, 2 * TW - 1)).astype(np.float32)  # crop, pad
    M = buffer()
    M[...] = rng.standard_normal(M.shape)
    d = rng.standard_normal((n, C, 2 * TH, 2 * TW)).astype(np.float32)
    results = {}
    for compiled in (False, True):
        with normlab.kernels("compiled" if compiled else "reference"):
            V = buffer()
            _winograd._input_transform(xt, (-1, 0), V)
            D = buffer()
            _winograd._dout_transform(d, D)
            out = np.empty((n, C, 2 * TH, 2 * TW), np.float32)
            _winograd._output_transform(M, out)
        results[compiled] = (V, D, out)
    for a, b in zip(results[False], results[True]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scheme", ["F2", "F4"])
@pytest.mark.parametrize("F, C", [(5, 7), (33, 17)])  # 35 filters; 561: blocks of 512 + 49
def test_numba_weight_transforms_bit_identical_to_numpy(scheme, dtype, F, C):
    """``U = G w G^T`` and ``dw = G^T M G`` compiled (plane loops over blocks of filters,
    ``numba_winograd_weight.BLOCK``) give the NumPy versions' bits, -0.0, infinities and
    NaN included (zero coefficients are skipped in both, so 0 * inf never enters)."""
    pytest.importorskip("numba")
    from normlab.functional.compiled import numba_winograd_weight

    assert F * C < numba_winograd_weight.BLOCK or F * C % numba_winograd_weight.BLOCK
    s = {"F2": _winograd.F2, "F4": _winograd4.F4}[scheme]
    rng = np.random.default_rng(5)
    w = rng.standard_normal((F, C, 3, 3)).astype(dtype)
    M = rng.standard_normal((s.k, F, C)).astype(dtype)
    for a in (w.reshape(-1), M.reshape(-1)):
        a[[3, 11, 20, 31]] = [-0.0, np.inf, -np.inf, np.nan]
    results = {}
    for setting in ("reference", "compiled"):
        with normlab.kernels(setting):
            results[setting] = (s.transform_weight(w), s.weight_from_sum(M))
    bits = np.uint32 if dtype == np.float32 else np.uint64
    for ref, fast in zip(results["reference"], results["compiled"]):
        assert ref.shape == fast.shape and ref.dtype == fast.dtype == dtype
        np.testing.assert_array_equal(ref.view(bits), fast.view(bits))


def test_weight_grad_reuses_forward_tiles_over_several_chunks(monkeypatch, kernels):
    """Backward through the cached input transforms equals recomputing them, and both
    match the loop reference when the batch runs in several chunks."""
    monkeypatch.setattr(_winograd, "CHUNK_BYTES", 1)  # one sample per chunk
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 5, 6))
    w = rng.standard_normal((3, 2, 3, 3))
    out, cache = _winograd.conv3x3(x, w, (1, 1), keep=True)
    assert [sl for sl, _ in cache] == [slice(0, 1), slice(1, 2), slice(2, 3)]
    dout = rng.standard_normal(out.shape)
    reused = _winograd.weight_grad3x3(x, dout, (1, 1), cache)
    recomputed = _winograd.weight_grad3x3(x, dout, (1, 1))
    _, ref_cache = N.conv2d_forward_naive(x, w, padding=1)
    want = N.conv2d_backward_naive(dout, ref_cache)[1]
    np.testing.assert_array_equal(reused, recomputed)
    np.testing.assert_allclose(reused, want, **TIGHT)


@pytest.mark.parametrize("reuse,C,kept", [(32, 16, False), (32, 32, True), (None, 64, False)])
def test_forward_keeps_input_transforms_from_reuse_min_channels(reuse, C, kept, monkeypatch):
    monkeypatch.setattr(_winograd, "REUSE_MIN_CHANNELS", reuse)
    _, cache = F.conv2d_forward(np.zeros((16, C, 6, 6), np.float32),  # 16 x 3x3 tiles
                                np.zeros((16, C, 3, 3), np.float32), padding=1)
    assert cache.winograd
    assert (cache.wino_tiles is not None) is kept
