"""Regression tests for issue 10, items 2, 4 and 11 (normlab.functional)."""

from __future__ import annotations

import numpy as np
import pytest

from normlab import functional as F
from normlab.errors import NormlabTypeError, NormlabValueError, ShapeError

R = np.random.default_rng(0)


# ---------------------------------------------------------------- 2. every backward checks dout
def _pairs():
    x2, x3, x4 = R.standard_normal((4, 3)), R.standard_normal((4, 3, 5)), \
        R.standard_normal((2, 3, 6, 6))
    g = np.ones(3)
    return [
        ("linear_backward", *F.linear_forward(x2, R.standard_normal((2, 3)), np.zeros(2))),
        ("relu_backward", *F.relu_forward(x2)),
        ("leaky_relu_backward", *F.leaky_relu_forward(x2)),
        ("tanh_backward", *F.tanh_forward(x2)),
        ("sigmoid_backward", *F.sigmoid_forward(x2)),
        ("dropout_backward", *F.dropout_forward(x2, 0.5, True, 0)),
        ("batch_norm_backward", *F.batch_norm_forward(x3, g, g, axes=(0, 2))),
        ("batch_norm_eval_backward", *F.batch_norm_eval_forward(x3, g, g, np.zeros(3), g,
                                                                axes=(0, 2))),
        ("layer_norm_backward", *F.layer_norm_forward(x3, None, None, normalized_ndim=1)),
        ("group_norm_backward", *F.group_norm_forward(x4, g, g, num_groups=3)),
        ("instance_norm_backward", *F.instance_norm_forward(x4, g, g)),
        ("rms_norm_backward", *F.rms_norm_forward(x3, None, normalized_ndim=2)),
        ("conv2d_backward", *F.conv2d_forward(x4, R.standard_normal((4, 3, 3, 3)))),
        ("max_pool2d_backward", *F.max_pool2d_forward(x4, 2)),
        ("avg_pool2d_backward", *F.avg_pool2d_forward(x4, 2)),
        ("adaptive_avg_pool2d_backward", *F.adaptive_avg_pool2d_forward(x4, (2, 3))),
    ]


