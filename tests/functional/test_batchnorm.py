"""normlab.functional.batchnorm: closed form, staged graph, eval mode, running stats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import normlab
from normlab import functional as F
from normlab.functional import batchnorm_stages
from normlab.gradcheck import numerical_gradient, rel_error

# (input shape, reduced axes): BatchNorm1d on (N, C) and (N, C, L), 2d, 3d.
SHAPES = [((6, 3), (0,)), ((4, 3, 5), (0, 2)), ((3, 2, 2, 3), (0, 2, 3)),
          ((2, 2, 3, 2, 2), (0, 2, 3, 4))]
SHAPE_IDS = ["2D", "3D", "4D", "5D"]


@pytest.fixture(autouse=True)
def bn_path(kernel_setting):
    """Run every test on the compiled numba kernels and on the reference xp path."""
    return kernel_setting


def test_compiled_path_is_taken_only_when_selected(bn_path):
    x = np.ones((2, 3, 4))
    for op in ("bn_moments", "bn_normalize_affine", "bn_grad_sums", "bn_grad_input",
               "bn_forward", "bn_backward"):
        chosen = batchnorm_stages._compiled(op, np, x, (0, 2))
        assert (chosen is not None) == (bn_path == "compiled")
        assert batchnorm_stages._compiled(op, np, x, (0,)) is None  # not BN's axes: reference
        assert batchnorm_stages._compiled(op, np, x.astype(np.float16), (0, 2)) is None


@pytest.mark.parametrize("shape,axes", SHAPES, ids=SHAPE_IDS)
def test_compiled_and_reference_paths_agree(rng, shape, axes):
    x, gamma, beta = _data(rng, shape)
    dout = rng.standard_normal(shape)
    results = []
    for setting in ("compiled", "reference"):
        with normlab.kernels(setting):
            out, cache = F.batch_norm_forward(x, gamma, beta, axes=axes)
            results.append((out, cache.x_hat, cache.inv_std, cache.mean, cache.var,
                            *F.batch_norm_backward(dout, cache)))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def _data(rng, shape, affine=True):
    C = shape[1]
    x = 3.0 * rng.standard_normal(shape) + 1.5
    gamma = rng.standard_normal(C) if affine else None
    beta = rng.standard_normal(C) if affine else None
    return x, gamma, beta


@pytest.mark.parametrize("shape,axes", SHAPES, ids=SHAPE_IDS)
def test_train_output_has_mean_beta_and_std_abs_gamma(rng, shape, axes):
    x, gamma, beta = _data(rng, shape)
    out, cache = F.batch_norm_forward(x, gamma, beta, axes=axes, eps=0.0 + 1e-12)
    np.testing.assert_allclose(out.mean(axis=axes), beta, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=axes), np.abs(gamma), rtol=1e-9)
    np.testing.assert_allclose(cache.mean, x.mean(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(cache.var, x.var(axis=axes), rtol=1e-12)
    assert cache.count == x.size // shape[1]


@pytest.mark.parametrize("shape,axes", SHAPES, ids=SHAPE_IDS)
def test_scale_and_shift_invariance(rng, shape, axes):
    """BN(a * x + b) == BN(x) for a > 0 (eps -> 0): the reason BN tolerates any init scale."""
    x, gamma, beta = _data(rng, shape)
    out, _ = F.batch_norm_forward(x, gamma, beta, axes=axes, eps=1e-12)
    scaled, _ = F.batch_norm_forward(7.5 * x - 3.0, gamma, beta, axes=axes, eps=1e-12)
    np.testing.assert_allclose(scaled, out, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape,axes", SHAPES, ids=SHAPE_IDS)
def test_staged_backward_equals_closed_form(rng, shape, axes, affine):
    x, gamma, beta = _data(rng, shape, affine)
    dout = rng.standard_normal(shape)
    _, cache = F.batch_norm_forward(x, gamma, beta, axes=axes)
    closed = F.batch_norm_backward(dout, cache)
    staged = F.batch_norm_backward_staged(dout, cache)
    for a, b in zip(closed, staged):
        if a is None:
            assert b is None
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape,axes", SHAPES, ids=SHAPE_IDS)
def test_matches_torch_train(rng, shape, axes, affine):
    x, gamma, beta = _data(rng, shape, affine)
    dout = rng.standard_normal(shape)
    out, cache = F.batch_norm_forward(x, gamma, beta, axes=axes, eps=1e-5)
    dx, dgamma, dbeta = F.batch_norm_backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True) if affine else None
    bt = torch.tensor(beta, requires_grad=True) if affine else None
    ot = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5)
    ot.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, ot.detach().numpy(), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7, atol=1e-12)
    if affine:
        np.testing.assert_allclose(dgamma, gt.grad.numpy(), rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(dbeta, bt.grad.numpy(), rtol=1e-7, atol=1e-12)
    else:
        assert dgamma is None and dbeta is None


@pytest.mark.parametrize("shape,axes", SHAPES, ids=SHAPE_IDS)
def test_eval_matches_torch_and_uses_only_running_stats(rng, shape, axes):
    x, gamma, beta = _data(rng, shape)
    C = shape[1]
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2.0, C)
    dout = rng.standard_normal(shape)
    out, cache = F.batch_norm_eval_forward(x, gamma, beta, rm, rv, axes=axes, eps=1e-5)
    dx, dgamma, dbeta = F.batch_norm_eval_backward(dout, cache)
    cs = (C,) + (1,) * (len(shape) - 2)
    expected = (x - rm.reshape(cs)) / np.sqrt(rv.reshape(cs) + 1e-5) * gamma.reshape(cs) \
        + beta.reshape(cs)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    ot = torch.nn.functional.batch_norm(xt, torch.tensor(rm), torch.tensor(rv), gt, bt,
                                        training=False, eps=1e-5)
    ot.backward(torch.tensor(dout))
    for ours, theirs in ((out, ot), (dx, xt.grad), (dgamma, gt.grad), (dbeta, bt.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("shape,axes", SHAPES, ids=SHAPE_IDS)
def test_gradients_match_numerical(rng, shape, axes):
    _, gamma, beta = _data(rng, shape)
    x = rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    _, cache = F.batch_norm_forward(x, gamma, beta, axes=axes)
    dx, dgamma, dbeta = F.batch_norm_backward(dout, cache)

    def f(x=x, gamma=gamma, beta=beta):
        return F.batch_norm_forward(x, gamma, beta, axes=axes)[0]

    assert rel_error(dx, numerical_gradient(lambda v: f(x=v), x, dout)) < 1e-7
    assert rel_error(dgamma, numerical_gradient(lambda v: f(gamma=v), gamma, dout)) < 1e-7
    assert rel_error(dbeta, numerical_gradient(lambda v: f(beta=v), beta, dout)) < 1e-7


def test_float32_large_mean_normalises_to_float64_accuracy(rng):
    """Mean 1e4, std 0.1 in float32 must normalise within 1e-3 of the float64 result.

    Measured max |error| (numpy 2.4, torch 2.13 CPU, these seeds): on (64, 8, 4, 4)
    normlab 1.2e-7 (compiled kernels, float64 accumulation) / 3.8e-7 (reference path, which
    subtracts one sample per channel before summing and keeps the mean in float64), torch
    float32 6.3e-3; on (256, 16) normlab 1.2e-7 / 1.5e-6, torch 1.4e-2, a plain float32
    two-pass mean/var 5.3e-2.
    """
    x = (1e4 + 0.1 * rng.standard_normal((64, 8, 4, 4))).astype(np.float32)
    out32, cache32 = F.batch_norm_forward(x, None, None, axes=(0, 2, 3))
    out64, _ = F.batch_norm_forward(x.astype(np.float64), None, None, axes=(0, 2, 3))
    assert out32.dtype == np.float32 and cache32.var.dtype == np.float32
    assert np.max(np.abs(out32 - out64)) < 1e-3
    x2 = (1e4 + 0.1 * rng.standard_normal((256, 16))).astype(np.float32)
    out32, _ = F.batch_norm_forward(x2, None, None, axes=(0,))
    out64, _ = F.batch_norm_forward(x2.astype(np.float64), None, None, axes=(0,))
    assert np.max(np.abs(out32 - out64)) < 1e-3


def test_float32_large_mean_gradients_match_float64(rng, bn_path):
    """The backward recomputes x_hat from the kept input: with mean 1e4 and std 0.1 in
    float32 the difference x - mean must still be taken without losing digits.

    Measured max |error| / max |value| (these seeds): compiled 5.6e-8 (dx), 1.3e-8,
    1.7e-8; reference 1.1e-7, 1.2e-7, 1.5e-7.
    """
    x = (1e4 + 0.1 * rng.standard_normal((64, 8, 4, 4))).astype(np.float32)
    g = rng.uniform(0.5, 1.5, 8).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    _, c32 = F.batch_norm_forward(x, g, b, axes=(0, 2, 3))
    _, c64 = F.batch_norm_forward(x.astype(np.float64), g.astype(np.float64),
                                  b.astype(np.float64), axes=(0, 2, 3))
    got = F.batch_norm_backward(dout, c32)
    want = F.batch_norm_backward(dout.astype(np.float64), c64)
    for a, w in zip(got, want):
        assert a.dtype == np.float32
        assert np.max(np.abs(a - w)) < 1e-5 * np.max(np.abs(w))
    assert np.max(np.abs(c32.x_hat - c64.x_hat)) < 1e-5


@pytest.mark.parametrize("shape,axes", SHAPES, ids=SHAPE_IDS)
def test_training_cache_keeps_the_input_and_per_channel_statistics_only(rng, shape, axes,
                                                                        bn_path):
    """Like PyTorch: the input by reference plus (C,) statistics, no normalised copy;
    ``x_hat`` is recomputed on reading."""
    x, gamma, beta = _data(rng, shape)
    _, cache = F.batch_norm_forward(x, gamma, beta, axes=axes)
    assert cache.x is x
    C = shape[1]
    for name, v in cache._asdict().items():
        if name != "x" and isinstance(v, np.ndarray):
            assert v.size <= C, name
    want = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(
        x.var(axis=axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(cache.x_hat, want, rtol=1e-12, atol=1e-12)
    assert cache.x_hat is not cache.x_hat  # a fresh array each time


def test_float32_in_float32_out(rng):
    x = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
    g, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    out, cache = F.batch_norm_forward(x, g, b, axes=(0, 2, 3))
    grads = F.batch_norm_backward(np.ones_like(out), cache)
    eval_out, eval_cache = F.batch_norm_eval_forward(x, g, b, np.zeros(3, np.float32),
                                                     np.ones(3, np.float32), axes=(0, 2, 3))
    eval_grads = F.batch_norm_eval_backward(np.ones_like(out), eval_cache)
    for a in (out, eval_out, *grads, *eval_grads):
        assert a.dtype == np.float32


def test_inputs_not_mutated(rng):
    x, gamma, beta = _data(rng, (4, 3, 2))
    dout = rng.standard_normal(x.shape)
    copies = [a.copy() for a in (x, gamma, beta, dout)]
    _, cache = F.batch_norm_forward(x, gamma, beta, axes=(0, 2))
    F.batch_norm_backward(dout, cache)
    F.batch_norm_backward_staged(dout, cache)
    for a, c in zip((x, gamma, beta, dout), copies):
        np.testing.assert_array_equal(a, c)


def test_empty_batch_gives_empty_output_without_warnings():
    x = np.zeros((0, 3, 2, 2), dtype=np.float32)
    out, cache = F.batch_norm_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32),
                                      axes=(0, 2, 3))
    dx, dgamma, dbeta = F.batch_norm_backward(np.zeros_like(out), cache)
    assert out.shape == x.shape and dx.shape == x.shape and cache.count == 0
    np.testing.assert_array_equal(dgamma, np.zeros(3))
    np.testing.assert_array_equal(dbeta, np.zeros(3))


def test_channel_axis_in_axes_raises(rng):
    with pytest.raises(ValueError, match=r"batch_\w+: expected reduced axes that exclude the "
                                         r"channel axis 1.*got axes=\(0, 1\)"):
        F.batch_norm_forward(rng.standard_normal((4, 3)), None, None, axes=(0, 1))


# ------------------------------------------------------------------ running statistics
def test_update_running_stats_momentum_weighs_new_statistic():
    rm, rv = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    bm, bv = np.array([5.0, 6.0]), np.array([0.5, 1.0])
    new_m, new_v = F.update_running_stats(rm, rv, bm, bv, 5, 0.1, 1)
    np.testing.assert_allclose(new_m, 0.9 * rm + 0.1 * bm, rtol=1e-15)
    np.testing.assert_allclose(new_v, 0.9 * rv + 0.1 * bv * 5 / 4, rtol=1e-15)
    np.testing.assert_array_equal(rm, [1.0, 2.0])  # pure


def test_update_running_stats_momentum_none_is_cumulative_average(rng):
    rm, rv = np.zeros(3), np.ones(3)
    means = [rng.standard_normal(3) for _ in range(4)]
    vars_ = [rng.uniform(0.5, 2.0, 3) for _ in range(4)]
    for n, (bm, bv) in enumerate(zip(means, vars_), start=1):
        rm, rv = F.update_running_stats(rm, rv, bm, bv, 10, None, n)
    np.testing.assert_allclose(rm, np.mean(means, axis=0), rtol=1e-12)
    np.testing.assert_allclose(rv, np.mean(vars_, axis=0) * 10 / 9, rtol=1e-12)


def test_update_running_stats_empty_batch_keeps_stats_and_dtype():
    rm, rv = np.full(2, 0.5, np.float32), np.full(2, 2.0, np.float32)
    new_m, new_v = F.update_running_stats(rm, rv, np.zeros(2, np.float32),
                                          np.zeros(2, np.float32), 0, 0.1, 1)
    np.testing.assert_array_equal(new_m, rm)
    np.testing.assert_array_equal(new_v, rv)
    new_m, new_v = F.update_running_stats(rm, rv, np.ones(2, np.float32),
                                          np.ones(2, np.float32), 4, 0.1, 1)
    assert new_m.dtype == np.float32 and new_v.dtype == np.float32


def test_update_running_stats_rejects_bad_counts():
    z = np.zeros(2)
    with pytest.raises(ValueError, match="update_running_stats: expected more than 1 value "
                                         "per statistic, got count=1"):
        F.update_running_stats(z, z, z, z, 1, 0.1, 1)
    with pytest.raises(ValueError, match=r"expected num_batches_tracked >= 1 \(incremented "
                                         r"before the update\) for momentum=None, got 0"):
        F.update_running_stats(z, z, z, z, 4, None, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eval_forward_keeps_only_the_input_and_both_kernel_paths_agree(rng, dtype):
    import normlab

    x = rng.standard_normal((4, 3, 5, 2)).astype(dtype)
    g, b = rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)
    rm, rv = rng.standard_normal(3).astype(dtype), rng.uniform(0.5, 2, 3).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    got = {}
    for setting in ("compiled", "reference"):
        with normlab.kernels(setting):
            out, cache = F.batch_norm_eval_forward(x, g, b, rm, rv, axes=(0, 2, 3))
            assert cache.x is x  # no normalised copy: backward recomputes x_hat
            got[setting] = (out, *F.batch_norm_eval_backward(dout, cache))
    for a, r in zip(got["compiled"], got["reference"]):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, r, rtol=1e-6 if dtype == np.float32 else 1e-14,
                                   atol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("shape,axes", [((6, 4, 3, 5), (0, 2, 3)), ((7, 5), (0,))])
def test_backward_overwrite_dout_gives_the_same_bits(rng, shape, axes, bn_path):
    """``overwrite_dout``: the compiled pass writes dx over dout (after the sums have read
    it), the reference returns a new array; the gradients are those without it."""
    x = rng.standard_normal(shape).astype(np.float32)
    gamma, beta = rng.standard_normal((2, shape[1])).astype(np.float32)
    _, cache = F.batch_norm_forward(x, gamma, beta, axes=axes)
    dout = rng.standard_normal(shape).astype(np.float32)
    want = F.batch_norm_backward(dout, cache)
    got = F.batch_norm_backward(dout, cache, overwrite_dout=True)
    assert (got[0] is dout) == (bn_path == "compiled")
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_backward_overwrite_dout_is_only_a_permission(rng, bn_path):
    """A read-only, a strided or a float64 dout (float32 forward): a new dx, dout intact."""
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    _, cache = F.batch_norm_forward(x, None, None, axes=(0, 2))
    dout = rng.standard_normal(x.shape).astype(np.float32)
    want = F.batch_norm_backward(dout, cache)[0]
    read_only = dout.copy()
    read_only.flags.writeable = False
    for other in (read_only, np.repeat(dout, 2, axis=2)[:, :, ::2], dout.astype(np.float64)):
        keep = other.copy()
        got = F.batch_norm_backward(other, cache, overwrite_dout=True)[0]
        assert got is not other and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(other, keep)
    with pytest.raises(TypeError, match="overwrite_dout to be a bool, got None"):
        F.batch_norm_backward(dout, cache, overwrite_dout=None)
