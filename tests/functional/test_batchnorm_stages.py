"""normlab.functional.batchnorm_stages: moments as values, merge, forward from moments,
the backward split into reduce and elementwise stages."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import normlab
from normlab import functional as F
from normlab.functional import fused
from normlab.gradcheck import numerical_gradient, rel_error

SHAPES = [((12, 3), (0,)), ((11, 3, 5), (0, 2)), ((13, 2, 3, 2), (0, 2, 3))]
SHAPE_IDS = ["2D", "3D", "4D"]
# Cut points along N: a 2-way and 3-way split of uneven sizes, and one with an empty part
# (a SyncBN rank may hold no samples).
SPLITS = [(5,), (2, 7), (0, 4)]
SPLIT_IDS = ["2-way", "3-way", "3-way-empty"]


@pytest.fixture(autouse=True)
def bn_path(kernel_setting):
    """Run every test on the compiled numba kernels and on the reference xp path."""
    return kernel_setting


def _parts(x, cuts):
    return np.split(x, list(cuts), axis=0)


def _staged(x, gamma, beta, dout, axes, cuts):
    """The SyncBN recipe with the communication done by hand: per part moments, merge,
    forward from the merged moments, reduce per part, sum, elementwise with the global count."""
    xs, ds = _parts(x, cuts), _parts(dout, cuts)
    merged = F.merge_moments([F.batch_moments(p, axes) for p in xs])
    fwd = [F.batch_norm_forward_from_moments(p, gamma, beta, merged, axes=axes) for p in xs]
    sums = [F.batch_norm_backward_reduce(d, c) for d, (_, c) in zip(ds, fwd)]
    sum_dy = sum(s[0] for s in sums)
    sum_dy_xhat = sum(s[1] for s in sums)
    dxs = [F.batch_norm_backward_elementwise(d, c, sum_dy, sum_dy_xhat, merged.count)
           for d, (_, c) in zip(ds, fwd)]
    out = np.concatenate([o for o, _ in fwd], axis=0)
    return out, np.concatenate(dxs, axis=0), sum_dy_xhat, sum_dy, merged


# ------------------------------------------------------------------ batch_moments
@pytest.mark.parametrize("shape,axes", SHAPES, ids=SHAPE_IDS)
def test_batch_moments_are_mean_biased_var_and_count(rng, shape, axes):
    x = 2.0 * rng.standard_normal(shape) - 1.0
    m = F.batch_moments(x, axes)
    assert isinstance(m, F.Moments) and isinstance(m.count, int)
    assert m.count == x.size // shape[1]
    np.testing.assert_allclose(m.mean, x.mean(axis=axes), rtol=1e-13)
    np.testing.assert_allclose(m.var, x.var(axis=axes), rtol=1e-12)


def test_batch_moments_of_empty_input_are_zero_with_count_zero():
    m = F.batch_moments(np.zeros((0, 3, 2), np.float32), (0, 2))  # warnings are errors
    assert m.count == 0
    np.testing.assert_array_equal(m.mean, np.zeros(3))
    np.testing.assert_array_equal(m.var, np.zeros(3))


def test_batch_moments_float32_large_mean_stay_exact(rng):
    """Mean 1e4, std 0.1 in float32: statistics as accurate as from the float64 copy."""
    x = (1e4 + 0.1 * rng.standard_normal((256, 8, 4, 4))).astype(np.float32)
    m32 = F.batch_moments(x, (0, 2, 3))
    m64 = F.batch_moments(x.astype(np.float64), (0, 2, 3))
    assert m32.mean.dtype == np.float64  # statistics kept in float64 for float32 data
    assert np.max(np.abs(m32.mean - m64.mean)) < 1e-6  # 1e-5 std
    np.testing.assert_allclose(m32.var, m64.var, rtol=1e-4)
    # normalising with moments merged from two halves keeps the same accuracy
    merged = F.merge_moments([F.batch_moments(p, (0, 2, 3)) for p in _parts(x, (100,))])
    out32, cache = F.batch_norm_forward_from_moments(x, None, None, merged, axes=(0, 2, 3))
    out64, _ = F.batch_norm_forward(x.astype(np.float64), None, None, axes=(0, 2, 3))
    assert out32.dtype == np.float32 and cache.mean.dtype == np.float32
    assert np.max(np.abs(out32 - out64)) < 1e-3


def test_batch_moments_rejects_channel_axis(rng):
    with pytest.raises(ValueError, match=r"batch_\w+: expected reduced axes that exclude "
                                         r"the channel axis 1.*got axes=\(1,\)"):
        F.batch_moments(rng.standard_normal((4, 3)), (1,))


# ------------------------------------------------------------------ merge_moments
def test_merge_uneven_counts_equals_moments_of_union(rng):
    a, b = rng.standard_normal((5, 4)) + 3.0, 2.0 * rng.standard_normal((8, 4))
    merged = F.merge_moments([F.batch_moments(a, (0,)), F.batch_moments(b, (0,))])
    both = np.concatenate([a, b])
    assert merged.count == 13
    np.testing.assert_allclose(merged.mean, both.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(merged.var, both.var(axis=0), rtol=1e-12, atol=1e-12)


def test_merge_of_one_is_itself(rng):
    m = F.batch_moments(rng.standard_normal((6, 3)), (0,))
    merged = F.merge_moments([m])
    assert merged.count == m.count
    np.testing.assert_array_equal(merged.mean, m.mean)
    np.testing.assert_array_equal(merged.var, m.var)


def test_merge_ignores_zero_counts(rng):
    a, b = rng.standard_normal((3, 2)), rng.standard_normal((7, 2))
    ma, mb = F.batch_moments(a, (0,)), F.batch_moments(b, (0,))
    empty = F.batch_moments(np.zeros((0, 2)), (0,))
    with_empty = F.merge_moments([empty, ma, empty, mb])
    without = F.merge_moments([ma, mb])
    assert with_empty.count == 10
    np.testing.assert_array_equal(with_empty.mean, without.mean)
    np.testing.assert_array_equal(with_empty.var, without.var)
    alone = F.merge_moments([empty, ma])
    np.testing.assert_array_equal(alone.mean, ma.mean)


def test_merge_of_only_zero_counts_is_zero():
    empty = F.Moments(np.full(3, np.nan), np.full(3, np.nan), 0)  # values of empty sets unused
    merged = F.merge_moments([empty, empty])
    assert merged.count == 0
    np.testing.assert_array_equal(merged.mean, np.zeros(3))
    np.testing.assert_array_equal(merged.var, np.zeros(3))


def test_merge_is_order_independent(rng):
    parts = [rng.standard_normal((n, 3)) * (i + 1) + i for i, n in enumerate((2, 9, 4))]
    ms = [F.batch_moments(p, (0,)) for p in parts]
    ref = F.merge_moments(ms)
    for perm in itertools.permutations(ms):
        m = F.merge_moments(perm)
        assert m.count == ref.count
        np.testing.assert_allclose(m.mean, ref.mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(m.var, ref.var, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 9), min_size=1, max_size=5),
       seed=st.integers(0, 2**32 - 1), offset=st.floats(-1e3, 1e3))
def test_merge_of_any_split_equals_moments_of_the_whole(sizes, seed, offset):
    rng = np.random.default_rng(seed)
    parts = [offset + rng.standard_normal((n, 2, 3)) * rng.uniform(0.1, 10) for n in sizes]
    merged = F.merge_moments([F.batch_moments(p, (0, 2)) for p in parts])
    whole = np.concatenate(parts)
    assert merged.count == whole.size // 2
    if merged.count == 0:
        np.testing.assert_array_equal(merged.mean, np.zeros(2))
        np.testing.assert_array_equal(merged.var, np.zeros(2))
        return
    scale = 1.0 + abs(offset)
    np.testing.assert_allclose(merged.mean, whole.mean(axis=(0, 2)), rtol=1e-12,
                               atol=1e-12 * scale)
    np.testing.assert_allclose(merged.var, whole.var(axis=(0, 2)), rtol=1e-10,
                               atol=1e-12 * scale ** 2)


def test_merge_rejects_bad_input():
    m = F.Moments(np.zeros(3), np.ones(3), 4)
    with pytest.raises(ValueError, match="merge_moments: expected at least one Moments, got "
                                         "an empty sequence"):
        F.merge_moments([])
    with pytest.raises(ValueError, match=r"merge_moments: expected statistics of one shape "
                                         r"\(C,\), got shapes \[\(2,\), \(3,\)\]"):
        F.merge_moments([m, F.Moments(np.zeros(2), np.ones(2), 4)])
    with pytest.raises(ValueError, match=r"merge_moments: expected counts >= 0, got \[4, -1\]"):
        F.merge_moments([m, F.Moments(np.zeros(3), np.ones(3), -1)])


# ------------------------------------------------------------------ split == one call
@pytest.mark.parametrize("cuts", SPLITS, ids=SPLIT_IDS)
@pytest.mark.parametrize("shape,axes", SHAPES, ids=SHAPE_IDS)
def test_split_batch_through_stages_equals_one_call(rng, shape, axes, cuts):
    C = shape[1]
    x = 3.0 * rng.standard_normal(shape) + 1.5
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    dout = rng.standard_normal(shape)
    out, cache = F.batch_norm_forward(x, gamma, beta, axes=axes)
    dx, dgamma, dbeta = F.batch_norm_backward(dout, cache)
    s_out, s_dx, s_dgamma, s_dbeta, merged = _staged(x, gamma, beta, dout, axes, cuts)
    assert merged.count == cache.count
    for ours, ref in ((s_out, out), (s_dx, dx), (s_dgamma, dgamma), (s_dbeta, dbeta),
                      (merged.mean, cache.mean), (merged.var, cache.var)):
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cuts", SPLITS, ids=SPLIT_IDS)
def test_split_stages_gradients_match_numerical(rng, cuts):
    shape, axes = (11, 3, 4), (0, 2)
    x = rng.standard_normal(shape)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    dout = rng.standard_normal(shape)
    _, dx, dgamma, dbeta, _ = _staged(x, gamma, beta, dout, axes, cuts)

    def f(x=x, gamma=gamma, beta=beta):
        return _staged(x, gamma, beta, dout, axes, cuts)[0]

    assert rel_error(dx, numerical_gradient(lambda v: f(x=v), x, dout)) < 1e-7
    assert rel_error(dgamma, numerical_gradient(lambda v: f(gamma=v), gamma, dout)) < 1e-7
    assert rel_error(dbeta, numerical_gradient(lambda v: f(beta=v), beta, dout)) < 1e-7


def test_stages_keep_float32_and_statistics_in_float64(rng):
    x = rng.standard_normal((6, 3, 2)).astype(np.float32)
    g = np.ones(3, np.float32)
    m = F.batch_moments(x, (0, 2))
    out, cache = F.batch_norm_forward_from_moments(x, g, g, m, axes=(0, 2))
    sum_dy, sum_dy_xhat = F.batch_norm_backward_reduce(np.ones_like(out), cache)
    dx = F.batch_norm_backward_elementwise(np.ones_like(out), cache, sum_dy, sum_dy_xhat,
                                           cache.count)
    assert out.dtype == dx.dtype == cache.x_hat.dtype == np.float32
    assert m.var.dtype == sum_dy.dtype == sum_dy_xhat.dtype == np.float64
    assert sum_dy.shape == sum_dy_xhat.shape == (3,)


def test_elementwise_with_zero_global_count_gives_zeros():
    x = np.zeros((0, 2))
    m = F.merge_moments([F.batch_moments(x, (0,))])
    out, cache = F.batch_norm_forward_from_moments(x, None, None, m, axes=(0,))
    dx = F.batch_norm_backward_elementwise(out, cache, np.zeros(2), np.zeros(2), 0)
    assert out.shape == dx.shape == (0, 2) and cache.count == 0


def test_elementwise_rejects_a_count_below_the_local_one(rng):
    x = rng.standard_normal((4, 3, 2))
    out, cache = F.batch_norm_forward(x, None, None, axes=(0, 2))
    sums = F.batch_norm_backward_reduce(out, cache)
    with pytest.raises(ValueError, match=r"batch_norm_backward_elementwise: expected the global "
                                         r"count of values per channel \(at least the 8 of this "
                                         r"input\), got count=5"):
        F.batch_norm_backward_elementwise(out, cache, *sums, 5)


def test_forward_from_moments_rejects_wrong_shape(rng):
    m = F.Moments(np.zeros(4), np.ones(4), 10)
    with pytest.raises(ValueError, match=r"batch_norm_forward_from_moments: expected moments "
                                         r"of shape \(3,\) for input of shape \(5, 3\), got "
                                         r"mean \(4,\) and var \(4,\)"):
        F.batch_norm_forward_from_moments(rng.standard_normal((5, 3)), None, None, m,
                                          axes=(0,))


# ------------------------------------------------------------------ parameter gradients
@pytest.mark.parametrize("has_gamma,has_beta", [(True, True), (True, False), (False, True),
                                                (False, False)])
@pytest.mark.parametrize("backward", ["closed", "staged"])
def test_backward_returns_each_param_grad_exactly_when_param_exists(rng, has_gamma,
                                                                    has_beta, backward):
    shape, axes = (5, 3, 4), (0, 2)
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    gamma = rng.standard_normal(3) if has_gamma else None
    beta = rng.standard_normal(3) if has_beta else None
    _, cache = F.batch_norm_forward(x, gamma, beta, axes=axes)
    bwd = F.batch_norm_backward if backward == "closed" else F.batch_norm_backward_staged
    dx, dgamma, dbeta = bwd(dout, cache)
    assert (dgamma is not None) == has_gamma and (dbeta is not None) == has_beta
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True) if has_gamma else None
    bt = torch.tensor(beta, requires_grad=True) if has_beta else None
    torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True).backward(
        torch.tensor(dout))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7, atol=1e-12)
    if has_gamma:
        np.testing.assert_allclose(dgamma, gt.grad.numpy(), rtol=1e-7, atol=1e-12)
    if has_beta:
        np.testing.assert_allclose(dbeta, bt.grad.numpy(), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(6, 3, 33, 40), (3, 2, 1024), (2, 3, 4, 16, 16), (5, 4, 3, 3)],
                         ids=["4D", "3D", "5D", "short-rows"])
def test_one_call_gives_the_bits_of_the_stages(rng, monkeypatch, threads, shape, dtype,
                                               n_threads):
    """The compiled one-call forward and backward (``numba_bn.forward``/``backward``: the
    stages channel by channel where rows are long) against the staged API, bit for bit:
    with and without gamma/beta, a residual and ReLU, dx over dout, a NaN."""
    from normlab.functional.compiled import numba_bn

    ran = []
    run = numba_bn._run
    monkeypatch.setattr(numba_bn, "_run", lambda k, *a: (ran.append(k), run(k, *a))[1])
    long_rows = numba_bn._by_channel(np.empty(shape, dtype))
    assert long_rows == (shape != (5, 4, 3, 3))
    axes = (0, *range(2, len(shape)))
    threads(n_threads)
    with normlab.kernels("compiled"):
        for affine, residual in itertools.product((True, False), (False, True)):
            x, gamma, beta = (a if a is None else a.astype(dtype)
                              for a in _affine_data(rng, shape, affine))
            x[1, 0].flat[3] = np.nan
            res = rng.standard_normal(shape).astype(dtype) if residual else None
            dout = rng.standard_normal(shape).astype(dtype)
            moments = F.batch_moments(x, axes)
            want, cache0 = F.batch_norm_forward_from_moments(x, gamma, beta, moments,
                                                             axes=axes)
            if residual:
                want = F.relu_forward(want + res)[0]
                got, cache = fused.batch_norm_act_forward(x, gamma, beta, axes=axes,
                                                          residual=res)
                cache = cache.bn
            else:
                got, cache = F.batch_norm_forward(x, gamma, beta, axes=axes)
            np.testing.assert_array_equal(got, want)
            for field in ("mean", "var", "inv_std", "stat_mean", "stat_inv_std"):
                np.testing.assert_array_equal(getattr(cache, field), getattr(cache0, field))
            sums = F.batch_norm_backward_reduce(dout, cache0)
            dx0 = F.batch_norm_backward_elementwise(dout, cache0, *sums, cache0.count)
            for overwrite in (False, True):
                d = dout.copy()
                dx, dgamma, dbeta = F.batch_norm_backward(d, cache, overwrite_dout=overwrite)
                assert (dx is d) == overwrite
                np.testing.assert_array_equal(dx, dx0)
                if affine:
                    np.testing.assert_array_equal(dgamma, sums[1].astype(dtype))
                    np.testing.assert_array_equal(dbeta, sums[0].astype(dtype))
    by_channel = [k for k in ran if k in (numba_bn._kernel("forward", False),
                                          numba_bn._kernel("backward", False))]
    assert bool(by_channel) == long_rows  # the channel kernels ran where rows are long


def _affine_data(rng, shape, affine):
    C = shape[1]
    x = 3.0 * rng.standard_normal(shape) + 1.5
    return x, (rng.standard_normal(C) if affine else None), \
        (rng.standard_normal(C) if affine else None)
