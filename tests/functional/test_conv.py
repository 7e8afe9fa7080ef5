"""conv1d/conv2d: fast vs loop reference, PyTorch parity, gradients, purity, dtypes, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import normlab
from normlab import functional as F
from normlab.functional import conv_naive as N
from normlab.gradcheck import numerical_gradient, rel_error

TIGHT = dict(rtol=1e-12, atol=1e-12)


@st.composite
def conv2d_configs(draw):
    groups = draw(st.integers(1, 3))
    cg, fg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    # Input at least as large as the dilated kernel after padding.
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 7))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 7))
    n = draw(st.integers(1, 2))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return dict(x=(n, cg * groups, h, w), w=(fg * groups, cg, kh, kw), bias=bias,
                kw=dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups),
                seed=seed)


def _arrays(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(cfg["x"])
    w = rng.standard_normal(cfg["w"])
    b = rng.standard_normal(cfg["w"][0]) if cfg["bias"] else None
    return rng, x, w, b


def _assert_grads_equal(got, want, **tol):
    for g, t in zip(got, want):
        if t is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, t, **tol)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=conv2d_configs())
def test_conv2d_fast_matches_loop_reference(cfg, kernels):
    rng, x, w, b = _arrays(cfg)
    out, cache = F.conv2d_forward(x, w, b, **cfg["kw"])
    ref, ref_cache = N.conv2d_forward_naive(x, w, b, **cfg["kw"])
    np.testing.assert_allclose(out, ref, **TIGHT)
    dout = rng.standard_normal(out.shape)
    _assert_grads_equal(F.conv2d_backward(dout, cache), N.conv2d_backward_naive(dout, ref_cache),
                        **TIGHT)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=conv2d_configs())
def test_conv1d_fast_matches_loop_reference(cfg, kernels):
    rng, x, w, b = _arrays(cfg)
    x, w = x[:, :, 0, :], w[:, :, 0, :]  # a slice of the 2D config: (N, C, L), (F, C/G, K)
    kw = {k: v[1] if isinstance(v, tuple) else v for k, v in cfg["kw"].items()}
    out, cache = F.conv1d_forward(x, w, b, **kw)
    ref, ref_cache = N.conv1d_forward_naive(x, w, b, **kw)
    np.testing.assert_allclose(out, ref, **TIGHT)
    dout = rng.standard_normal(out.shape)
    _assert_grads_equal(F.conv1d_backward(dout, cache), N.conv1d_backward_naive(dout, ref_cache),
                        **TIGHT)


TORCH_2D = [
    ((2, 3, 7, 6), (4, 3, 3, 3), dict()),
    ((2, 3, 7, 6), (4, 3, 3, 3), dict(stride=2, padding=1)),  # last window does not fit evenly
    ((1, 4, 9, 8), (6, 2, 3, 2), dict(stride=(2, 3), padding=(1, 2), dilation=(2, 1), groups=2)),
    ((3, 6, 5, 5), (6, 1, 3, 3), dict(padding=1, groups=6)),  # depthwise
    ((2, 2, 4, 5), (3, 2, 1, 1), dict(stride=2)),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xs, ws, kw", TORCH_2D)
def test_conv2d_matches_torch(xs, ws, kw, bias, rng, kernels):
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if bias else None
    out, cache = F.conv2d_forward(x, w, b, **kw)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    tout = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-7, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    tout.backward(torch.tensor(dout))
    want = (tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy() if bias else None)
    _assert_grads_equal(F.conv2d_backward(dout, cache), want, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=2, dilation=2),
                                dict(stride=3, groups=2)])
def test_conv1d_matches_torch(kw, rng, kernels):
    x, w, b = rng.standard_normal((2, 4, 11)), rng.standard_normal((6, 4 // kw.get("groups", 1), 3)), \
        rng.standard_normal(6)
    out, cache = F.conv1d_forward(x, w, b, **kw)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.conv1d(tx, tw, tb, **kw)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-7, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    tout.backward(torch.tensor(dout))
    _assert_grads_equal(F.conv1d_backward(dout, cache),
                        (tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()),
                        rtol=1e-7, atol=1e-12)


def test_conv2d_gradients_match_numerical(rng):
    x, w, b = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((4, 1, 3, 2)), \
        rng.standard_normal(4)
    kw = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    out, cache = F.conv2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = F.conv2d_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: F.conv2d_forward(v, w, b, **kw)[0],
                                            x, dout)) < 1e-6
    assert rel_error(dw, numerical_gradient(lambda v: F.conv2d_forward(x, v, b, **kw)[0],
                                            w, dout)) < 1e-6
    assert rel_error(db, numerical_gradient(lambda v: F.conv2d_forward(x, w, v, **kw)[0],
                                            b, dout)) < 1e-6


@pytest.mark.parametrize("fwd, bwd, xs, ws", [
    (F.conv2d_forward, F.conv2d_backward, (2, 2, 5, 5), (3, 2, 3, 3)),
    (F.conv1d_forward, F.conv1d_backward, (2, 2, 7), (3, 2, 3)),
    (N.conv2d_forward_naive, N.conv2d_backward_naive, (1, 2, 4, 4), (3, 2, 3, 3)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_inputs_not_mutated(fwd, bwd, xs, ws, dtype, rng, kernels):
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, ws[:1]))
    copies = [a.copy() for a in (x, w, b)]
    out, cache = fwd(x, w, b, padding=1)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout_copy = dout.copy()
    grads = bwd(dout, cache)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    for a, c in zip((x, w, b, dout), copies + [dout_copy]):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("fwd", [F.conv2d_forward, N.conv2d_forward_naive])
@pytest.mark.parametrize("xs, ws, kw, match", [
    ((3, 5, 5), (2, 3, 3, 3), {}, r"expected 4D input \(N, C, H, W\), got 3D input"),
    ((1, 3, 5, 5), (2, 3, 3), {}, r"expected 4D weight \(F, C/groups, KH, KW\), got \(2, 3, 3\)"),
    ((1, 4, 5, 5), (2, 3, 3, 3), {}, r"expected input with 3 channels .*got 4 channels"),
    ((1, 3, 2, 2), (2, 3, 3, 3), {}, r"expected a kernel no larger than the padded input, got "
                                     r"padded input size \(2, 2\)"),
    ((1, 3, 5, 5), (2, 3, 3, 3), dict(stride=0), r"expected positive stride, got stride=\(0, 0\)"),
    ((1, 3, 5, 5), (2, 3, 3, 3), dict(dilation=(1, -1)), r"expected positive dilation"),
    ((1, 3, 5, 5), (2, 3, 3, 3), dict(padding=-1), r"expected non-negative padding"),
    ((1, 3, 5, 5), (2, 1, 3, 3), dict(groups=2),
     r"expected in_channels and out_channels divisible by groups=2, got in_channels=3"),
    ((1, 4, 5, 5), (2, 2, 3, 3), dict(groups=0), r"expected groups to be a positive int"),
    ((1, 3, 5, 5), (2, 3, 3, 3), dict(stride=(1, 2, 3)),
     r"expected stride to be an int or a tuple of 2 ints"),
])
def test_conv2d_errors(fwd, xs, ws, kw, match):
    with pytest.raises(ValueError, match=match):
        fwd(np.zeros(xs), np.zeros(ws), **kw)


@pytest.mark.parametrize("tile", [4, 2, None], ids=["F(4x4)", "F(2x2)", "im2col"])
@pytest.mark.parametrize("bias,groups", [(True, 1), (False, 1), (True, 2)])
def test_overwrite_x_writes_the_same_bits_over_x(tile, bias, groups, rng, kernels):
    """``overwrite_x``: where the output has x's shape, it lands in x itself (each chunk's
    input is read before its output is written) and no cache comes back; the values are
    those of a new array."""
    from normlab.functional import _winograd

    x = rng.standard_normal((3, 8, 8, 8)).astype(np.float32)
    w = rng.standard_normal((8, 8 // groups, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32) if bias else None
    old_mode, old_tile = _winograd.use_winograd(tile is not None), _winograd.use_tile(tile or 2)
    try:
        want, cache = F.conv2d_forward(x, w, b, padding=1, groups=groups)
        assert cache.winograd == (tile is not None and groups == 1)
        got, none = F.conv2d_forward(x, w, b, padding=1, groups=groups, overwrite_x=True)
    finally:
        _winograd.use_winograd(old_mode)
        _winograd.use_tile(old_tile)
    assert got is x and none is None
    np.testing.assert_array_equal(got, want)


def test_overwrite_x_is_only_a_permission(rng):
    """Another output shape, a Fortran-ordered or a read-only x: a new array and a cache,
    and x keeps its values."""
    x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
    keep = x.copy()
    w6 = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    w4 = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    out, cache = F.conv2d_forward(x, w6, padding=1, overwrite_x=True)
    assert cache is not None and out.shape == (2, 6, 8, 8)
    read_only = x.copy()
    read_only.flags.writeable = False
    for other in (np.asfortranarray(x), read_only):
        out, cache = F.conv2d_forward(other, w4, padding=1, overwrite_x=True)
        assert cache is not None and out is not other
        np.testing.assert_array_equal(other, keep)
    np.testing.assert_array_equal(x, keep)
    with pytest.raises(TypeError, match="overwrite_x to be a bool, got 1"):
        F.conv2d_forward(x, w4, padding=1, overwrite_x=1)


@pytest.mark.parametrize("tile", [4, 2], ids=["F(4x4)", "F(2x2)"])
@pytest.mark.parametrize("two_pass", [False, True], ids=["one pass", "two passes"])
def test_overwrite_dout_writes_dx_over_dout_with_the_same_bits(tile, two_pass, rng,
                                                                monkeypatch, kernels):
    """``overwrite_dout``: a Winograd backward with as many input as output channels writes
    dx over dout (each chunk's dout is transformed for the last time first), over
    several chunks, in one pass or two; the gradients are those of a new array."""
    from normlab.functional import _winograd, _winograd_backward

    monkeypatch.setattr(_winograd, "CHUNK_BYTES", 1)  # one sample per chunk
    monkeypatch.setattr(_winograd_backward, "TWO_PASS_MIN_RATIO", 0.0 if two_pass else np.inf)
    x = rng.standard_normal((3, 8, 7, 9)).astype(np.float32)  # odd sizes: zero-extended dout
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    old_mode, old_tile = _winograd.use_winograd(True), _winograd.use_tile(tile)
    try:
        out, cache = F.conv2d_forward(x, w, padding=1, keep_transforms=False)
        assert cache.winograd
        dout = rng.standard_normal(out.shape).astype(np.float32)
        want = F.conv2d_backward(dout, cache)
        got = F.conv2d_backward(dout, cache, overwrite_dout=True)
    finally:
        _winograd.use_winograd(old_mode)
        _winograd.use_tile(old_tile)
    assert got[0] is dout
    for a, b in zip(got[:2], want[:2]):
        np.testing.assert_array_equal(a, b)


def test_overwrite_dout_is_only_a_permission(rng):
    """Another dx shape (more output channels), the im2col path (stride 2), a read-only
    dout, no dx wanted: a new dx (or None), and dout keeps its values."""
    from normlab.functional import _winograd

    x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
    w4 = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    w6 = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    old = _winograd.use_winograd(True)
    try:
        runs = []
        for w, stride, read_only, need_dx in ((w6, 1, False, True), (w4, 2, False, True),
                                              (w4, 1, True, True), (w4, 1, False, False)):
            out, cache = F.conv2d_forward(x, w, padding=1, stride=stride)
            dout = rng.standard_normal(out.shape).astype(np.float32)
            keep = dout.copy()
            dout.flags.writeable = not read_only
            dx = F.conv2d_backward(dout, cache, need_dx, overwrite_dout=True)[0]
            runs.append((cache.winograd, dx is None))
            assert dx is not dout
            np.testing.assert_array_equal(dout, keep)
    finally:
        _winograd.use_winograd(old)
    assert runs == [(True, False), (False, False), (True, False), (True, True)]
    with pytest.raises(TypeError, match="overwrite_dout to be a bool, got 1"):
        F.conv2d_backward(keep, cache, overwrite_dout=1)


def test_conv_errors_name_owner_and_types():
    with pytest.raises(ValueError, match=r"conv1d_forward: expected 3D input \(N, C, L\)"):
        F.conv1d_forward(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d_forward: expected bias of shape \(2,\), got \(3,\)"):
        F.conv2d_forward(np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3)), np.zeros(3))
    with pytest.raises(TypeError, match=r"expected a floating input, got dtype int64"):
        F.conv2d_forward(np.zeros((1, 3, 5, 5), dtype=np.int64), np.zeros((2, 3, 3, 3)))
    with pytest.raises(TypeError, match=r"expected padding to be an int or a tuple of 2 ints, "
                                        r"got str 'same'"):
        F.conv2d_forward(np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3)), padding="same")


@pytest.mark.gpu
def test_conv_and_pool_on_cupy_match_numpy(rng):
    from normlab import backend

    x, w, b = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 2, 3, 3)), \
        rng.standard_normal(6)
    kw = dict(stride=2, padding=1, groups=2)
    gpu = [backend.to_device(a, "cuda") for a in (x, w, b)]
    out, cache = F.conv2d_forward(x, w, b, **kw)
    out_g, cache_g = F.conv2d_forward(*gpu, **kw)
    np.testing.assert_allclose(backend.to_numpy(out_g), out, **TIGHT)
    dout = rng.standard_normal(out.shape)
    for g, c in zip(F.conv2d_backward(backend.to_device(dout, "cuda"), cache_g),
                    F.conv2d_backward(dout, cache)):
        np.testing.assert_allclose(backend.to_numpy(g), c, **TIGHT)
    for fwd, bwd in ((F.max_pool2d_forward, F.max_pool2d_backward),
                     (F.avg_pool2d_forward, F.avg_pool2d_backward)):
        for args in ((2,), (3, 2, 1)):
            o, c = fwd(x, *args)
            o_g, c_g = fwd(gpu[0], *args)
            np.testing.assert_allclose(backend.to_numpy(o_g), o, **TIGHT)
            d = rng.standard_normal(o.shape)
            np.testing.assert_allclose(backend.to_numpy(bwd(backend.to_device(d, "cuda"), c_g)),
                                       bwd(d, c), **TIGHT)


@pytest.mark.parametrize("few", [0, 10**6], ids=["per-sample", "one-gemm"])
@pytest.mark.parametrize("xs, ws, kw", [
    ((3, 4, 5, 5), (6, 2, 3, 3), dict(stride=2, padding=1, groups=2)),
    ((2, 3, 9, 7), (4, 3, 2, 3), dict(stride=(2, 1), padding=(0, 1), dilation=(2, 1))),
    ((4, 6, 4, 4), (8, 6, 1, 1), dict(stride=2)),
])
def test_conv2d_per_sample_and_whole_chunk_products_match_torch(few, xs, ws, kw, rng,
                                                                 monkeypatch, kernels):
    from normlab.functional import conv as conv_module

    monkeypatch.setattr(conv_module, "FEW_PIXELS", few)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    out, cache = F.conv2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = F.conv2d_backward(dout, cache)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ot = torch.nn.functional.conv2d(xt, wt, bt, **kw)
    ot.backward(torch.tensor(dout))
    for ours, theirs in ((out, ot), (dx, xt.grad), (dw, wt.grad), (db, bt.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-7, atol=1e-12)
    assert F.conv2d_backward(dout, cache, need_dx=False)[0] is None


@pytest.mark.parametrize("padding", [0, 1, (2, 0)])
def test_conv2d_padded_per_chunk_matches_torch_over_many_chunks(padding, rng, monkeypatch,
                                                                kernels):
    # each batch chunk is padded on its own (forward and backward) and its input gradient
    # cropped into dx: one sample per chunk, stride 2 (im2col), against torch in float64
    from normlab.functional import _kernels

    monkeypatch.setattr(_kernels, "CHUNK_BYTES", 1)
    x, w = rng.standard_normal((3, 4, 7, 6)), rng.standard_normal((5, 4, 3, 3))
    out, cache = F.conv2d_forward(x, w, None, stride=2, padding=padding)
    dout = rng.standard_normal(out.shape)
    dx, dw, _ = F.conv2d_backward(dout, cache)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ot = torch.nn.functional.conv2d(xt, wt, stride=2, padding=padding)
    ot.backward(torch.tensor(dout))
    for ours, theirs in ((out, ot), (dx, xt.grad), (dw, wt.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-7, atol=1e-12)
    assert cache.x is x  # the input itself, not a padded copy


def test_conv2d_empty_batch_gives_empty_gradients_and_zero_weight_gradient():
    x, w = np.zeros((0, 3, 5, 5)), np.ones((4, 3, 3, 3))
    out, cache = F.conv2d_forward(x, w, np.ones(4), padding=1)
    dx, dw, db = F.conv2d_backward(np.zeros(out.shape), cache)
    assert out.shape == (0, 4, 5, 5) and dx.shape == x.shape
    np.testing.assert_array_equal(dw, np.zeros(w.shape))
    np.testing.assert_array_equal(db, np.zeros(4))


@pytest.mark.parametrize("kernel, stride, dilation, out_hw", [
    ((5, 5), (1, 1), (1, 1), (10, 10)),  # LeNet's second conv
    ((7, 7), (1, 1), (1, 1), (8, 6)),
    ((3, 3), (2, 2), (1, 1), (5, 4)),
    ((3, 2), (1, 2), (2, 1), (4, 5)),
    ((5, 5), (2, 2), (1, 1), (3, 4)),  # stride 2: offsets in pairs, the last alone
    ((2, 4), (2, 2), (1, 2), (3, 3)),  # stride 2, dilated columns: one offset at a time
    ((3, 3), (3, 3), (1, 1), (3, 2)),  # any other stride
])
@pytest.mark.parametrize("sample_major", [False, True], ids=["contiguous", "transposed"])
def test_compiled_col2im_gives_the_reference_bits(kernel, stride, dilation, out_hw,
                                                   sample_major):
    """The numba col2im adds each pixel's contributions in the NumPy slice loop's order
    (kernel offsets outermost), on contiguous columns and on the few-pixels path's
    transposed view of sample-major ones: the same float32 bits."""
    pytest.importorskip("numba")
    from normlab.functional import _kernels

    rng = np.random.default_rng(11)
    n, C = 3, 4
    (KH, KW), (sh, sw), (dh, dw), (OH, OW) = kernel, stride, dilation, out_hw
    Hp, Wp = (OH - 1) * sh + (KH - 1) * dh + 1, (OW - 1) * sw + (KW - 1) * dw + 1
    cols = (rng.standard_normal((n, C * KH * KW, OH * OW)) * 10.0 ** rng.integers(
        -3, 4, (n, C * KH * KW, OH * OW))).astype(np.float32)
    if sample_major:  # (C*KH*KW, n, P) memory viewed as (n, C*KH*KW, P)
        cols = np.ascontiguousarray(cols.transpose(1, 0, 2)).transpose(1, 0, 2)
    results = {}
    for setting in ("reference", "compiled"):
        with normlab.kernels(setting):
            dx = np.zeros((n, C, Hp, Wp), np.float32)
            results[setting] = _kernels.col2im(cols, dx, kernel, out_hw, stride, dilation)
    np.testing.assert_array_equal(results["compiled"].view(np.uint32),
                                  results["reference"].view(np.uint32))


@pytest.mark.parametrize("kernel, stride, dilation, padding, groups", [
    ((3, 3), (1, 1), (1, 1), (1, 1), 1),  # ResNet's stem
    ((3, 3), (2, 2), (1, 1), (1, 1), 1),  # its stride-2 convs
    ((1, 1), (2, 2), (1, 1), (0, 0), 1),  # its projection shortcuts: no padding
    ((7, 7), (2, 2), (1, 1), (3, 3), 1),  # ResNet-18's stem
    ((1, 5), (1, 1), (1, 1), (2, 2), 1),  # _rowconv's one-row columns
    ((3, 2), (3, 1), (2, 3), (2, 0), 2),  # any stride and dilation, groups, uneven padding
    ((2, 3), (1, 3), (1, 1), (0, 4), 1),  # padding wider than the kernel reaches
])
@pytest.mark.parametrize("sample_major", [False, True], ids=["per-sample", "sample-major"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_columns_give_the_reference_bits(kernel, stride, dilation, padding, groups,
                                                  sample_major, dtype, threads):
    """``_kernels.columns`` (padding and im2col) copies the same values whether the
    compiled kernel pads one plane at a time or NumPy pads the batch and copies its
    windows: equal bits, signed zeros and NaN included, on one thread and on two."""
    pytest.importorskip("numba")
    from normlab.functional import _kernels

    rng = np.random.default_rng(13)
    n, C, H, W = 5, 4, 9, 8
    x = rng.standard_normal((n, C, H, W)).astype(dtype)
    x[0, 1, 2, 3], x[1, 0, 0, 0] = np.nan, -0.0
    (KH, KW), (sh, sw), (dh, dw), (ph, pw) = kernel, stride, dilation, padding
    out_hw = ((H + 2 * ph - dh * (KH - 1) - 1) // sh + 1,
              (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1)
    results = {}
    for setting, count in (("reference", 1), ("compiled", 1), ("compiled", 2)):
        threads(count)
        with normlab.kernels(setting):
            results[setting, count] = _kernels.columns(x, kernel, out_hw, padding, stride,
                                                       dilation, groups, sample_major)
    want = results["reference", 1]
    assert want.shape == ((groups, C // groups * KH * KW, n * out_hw[0] * out_hw[1])
                          if sample_major else (n, groups, C // groups * KH * KW,
                                                out_hw[0] * out_hw[1]))
    uint = np.uint32 if dtype == np.float32 else np.uint64
    for key in (("compiled", 1), ("compiled", 2)):
        assert results[key].shape == want.shape and results[key].dtype == want.dtype
        np.testing.assert_array_equal(results[key].view(uint), want.view(uint))


@pytest.mark.parametrize("kernel, stride, dilation, out_hw, padding", [
    ((5, 5), (1, 1), (1, 1), (10, 10), (2, 2)),
    ((7, 7), (1, 1), (1, 1), (8, 6), (3, 3)),
    ((3, 3), (2, 2), (1, 1), (5, 4), (1, 1)),
    ((3, 2), (1, 2), (2, 1), (4, 5), (2, 0)),
    ((3, 3), (1, 1), (1, 1), (4, 4), (0, 0)),
    ((5, 5), (2, 2), (1, 1), (4, 3), (2, 1)),
])
def test_compiled_col2im_into_gives_the_reference_bits_through_padding(
        kernel, stride, dilation, out_hw, padding):
    """The compiled col2im sums one padded plane at a time and writes its interior into
    ``dx``; the reference sums into a zeroed padded batch and crops: the same float32 bits,
    and every value of ``dx`` is overwritten (it starts as NaN here)."""
    pytest.importorskip("numba")
    from normlab.functional import _kernels

    rng = np.random.default_rng(12)
    n, C = 3, 4
    (KH, KW), (sh, sw), (dh, dw), (OH, OW), (ph, pw) = kernel, stride, dilation, out_hw, padding
    H = (OH - 1) * sh + (KH - 1) * dh + 1 - 2 * ph
    W = (OW - 1) * sw + (KW - 1) * dw + 1 - 2 * pw
    cols = (rng.standard_normal((n, C * KH * KW, OH * OW)) * 10.0 ** rng.integers(
        -3, 4, (n, C * KH * KW, OH * OW))).astype(np.float32)
    results = {}
    for setting in ("reference", "compiled"):
        with normlab.kernels(setting):
            dx = np.full((n, C, H, W), np.nan, np.float32)
            results[setting] = _kernels.col2im_into(cols, dx, padding, kernel, out_hw,
                                                    stride, dilation)
    assert not np.isnan(results["compiled"]).any()
    np.testing.assert_array_equal(results["compiled"].view(np.uint32),
                                  results["reference"].view(np.uint32))