@pytest.mark.parametrize("name, out, cache", _pairs(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_item2_every_backward_checks_dout_before_any_kernel(name, out, cache):
    backward = getattr(F, name)
    shape = tuple(out.shape)
    bigger = tuple(n + 1 for n in shape)
    smaller = tuple(max(n - 1, 1) for n in shape)
    for bad in (bigger, smaller, shape[1:]):
        if bad == shape:
            continue
        with pytest.raises(ShapeError, match=rf"{name}: expected dout of shape "
                                             rf"{_re(shape)} \(the forward output's\), got "
                                             rf"shape {_re(bad)}"):
            backward(np.ones(bad), cache)
    with pytest.raises(NormlabTypeError, match=rf"{name}: expected dout to be an ndarray"):
        backward(np.ones(shape).tolist(), cache)
    with pytest.raises(NormlabTypeError, match=rf"{name}: expected a floating dout, got dtype "
                                               r"int64"):
        backward(np.ones(shape, np.int64), cache)


def _re(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_item2_smaller_dout_into_conv_backward_is_an_error_not_a_wrong_gradient():
    x = R.standard_normal((2, 3, 8, 8))
    out, cache = F.conv2d_forward(x, R.standard_normal((4, 3, 3, 3)), stride=2)
    assert out.shape == (2, 4, 3, 3)
    with pytest.raises(ShapeError, match=r"conv2d_backward: expected dout of shape \(2, 4, 3, "
                                         r"3\) \(the forward output's\), got shape \(2, 4, 2, 2\)"):
        F.conv2d_backward(np.ones((2, 4, 2, 2)), cache)
    _, cache1 = F.conv1d_forward(x[:, :, 0], R.standard_normal((4, 3, 3)))
    with pytest.raises(ShapeError, match=r"conv1d_backward: expected dout of shape \(2, 4, 6\)"):
        F.conv1d_backward(np.ones((2, 4, 5)), cache1)


def test_item2_backward_refuses_a_foreign_cache():
    with pytest.raises(NormlabTypeError, match=r"linear_backward: expected the LinearCache "
                                               r"returned by the forward, got tuple"):
        F.linear_backward(np.ones((2, 3)), (1, 2, 3))
    with pytest.raises(NormlabTypeError, match=r"conv2d_backward: expected the ConvCache "
                                               r"returned by the forward, got NoneType"):
        F.conv2d_backward(np.ones((1, 1, 1, 1)), None)


# ---------------------------------------------------------------- 4. functional validation
X3 = R.standard_normal((4, 3, 5))
X4 = R.standard_normal((2, 6, 3, 3))


@pytest.mark.parametrize("call, match", [
    (lambda: F.batch_norm_forward(X3, np.ones(4), np.zeros(3), axes=(0, 2)),
     r"batch_norm_forward: expected gamma of shape \(3,\) \(one value per channel\), got shape "
     r"\(4,\)"),
    (lambda: F.batch_norm_forward(X3, np.ones(3), np.zeros(2), axes=(0, 2)),
     r"batch_norm_forward: expected beta of shape \(3,\)"),
    (lambda: F.batch_norm_eval_forward(X3, None, None, np.zeros(4), np.ones(3), axes=(0, 2)),
     r"batch_norm_eval_forward: expected running_mean of shape \(3,\)"),
    (lambda: F.batch_norm_eval_forward(X3, None, None, np.zeros(3), np.ones(2), axes=(0, 2)),
     r"batch_norm_eval_forward: expected running_var of shape \(3,\)"),
    (lambda: F.layer_norm_forward(X3, np.ones(4), None, normalized_ndim=1),
     r"layer_norm_forward: expected gamma of shape \(5,\)"),
    (lambda: F.layer_norm_forward(X3, np.ones((3, 4)), None, normalized_ndim=2),
     r"layer_norm_forward: expected gamma of shape \(3, 5\) \(the normalized shape\), got "
     r"shape \(3, 4\)"),
    (lambda: F.group_norm_forward(X4, np.ones(5), None, num_groups=2),
     r"group_norm_forward: expected gamma of shape \(6,\)"),
    (lambda: F.instance_norm_forward(X4, None, np.ones(7)),
     r"instance_norm_forward: expected beta of shape \(6,\)"),
    (lambda: F.rms_norm_forward(X3, np.ones(4), normalized_ndim=1),
     r"rms_norm_forward: expected gamma of shape \(5,\)"),
    (lambda: F.linear_forward(X3, np.ones((2, 5)), np.ones(3)),
     r"linear_forward: expected bias of shape \(2,\)"),
    (lambda: F.linear_forward(X3, np.ones((2, 4)), None),
     r"linear_forward: expected x with last dimension 4 \(weight.shape\[1\], in_features\), got "
     r"x of shape \(4, 3, 5\)"),
])
def test_item4_wrong_length_parameters(call, match):
    with pytest.raises(ShapeError, match=match):
        call()


@pytest.mark.parametrize("call, owner", [
    (lambda x: F.batch_norm_forward(x, None, None, axes=(0,)), "batch_norm_forward"),
    (lambda x: F.layer_norm_forward(x, None, None, normalized_ndim=1), "layer_norm_forward"),
    (lambda x: F.group_norm_forward(x, None, None, num_groups=1), "group_norm_forward"),
    (lambda x: F.rms_norm_forward(x, None, normalized_ndim=1), "rms_norm_forward"),
    (lambda x: F.linear_forward(x, np.ones((2, 3)), None), "linear_forward"),
    (lambda x: F.relu_forward(x), "relu_forward"),
    (lambda x: F.sigmoid_forward(x), "sigmoid_forward"),
    (lambda x: F.dropout_forward(x, 0.5, True, 0), "dropout_forward"),
])
def test_item4_integer_and_non_array_input(call, owner):
    with pytest.raises(NormlabTypeError, match=rf"{owner}: expected a floating-point x, got "
                                               r"int64"):
        call(np.ones((4, 3), np.int64))
    with pytest.raises(NormlabTypeError, match=rf"{owner}: expected x to be an ndarray, got list"):
        call([[1.0, 2.0, 3.0]] * 4)
    with pytest.raises(NormlabTypeError, match=rf"{owner}: expected x to be an ndarray, got str"):
        call("abc")


@pytest.mark.parametrize("call, owner", [
    (lambda e: F.batch_norm_forward(X3, None, None, axes=(0, 2), eps=e), "batch_norm_forward"),
    (lambda e: F.batch_norm_eval_forward(X3, None, None, np.zeros(3), np.ones(3), axes=(0, 2),
                                         eps=e), "batch_norm_eval_forward"),
    (lambda e: F.layer_norm_forward(X3, None, None, normalized_ndim=1, eps=e),
     "layer_norm_forward"),
    (lambda e: F.group_norm_forward(X4, None, None, num_groups=2, eps=e), "group_norm_forward"),
    (lambda e: F.instance_norm_forward(X4, None, None, eps=e), "instance_norm_forward"),
    (lambda e: F.rms_norm_forward(X3, None, normalized_ndim=1, eps=e), "rms_norm_forward"),
])
def test_item4_eps_must_be_positive(call, owner):
    for eps in (0.0, -1e-5, float("nan")):
        with pytest.raises(NormlabValueError, match=rf"{owner}: expected eps in \(0\.0, inf\), "
                                                    r"got eps="):
            call(eps)


def test_item4_num_groups():
    with pytest.raises(NormlabValueError, match=r"group_norm_forward: expected num_groups >= 1, "
                                                r"got num_groups=0"):
        F.group_norm_forward(X4, None, None, num_groups=0)
    with pytest.raises(NormlabValueError, match=r"group_norm_forward: expected input \(N, C, \*\) "
                                                r"with C divisible by num_groups=4"):
        F.group_norm_forward(X4, None, None, num_groups=4)
    with pytest.raises(NormlabTypeError, match=r"group_norm_forward: expected num_groups to be "
                                               r"an int, got float 2\.0"):
        F.group_norm_forward(X4, None, None, num_groups=2.0)


def test_item4_training_bn_with_one_value_per_channel():
    with pytest.raises(NormlabValueError, match=r"batch_norm_forward: expected more than 1 value "
                                                r"per channel when training, got input shape "
                                                r"\(1, 3\)"):
        F.batch_norm_forward(np.ones((1, 3)), None, None, axes=(0,))


def test_item4_check_axes_reports_the_axes_given():
    with pytest.raises(NormlabValueError, match=r"batch_norm_forward: expected reduced axes that "
                                                r"exclude the channel axis 1 .*got axes=\(0, -2\)"):
        F.batch_norm_forward(X3, None, None, axes=(0, -2))
    with pytest.raises(NormlabValueError, match=r"batch_norm_forward: expected axes in "
                                                r"\[-3, 3\) for input of shape \(4, 3, 5\), "
                                                r"got axes=\(0, 5\)"):
        F.batch_norm_forward(X3, None, None, axes=(0, 5))


# ---------------------------------------------------------------- 11. precision edges
def _torch():
    import torch  # a test dependency: the parity checks run in CI, never skip

    return torch


def _ln64(x, g, b):
    """The float64 closed form, rounded to float32 (torch 2.13 CPU float32 itself returns
    beta at |x| ~ 3e19, so it is no reference here)."""
    x = x.astype(np.float64)
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return ((x - mu) / np.sqrt(var + 1e-5) * g + b).astype(np.float32)


@pytest.mark.parametrize("scale", [3e19, 1e25, 1e30, 1e-20])
def test_item11_layer_and_group_norm_float32_huge_values(scale):
    x = (R.standard_normal((3, 4, 5)) * scale).astype(np.float32)
    g, b = R.uniform(0.5, 1.5, 5).astype(np.float32), R.standard_normal(5).astype(np.float32)
    out, cache = F.layer_norm_forward(x, g, b, normalized_ndim=1)
    if scale > 1:
        assert not np.allclose(out, b)  # the bug: every output collapsed to beta
    np.testing.assert_allclose(out, _ln64(x, g, b), rtol=1e-5, atol=1e-5)
    dx, dg, db = F.layer_norm_backward(np.ones_like(out), cache)
    assert np.isfinite(dx).all() and np.isfinite(dg).all()
    ones, zeros = np.ones(4, np.float32), np.zeros(4, np.float32)
    out, _ = F.group_norm_forward(x, ones, zeros, num_groups=2)
    ref = _ln64(x.reshape(3, 2, 10), 1.0, 0.0).reshape(x.shape)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_item11_bn_constant_float64_channels_at_1e30():
    torch = _torch()
    x = R.standard_normal((8, 3, 4))
    x[:, 1] = 1e30  # constant channels far from 0: mean exact, variance 0, x_hat 0
    x[:, 2] = -3e30
    g, b = np.array([1.0, 2.0, 3.0]), np.array([0.5, -0.5, 1.0])
    ref0 = torch.nn.functional.batch_norm(torch.from_numpy(x[:, :1].copy()), None, None,
                                          torch.from_numpy(g[:1]), torch.from_numpy(b[:1]),
                                          training=True).numpy()
    import normlab

    for kernels in ("compiled", "reference"):
        with normlab.kernels(kernels):
            out, cache = F.batch_norm_forward(x, g, b, axes=(0, 2))
            dx, dg, db = F.batch_norm_backward(np.ones_like(out), cache)
        np.testing.assert_allclose(out[:, :1], ref0, rtol=1e-7, atol=1e-12)
        # torch 2.13 CPU gives 2.0 and -2.5 here (x_hat 1.25 / -1.17 for constant data);
        # the exact answer is beta
        np.testing.assert_array_equal(out[:, 1], np.full((8, 4), b[1]))
        np.testing.assert_array_equal(out[:, 2], np.full((8, 4), b[2]))
        np.testing.assert_array_equal(cache.mean[1:], [1e30, -3e30])
        assert np.isfinite(dx).all() and np.isfinite(dg).all()
