"""Pooling: fast vs loop reference, PyTorch parity (ties included), purity, dtypes, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import normlab
from normlab import functional as F
from normlab.functional import pool_naive as N

TIGHT = dict(rtol=1e-12, atol=1e-12)
TF = torch.nn.functional

PAIRS_2D = {
    "max": (F.max_pool2d_forward, F.max_pool2d_backward, N.max_pool2d_forward_naive,
            N.max_pool2d_backward_naive, TF.max_pool2d),
    "avg": (F.avg_pool2d_forward, F.avg_pool2d_backward, N.avg_pool2d_forward_naive,
            N.avg_pool2d_backward_naive, TF.avg_pool2d),
}
PAIRS_1D = {
    "max": (F.max_pool1d_forward, F.max_pool1d_backward, N.max_pool1d_forward_naive,
            N.max_pool1d_backward_naive, TF.max_pool1d),
    "avg": (F.avg_pool1d_forward, F.avg_pool1d_backward, N.avg_pool1d_forward_naive,
            N.avg_pool1d_backward_naive, TF.avg_pool1d),
}


@st.composite
def pool_configs(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 7))
    w = draw(st.integers(max(1, kw - 2 * pw), 7))
    # Few distinct values: ties inside windows are common, so the first-max rule is exercised.
    ties = draw(st.booleans())
    return dict(shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w),
                args=((kh, kw), stride, (ph, pw)), ties=ties, seed=draw(st.integers(0, 2**16)))


def _input(cfg):
    rng = np.random.default_rng(cfg["seed"])
    if cfg["ties"]:
        return rng, rng.integers(-2, 3, cfg["shape"]).astype(np.float64)
    return rng, rng.standard_normal(cfg["shape"])


@pytest.mark.parametrize("kind", ["max", "avg"])
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=pool_configs())
def test_pool2d_fast_matches_loop_reference(kind, cfg, kernels):
    fwd, bwd, fwd_n, bwd_n, _ = PAIRS_2D[kind]
    rng, x = _input(cfg)
    out, cache = fwd(x, *cfg["args"])
    ref, ref_cache = fwd_n(x, *cfg["args"])
    np.testing.assert_allclose(out, ref, **TIGHT)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(bwd(dout, cache), bwd_n(dout, ref_cache), **TIGHT)


@pytest.mark.parametrize("kind", ["max", "avg"])
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=pool_configs())
def test_pool1d_fast_matches_loop_reference(kind, cfg, kernels):
    fwd, bwd, fwd_n, bwd_n, _ = PAIRS_1D[kind]
    rng, x = _input(cfg)
    x = x[:, :, 0, :]
    (_, k), stride, (_, p) = cfg["args"]
    args = (k, None if stride is None else stride[1], p)
    out, cache = fwd(x, *args)
    ref, ref_cache = fwd_n(x, *args)
    np.testing.assert_allclose(out, ref, **TIGHT)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(bwd(dout, cache), bwd_n(dout, ref_cache), **TIGHT)


def _torch_check(fwd, bwd, tfn, x, args, rng):
    out, cache = fwd(x, *args)
    tx = torch.tensor(x, requires_grad=True)
    tout = tfn(tx, *args)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-7, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(bwd(dout, cache), tx.grad.numpy(), rtol=1e-7, atol=1e-12)


ARGS_2D = [
    (2, None, 0),  # on the 7x5 input below the last row/column does not fit and gets no grad
    (2, 3, 0),  # gaps between windows
    (3, 2, 1),
    ((3, 2), (1, 2), (1, 0)),
    (2, 1, 1),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("args", ARGS_2D)
@pytest.mark.parametrize("ties", [False, True])
def test_pool2d_matches_torch(kind, args, ties, rng, kernels):
    fwd, bwd, _, _, tfn = PAIRS_2D[kind]
    x = rng.integers(-1, 2, (2, 3, 7, 5)).astype(np.float64) if ties \
        else rng.standard_normal((2, 3, 7, 5))
    _torch_check(fwd, bwd, tfn, x, args, rng)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("args", [(2, None, 0), (3, 2, 1), (3, 1, 1)])
def test_pool1d_matches_torch(kind, args, rng, kernels):
    fwd, bwd, _, _, tfn = PAIRS_1D[kind]
    _torch_check(fwd, bwd, tfn, rng.integers(-1, 2, (2, 3, 9)).astype(np.float64), args, rng)


def test_max_pool_gradient_goes_to_first_maximum(kernels):
    # All four values of each 2x2 window tie: the top-left one (first in row-major order)
    # gets the gradient, as torch CPU does.
    x = np.ones((1, 1, 4, 4))
    out, cache = F.max_pool2d_forward(x, 2)
    dx = F.max_pool2d_backward(np.ones_like(out), cache)
    want = np.zeros((4, 4))
    want[::2, ::2] = 1.0
    np.testing.assert_array_equal(dx[0, 0], want)
    tx = torch.tensor(x, requires_grad=True)
    TF.max_pool2d(tx, 2).sum().backward()
    np.testing.assert_array_equal(tx.grad.numpy()[0, 0], want)


def test_max_pool_nan_propagates_like_torch(kernels):
    x = np.array([[[[1.0, np.nan, np.nan, 1.0]]]])
    out, cache = F.max_pool2d_forward(x, (1, 4))
    assert np.isnan(out).all()
    dx = F.max_pool2d_backward(np.ones_like(out), cache)
    tx = torch.tensor(x, requires_grad=True)
    TF.max_pool2d(tx, (1, 4)).sum().backward()
    np.testing.assert_array_equal(dx, tx.grad.numpy())  # the last NaN gets it


def test_max_pool_padding_is_minus_inf():
    x = -np.ones((1, 1, 2, 2))
    out, _ = F.max_pool2d_forward(x, 3, stride=1, padding=1)
    np.testing.assert_array_equal(out, -np.ones((1, 1, 2, 2)))


@pytest.mark.parametrize("size", [1, (1, 1), 2, (3, 2), (2, None), (5, 7)])
def test_adaptive_avg_pool2d_matches_torch_and_reference(size, rng):
    x = rng.standard_normal((2, 3, 5, 7))
    out, cache = F.adaptive_avg_pool2d_forward(x, size)
    ref, ref_cache = N.adaptive_avg_pool2d_forward_naive(x, size)
    tx = torch.tensor(x, requires_grad=True)
    tout = TF.adaptive_avg_pool2d(tx, size)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(out, ref, **TIGHT)
    dout = rng.standard_normal(out.shape)
    tout.backward(torch.tensor(dout))
    dx = F.adaptive_avg_pool2d_backward(dout, cache)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(dx, N.adaptive_avg_pool2d_backward_naive(dout, ref_cache), **TIGHT)


FAST_2D = [(F.max_pool2d_forward, F.max_pool2d_backward, (2,)),
           (F.max_pool2d_forward, F.max_pool2d_backward, (3, 2, 1)),
           (F.avg_pool2d_forward, F.avg_pool2d_backward, (2,)),
           (F.avg_pool2d_forward, F.avg_pool2d_backward, (3, 2, 1)),
           (F.adaptive_avg_pool2d_forward, F.adaptive_avg_pool2d_backward, (1,)),
           (F.adaptive_avg_pool2d_forward, F.adaptive_avg_pool2d_backward, ((2, 3),))]


@pytest.mark.parametrize("fwd, bwd, args", FAST_2D)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_inputs_not_mutated(fwd, bwd, args, dtype, rng, kernels):
    x = rng.standard_normal((2, 3, 6, 5)).astype(dtype)
    x_copy = x.copy()
    out, cache = fwd(x, *args)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout_copy = dout.copy()
    dx = bwd(dout, cache)
    assert out.dtype == dtype and dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dout, dout_copy)


@pytest.mark.parametrize("fwd", [F.max_pool2d_forward, F.avg_pool2d_forward,
                                 N.max_pool2d_forward_naive, N.avg_pool2d_forward_naive])
@pytest.mark.parametrize("xs, args, match", [
    ((3, 5, 5), (2,), r"expected 4D input \(N, C, H, W\), got 3D input of shape \(3, 5, 5\)"),
    ((1, 1, 5, 5), (3, 1, 2), r"expected padding at most half of kernel_size, got "
                              r"padding=\(2, 2\) and kernel_size=\(3, 3\)"),
    ((1, 1, 5, 5), (2, 0), r"expected positive stride, got stride=\(0, 0\)"),
    ((1, 1, 5, 5), (0,), r"expected positive kernel_size"),
    ((1, 1, 5, 5), (2, 1, -1), r"expected non-negative padding"),
    ((1, 1, 2, 5), (3,), r"expected a kernel no larger than the padded input, got padded "
                         r"input size \(2, 5\)"),
])
def test_pool2d_errors(fwd, xs, args, match):
    with pytest.raises(ValueError, match=match):
        fwd(np.zeros(xs), *args)


def test_pool1d_and_adaptive_errors():
    with pytest.raises(ValueError, match=r"max_pool1d_forward: expected 3D input \(N, C, L\)"):
        F.max_pool1d_forward(np.zeros((1, 2, 3, 4)), 2)
    with pytest.raises(ValueError, match=r"avg_pool1d_forward: expected padding at most half"):
        F.avg_pool1d_forward(np.zeros((1, 2, 8)), 2, 1, 2)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d_forward: expected positive "
                                         r"output_size, got \(0, 2\)"):
        F.adaptive_avg_pool2d_forward(np.zeros((1, 2, 4, 4)), (0, 2))
    with pytest.raises(TypeError, match=r"expected kernel_size to be an int or a tuple of 2 ints"):
        F.max_pool2d_forward(np.zeros((1, 1, 4, 4)), 2.0)


@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("shape", [(4, 3, 8, 10), (3, 2, 7, 9), (40, 3, 16, 30)],
                         ids=["even", "odd", "blocks"])
def test_the_2x2_stride_2_loops_match_the_reference(shape, padding, rng, monkeypatch, threads):
    # the compiled kernels' own loops for 2x2 / stride 2 windows (numba_pool): max pooling
    # bit for bit with NaN, ties and signed zeros, its gradient and average pooling's
    # gradient too; the average itself up to the reference's order of additions
    from normlab.functional import _parallel

    threads(2)
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 1024)
    x = rng.integers(-2, 3, shape).astype(np.float32)  # ties in most windows
    x.flat[::37] = np.nan
    x.flat[3::41] = -0.0
    got = {}
    for setting in ("compiled", "reference"):
        with normlab.kernels(setting):
            mo, mc = F.max_pool2d_forward(x, 2, padding=padding)
            dout = np.arange(mo.size, dtype=np.float32).reshape(mo.shape) - 7.0
            ao, ac = F.avg_pool2d_forward(x, 2, padding=padding)
            got[setting] = (mo, F.max_pool2d_backward(dout, mc), ao,
                            F.avg_pool2d_backward(dout, ac))
    (mo, mdx, ao, adx), (rmo, rmdx, rao, radx) = got["compiled"], got["reference"]
    np.testing.assert_array_equal(mo, rmo)
    np.testing.assert_array_equal(np.signbit(mo), np.signbit(rmo))
    np.testing.assert_array_equal(mdx, rmdx)
    np.testing.assert_array_equal(adx, radx)
    np.testing.assert_allclose(ao, rao, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel, stride, padding", [
    (3, 2, 1), (3, 1, 1), (3, 3, 0), (2, 1, 0), ((2, 3), (1, 2), (1, 1)), ((3, 1), (2, 1), 0)],
    ids=["3s2p1", "3s1p1", "3s3", "2s1", "2x3s1x2", "3x1s2x1"])
@pytest.mark.parametrize("shape", [(4, 3, 8, 10), (3, 2, 7, 9), (40, 3, 16, 31)],
                         ids=["even", "odd", "blocks"])
def test_the_general_window_loops_match_the_reference(kernel, stride, padding, shape, rng,
                                                       monkeypatch, threads):
    # the compiled max pooling for other windows (numba_pool: one window offset at a time
    # over whole rows, stride-2 rows split into column phases first, odd padded widths
    # too): the reference's values and offsets bit for bit with NaN (two in some
    # windows: the later one's offset), ties and signed zeros, and the gradient
    from normlab.functional import _parallel

    threads(2)
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 1024)
    x = rng.integers(-2, 3, shape).astype(np.float32)  # ties in most windows
    x.flat[::37] = np.nan
    x.flat[1::37] = np.nan
    x.flat[3::41] = -0.0
    got = {}
    for setting in ("compiled", "reference"):
        with normlab.kernels(setting):
            out, cache = F.max_pool2d_forward(x, kernel, stride, padding)
            dout = np.arange(out.size, dtype=np.float32).reshape(out.shape) - 7.0
            got[setting] = (out, cache.argmax, F.max_pool2d_backward(dout, cache))
    (out, argmax, dx), (rout, rargmax, rdx) = got["compiled"], got["reference"]
    assert np.isnan(out).any() and out.shape == rout.shape
    np.testing.assert_array_equal(out, rout)
    np.testing.assert_array_equal(np.signbit(out), np.signbit(rout))
    np.testing.assert_array_equal(argmax, rargmax)
    np.testing.assert_array_equal(dx, rdx)
