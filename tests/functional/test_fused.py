"""normlab.functional.fused: eval batch norm (+ residual) + ReLU in one pass equals the ops
run one after another, bit for bit, on the compiled kernel and on the reference path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import normlab
from normlab import functional as F
from normlab.errors import ShapeError
from normlab.functional import fused


def _params(rng, C, dtype, gamma=True, beta=True):
    g = rng.standard_normal(C).astype(dtype) if gamma else None
    b = rng.standard_normal(C).astype(dtype) if beta else None
    return g, b, rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2, C).astype(dtype)


ACT = {"relu": (F.relu_forward, F.relu_backward),
       "sigmoid": (F.sigmoid_forward, F.sigmoid_backward)}


def _composed(x, g, b, rm, rv, axes, residual, mode="eval", activation="relu"):
    if mode == "eval":
        y, bn_cache = F.batch_norm_eval_forward(x, g, b, rm, rv, axes=axes)
    else:
        y, bn_cache = F.batch_norm_forward(x, g, b, axes=axes)
    if residual is not None:
        y = y + residual
    out, act_cache = ACT[activation][0](y)
    return out, bn_cache, act_cache


def _fused(x, g, b, rm, rv, axes, residual, mode="eval", activation="relu"):
    if mode == "eval":
        return fused.batch_norm_eval_act_forward(x, g, b, rm, rv, axes=axes,
                                                 activation=activation, residual=residual)
    return fused.batch_norm_act_forward(x, g, b, axes=axes, activation=activation,
                                        residual=residual)


BACKWARD = {"eval": (fused.batch_norm_eval_act_backward, F.batch_norm_eval_backward),
            "train": (fused.batch_norm_act_backward, F.batch_norm_backward)}


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("setting", ["compiled", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, True), (False, False)],
                         ids=["gamma-beta", "gamma", "beta", "none"])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (40, 3, 16, 30), (7, 5), (3, 4, 9)],
                         ids=["4D", "4D-blocks", "2D", "3D"])
def test_fused_equals_the_separate_ops_bit_for_bit(activation, mode, setting, dtype,
                                                   residual, affine, shape, rng, monkeypatch,
                                                   threads):
    # 4D-blocks: the kernel on parts of the batch on normlab's 2 threads; the sigmoid's
    # blocks made small, so that every shape is cut into several
    from normlab.functional import _parallel
    from normlab.functional.compiled import numba_sigmoid

    threads(2)
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 1024)
    monkeypatch.setattr(numba_sigmoid, "SIGMOID_BLOCK", 64)
    axes = (0,) + tuple(range(2, len(shape)))
    x = rng.standard_normal(shape).astype(dtype)
    if mode == "eval":  # (training statistics of a channel with NaN or inf are NaN)
        x.flat[:6] = [np.nan, -0.0, 0.0, np.inf, -np.inf, 1e-30]
    else:  # zeros after the normalisation, of both signs, meet the residual and ReLU
        x[:, 0] = 1.5
    r = rng.standard_normal(shape).astype(dtype) if residual else None
    g, b, rm, rv = _params(rng, shape[1], dtype, *affine)
    dout = rng.standard_normal(shape).astype(dtype)
    with normlab.kernels(setting), np.errstate(invalid="ignore"):  # inf * 0 in dgamma
        out, cache = _fused(x, g, b, rm, rv, axes, r, mode, activation)
        ref, bn_cache, act_cache = _composed(x, g, b, rm, rv, axes, r, mode, activation)
        fused_backward, bn_backward = BACKWARD[mode]
        grads = fused_backward(dout, cache)
        dsum = ACT[activation][1](dout, act_cache)
        ref_grads = bn_backward(dsum, bn_cache) + ((dsum if residual else None),)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, ref)  # NaN where NaN, bit for bit otherwise
    np.testing.assert_array_equal(np.signbit(out), np.signbit(ref))
    for got, want in zip(grads, ref_grads):
        assert (got is None) == (want is None)
        if got is not None:
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode,activation,op,kernel,kwargs", [
    ("eval", "relu", "bn_eval_affine", "numba_elementwise.bn_eval_affine",
     ["out", "relu", "residual"]),
    ("eval", "sigmoid", "bn_eval_sigmoid", "numba_sigmoid.bn_eval_sigmoid", ["out"]),
    ("train", "relu", "bn_forward", "numba_bn.forward", ["relu", "residual"]),
    ("train", "sigmoid", "bn_normalize_sigmoid", "numba_bn.normalize_sigmoid", [])])
def test_the_compiled_kernel_does_the_whole_op(mode, activation, op, kernel, kwargs, rng,
                                               kernel_setting):
    import importlib

    from normlab.functional import dispatch

    module, name = kernel.split(".")
    real = getattr(importlib.import_module(f"normlab.functional.compiled.{module}"), name)
    calls = []
    dispatch.register(op, "numpy", lambda *a, **k: calls.append(sorted(k)) or real(*a, **k))
    try:
        x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
        g, b, rm, rv = _params(rng, 3, np.float32)
        # relu: the residual goes into the kernel; sigmoid: its kernel takes none
        _fused(x, g, b, rm, rv, (0, 2, 3), x.copy() if activation == "relu" else None, mode,
               activation)
    finally:
        dispatch.register(op, "numpy", real)
    assert calls == ([kwargs] if kernel_setting == "compiled" else [])


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_strided_or_mixed_dtype_residual_falls_back_to_the_separate_ops(mode, rng):
    x = rng.standard_normal((4, 3, 5, 6)).astype(np.float32)
    g, b, rm, rv = _params(rng, 3, np.float32)
    for r in (rng.standard_normal((4, 3, 5, 12)).astype(np.float32)[..., ::2],
              rng.standard_normal((4, 3, 5, 6))):
        out, _ = _fused(x, g, b, rm, rv, (0, 2, 3), r, mode)
        ref = _composed(x, g, b, rm, rv, (0, 2, 3), r, mode)[0]
        assert out.dtype == ref.dtype
        np.testing.assert_array_equal(out, ref)


def test_matches_torch_at_float64(rng):  # eval, then training with gradients
    x = rng.standard_normal((6, 4, 5, 5))
    r = rng.standard_normal(x.shape)
    g, b, rm, rv = _params(rng, 4, np.float64)
    out, _ = fused.batch_norm_eval_act_forward(x, g, b, rm, rv, axes=(0, 2, 3), eps=1e-3,
                                                residual=r)
    t = [torch.from_numpy(a) for a in (x, rm, rv, g, b, r)]
    want = torch.relu(torch.nn.functional.batch_norm(t[0], t[1], t[2], t[3], t[4],
                                                     training=False, eps=1e-3) + t[5])
    np.testing.assert_allclose(out, want.numpy(), rtol=1e-12, atol=1e-14)
    out, cache = fused.batch_norm_act_forward(x, g, b, axes=(0, 2, 3), eps=1e-3, residual=r)
    t = [torch.from_numpy(a).requires_grad_() for a in (x, g, b, r)]
    want = torch.relu(torch.nn.functional.batch_norm(t[0], None, None, t[1], t[2],
                                                     training=True, eps=1e-3) + t[3])
    np.testing.assert_allclose(out, want.detach().numpy(), rtol=1e-12, atol=1e-14)
    dout = rng.standard_normal(x.shape)
    want.backward(torch.from_numpy(dout))
    for got, ref in zip(fused.batch_norm_act_backward(dout, cache), t):
        np.testing.assert_allclose(got, ref.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_a_residual_of_another_shape_is_refused_with_a_clear_error(rng):
    x = rng.standard_normal((4, 3, 5, 6))
    g, b, rm, rv = _params(rng, 3, np.float64)
    with pytest.raises(ShapeError, match=r"expected a residual of x's shape \(4, 3, 5, 6\)"):
        fused.batch_norm_eval_act_forward(x, g, b, rm, rv, axes=(0, 2, 3),
                                           residual=np.ones((4, 3, 5, 1)))
    with pytest.raises(ValueError, match="batch_norm_eval_act_forward"):
        fused.batch_norm_eval_act_forward(x, g, b, rm[:2], rv, axes=(0, 2, 3))
    with pytest.raises(ShapeError, match=r"expected a residual of x's shape"):
        fused.batch_norm_act_forward(x, g, b, axes=(0, 2, 3), residual=x[:2])
    with pytest.raises(ValueError, match=r"expected activation to be one of \['relu', "
                                         r"'sigmoid'\], got 'tanh'"):
        fused.batch_norm_act_forward(x, g, b, axes=(0, 2, 3), activation="tanh")
    with pytest.raises(ValueError, match=r"expected activation to be one of .*got \['relu'\]"):
        fused.batch_norm_eval_act_forward(x, g, b, rm, rv, axes=(0, 2, 3), activation=["relu"])
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        fused.batch_norm_act_forward(x[:1, :, :1, :1], g, b, axes=(0, 2, 3))


@pytest.mark.gpu
def test_cuda_matches_cpu(rng):
    from normlab import backend

    x = rng.standard_normal((4, 3, 5, 6))
    r = rng.standard_normal(x.shape)
    g, b, rm, rv = _params(rng, 3, np.float64)
    ref, _ = fused.batch_norm_eval_act_forward(x, g, b, rm, rv, axes=(0, 2, 3), residual=r)
    dev = [backend.to_device(a, "cuda") for a in (x, g, b, rm, rv, r)]
    out, cache = fused.batch_norm_eval_act_forward(*dev[:5], axes=(0, 2, 3), residual=dev[5])
    dx = fused.batch_norm_eval_act_backward(backend.to_device(np.ones_like(x), "cuda"), cache)
    assert backend.device_of(out) == "cuda" and backend.device_of(dx[0]) == "cuda"
    np.testing.assert_allclose(backend.to_numpy(out), ref, rtol=1e-12)


@pytest.mark.parametrize("activation,residual", [("relu", False), ("relu", True),
                                                 ("sigmoid", False)])
def test_overwrite_x_writes_the_same_bits_into_x(activation, residual, rng):
    """``overwrite_x``: where a compiled pass runs, the result lands in ``x`` itself (and
    no cache is returned); the values are those of a new array."""
    pytest.importorskip("numba")
    x = rng.standard_normal((4, 3, 5, 6)).astype(np.float32)
    gamma, beta, mean = (rng.standard_normal(3).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.5, 2.0, 3).astype(np.float32)
    r = rng.standard_normal(x.shape).astype(np.float32) if residual else None
    args = (gamma, beta, mean, var)
    kw = dict(axes=(0, 2, 3), activation=activation, residual=r)
    want, cache = F.fused.batch_norm_eval_act_forward(x, *args, **kw)
    assert cache is not None and not np.shares_memory(want, x)
    got, none = F.fused.batch_norm_eval_act_forward(x, *args, **kw, overwrite_x=True)
    assert got is x and none is None
    np.testing.assert_array_equal(got, want)


def test_overwrite_x_is_only_a_permission(rng):
    """Where no compiled pass applies (the reference kernels, a read-only x, a residual
    of another dtype), a new array and a cache come back and x is untouched."""
    x = rng.standard_normal((4, 3, 5, 6)).astype(np.float32)
    keep = x.copy()
    args = (None, None, np.zeros(3, np.float32), np.ones(3, np.float32))
    with normlab.kernels("reference"):
        out, cache = F.fused.batch_norm_eval_act_forward(x, *args, axes=(0, 2, 3),
                                                         overwrite_x=True)
    assert cache is not None and out is not x
    ro = x.copy()
    ro.flags.writeable = False
    out, cache = F.fused.batch_norm_eval_act_forward(ro, *args, axes=(0, 2, 3),
                                                     overwrite_x=True)
    assert cache is not None and out is not ro
    out, cache = F.fused.batch_norm_eval_act_forward(
        x, *args, axes=(0, 2, 3), residual=np.ones(x.shape), overwrite_x=True)
    assert cache is not None and out.dtype == np.float64
    np.testing.assert_array_equal(x, keep)
    with pytest.raises(TypeError, match="overwrite_x to be a bool, got 'yes'"):
        F.fused.batch_norm_eval_act_forward(x, *args, axes=(0, 2, 3), overwrite_x="yes")
