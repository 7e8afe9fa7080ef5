"""Course checks for batch, spatial batch, layer and group norm (BatchNormalization notebook)."""

import numpy as np
import pytest
import torch

from normlab.cs231n.gradient_check import eval_numerical_gradient_array as num_grad
from normlab.cs231n.gradient_check import rel_error
from normlab.cs231n.layers import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)


def _two_layer_activations(N=200, D1=50, D2=60, D3=3, weights=None):
    if weights is None:
        weights = (np.random.randn(D1, D2), np.random.randn(D2, D3))
    W1, W2 = weights
    X = np.random.randn(N, D1)
    return np.maximum(0, X.dot(W1)).dot(W2)


def test_batchnorm_train_means_are_beta_and_stds_gamma():
    np.random.seed(231)
    a = _two_layer_activations()
    gamma = np.asarray([1.0, 2.0, 3.0])
    beta = np.asarray([11.0, 12.0, 13.0])
    out, _ = batchnorm_forward(a, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=0), beta, rtol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), gamma, rtol=1e-6)


def test_batchnorm_test_mode_after_50_training_passes():
    np.random.seed(231)
    D1, D2, D3 = 50, 60, 3
    weights = (np.random.randn(D1, D2), np.random.randn(D2, D3))
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(D3), np.zeros(D3)
    for _ in range(50):
        batchnorm_forward(_two_layer_activations(weights=weights), gamma, beta, bn_param)
    bn_param["mode"] = "test"
    a_norm, _ = batchnorm_forward(_two_layer_activations(weights=weights), gamma, beta, bn_param)
    # course: "means should be close to zero and stds close to one, but noisier than train"
    assert np.all(np.abs(a_norm.mean(axis=0)) < 0.2)
    assert np.all(np.abs(a_norm.std(axis=0) - 1) < 0.1)


def test_running_averages_follow_the_course_convention():
    """Zeros to start; running = momentum * running + (1 - momentum) * batch; biased var."""
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((8, 3)) * 2 + 5 for _ in range(3)]
    bn_param = {"mode": "train", "momentum": 0.8}
    mean, var = np.zeros(3), np.zeros(3)
    for x in xs:
        batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
        mean = 0.8 * mean + 0.2 * x.mean(axis=0)
        var = 0.8 * var + 0.2 * x.var(axis=0)  # ddof=0
        np.testing.assert_allclose(bn_param["running_mean"], mean, rtol=1e-12)
        np.testing.assert_allclose(bn_param["running_var"], var, rtol=1e-12)
    # the same running mean as PyTorch with momentum 1 - 0.8 from a zero start
    bn = torch.nn.BatchNorm1d(3, momentum=0.2, dtype=torch.float64)
    for x in xs:
        bn(torch.tensor(x))
    np.testing.assert_allclose(bn_param["running_mean"], bn.running_mean.numpy(), rtol=1e-12)


def test_first_call_creates_zero_running_stats_and_test_mode_uses_them():
    bn_param = {"mode": "test"}
    x = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    out, _ = batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
    np.testing.assert_array_equal(bn_param["running_mean"], np.zeros(3))
    np.testing.assert_array_equal(bn_param["running_var"], np.zeros(3))
    np.testing.assert_allclose(out, x / np.sqrt(1e-5), rtol=1e-12)


def test_batchnorm_backward_numeric():
    np.random.seed(231)
    N, D = 4, 5
    x = 5 * np.random.randn(N, D) + 12
    gamma = np.random.randn(D)
    beta = np.random.randn(D)
    dout = np.random.randn(N, D)
    bn_param = {"mode": "train"}
    dx_num = num_grad(lambda x: batchnorm_forward(x, gamma, beta, bn_param)[0], x, dout)
    da_num = num_grad(lambda g: batchnorm_forward(x, g, beta, bn_param)[0], gamma.copy(), dout)
    db_num = num_grad(lambda b: batchnorm_forward(x, gamma, b, bn_param)[0], beta.copy(), dout)
    _, cache = batchnorm_forward(x, gamma, beta, bn_param)
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        dx, dgamma, dbeta = backward(dout, cache)
        assert rel_error(dx_num, dx) < 1e-7
        assert rel_error(da_num, dgamma) < 1e-7
        assert rel_error(db_num, dbeta) < 1e-7


def test_staged_and_closed_form_backward_agree():
    np.random.seed(231)
    N, D = 100, 500
    x = 5 * np.random.randn(N, D) + 12
    gamma, beta, dout = np.random.randn(D), np.random.randn(D), np.random.randn(N, D)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    for g1, g2 in zip(batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache)):
        assert rel_error(g1, g2) < 1e-9


def test_batchnorm_test_mode_backward_numeric():
    np.random.seed(0)
    x, dout = np.random.randn(4, 3), np.random.randn(4, 3)
    gamma, beta = np.random.randn(3), np.random.randn(3)
    bn_param = {"mode": "test", "running_mean": np.random.randn(3),
                "running_var": np.random.rand(3) + 0.5}
    _, cache = batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    dx_num = num_grad(lambda x: batchnorm_forward(x, gamma, beta, bn_param)[0], x, dout)
    assert rel_error(dx, dx_num) < 1e-7
    np.testing.assert_allclose(dbeta, dout.sum(axis=0))


def test_batchnorm_keeps_float32():
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    bn_param = {"mode": "train"}
    out, _ = batchnorm_forward(x, np.ones(4, np.float32), np.zeros(4, np.float32), bn_param)
    assert out.dtype == np.float32 and bn_param["running_var"].dtype == np.float32


def test_spatial_batchnorm_train_and_test():
    np.random.seed(231)
    N, C, H, W = 2, 3, 4, 5
    x = 4 * np.random.randn(N, C, H, W) + 10
    gamma, beta = np.asarray([3.0, 4.0, 5.0]), np.asarray([6.0, 7.0, 8.0])
    out, _ = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, rtol=1e-12)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), gamma, rtol=1e-5)

    N, C, H, W = 10, 4, 11, 12
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(C), np.zeros(C)
    for _ in range(50):
        spatial_batchnorm_forward(2.3 * np.random.randn(N, C, H, W) + 13, gamma, beta, bn_param)
    bn_param["mode"] = "test"
    x = 2.3 * np.random.randn(N, C, H, W) + 13
    out, _ = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    assert bn_param["running_mean"].shape == (C,)
    assert np.all(np.abs(out.mean(axis=(0, 2, 3))) < 0.1)
    assert np.all(np.abs(out.std(axis=(0, 2, 3)) - 1) < 0.1)


def test_spatial_batchnorm_backward_numeric():
    np.random.seed(231)
    N, C, H, W = 2, 3, 4, 5
    x = 5 * np.random.randn(N, C, H, W) + 12
    gamma, beta, dout = np.random.randn(C), np.random.randn(C), np.random.randn(N, C, H, W)
    bn_param = {"mode": "train"}
    dx_num = num_grad(lambda x: spatial_batchnorm_forward(x, gamma, beta, bn_param)[0], x, dout)
    da_num = num_grad(
        lambda g: spatial_batchnorm_forward(x, g, beta, bn_param)[0],
        gamma.copy(), dout)
    _, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    assert rel_error(dx_num, dx) < 1e-6  # the course prints a dx error of about 3e-7 here
    assert rel_error(da_num, dgamma) < 1e-7
    np.testing.assert_allclose(dbeta, dout.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_layernorm_forward_per_row_statistics():
    np.random.seed(231)
    a = _two_layer_activations(N=4)
    out, _ = layernorm_forward(a, np.ones(3), np.zeros(3), {})
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=1), 1, rtol=1e-6)
    out, _ = layernorm_forward(a, np.full(3, 3.0), np.full(3, 5.0), {})
    np.testing.assert_allclose(out.mean(axis=1), 5, rtol=1e-12)
    np.testing.assert_allclose(out.std(axis=1), 3, rtol=1e-6)


def test_layernorm_backward_numeric_and_torch():
    np.random.seed(231)
    N, D = 4, 5
    x = 5 * np.random.randn(N, D) + 12
    gamma, beta, dout = np.random.randn(D), np.random.randn(D), np.random.randn(N, D)
    ln_param = {}
    dx_num = num_grad(lambda x: layernorm_forward(x, gamma, beta, ln_param)[0], x, dout)
    da_num = num_grad(lambda g: layernorm_forward(x, g, beta, ln_param)[0], gamma.copy(), dout)
    out, cache = layernorm_forward(x, gamma, beta, ln_param)
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    assert rel_error(dx_num, dx) < 1e-7
    assert rel_error(da_num, dgamma) < 1e-7
    ref = torch.nn.functional.layer_norm(torch.tensor(x), (D,), torch.tensor(gamma),
                                         torch.tensor(beta))
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-7)
    np.testing.assert_allclose(dbeta, dout.sum(axis=0), rtol=1e-12)


def test_groupnorm_forward_per_group_statistics_and_torch():
    np.random.seed(231)
    N, C, H, W, G = 2, 6, 4, 5, 2
    x = 4 * np.random.randn(N, C, H, W) + 10
    gamma, beta = np.ones((1, C, 1, 1)), np.zeros((1, C, 1, 1))
    out, _ = spatial_groupnorm_forward(x, gamma, beta, G, {})
    groups = out.reshape(N * G, -1)
    np.testing.assert_allclose(groups.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(groups.std(axis=1), 1, rtol=1e-5)
    gamma, beta = np.random.randn(1, C, 1, 1), np.random.randn(1, C, 1, 1)
    out, _ = spatial_groupnorm_forward(x, gamma, beta, G, {"eps": 1e-3})
    ref = torch.nn.functional.group_norm(torch.tensor(x), G, torch.tensor(gamma.ravel()),
                                         torch.tensor(beta.ravel()), eps=1e-3)
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-7)


def test_groupnorm_backward_numeric_and_course_shapes():
    np.random.seed(231)
    N, C, H, W, G = 2, 6, 4, 5, 2
    x = 5 * np.random.randn(N, C, H, W) + 12
    gamma, beta = np.random.randn(1, C, 1, 1), np.random.randn(1, C, 1, 1)
    dout = np.random.randn(N, C, H, W)
    gn_param = {}
    dx_num = num_grad(lambda x: spatial_groupnorm_forward(x, gamma, beta, G, gn_param)[0], x, dout)
    da_num = num_grad(
        lambda g: spatial_groupnorm_forward(x, g, beta, G, gn_param)[0],
        gamma.copy(), dout)
    db_num = num_grad(
        lambda b: spatial_groupnorm_forward(x, gamma, b, G, gn_param)[0],
        beta.copy(), dout)
    _, cache = spatial_groupnorm_forward(x, gamma, beta, G, gn_param)
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    assert dgamma.shape == dbeta.shape == (1, C, 1, 1)
    assert rel_error(dx_num, dx) < 1e-7
    assert rel_error(da_num, dgamma) < 1e-7
    assert rel_error(db_num, dbeta) < 1e-7


def test_norm_errors():
    x2, x4 = np.zeros((4, 3)), np.zeros((2, 6, 3, 3))
    with pytest.raises(ValueError, match="expected bn_param\\['mode'\\] 'train' or 'test'"):
        batchnorm_forward(x2, np.ones(3), np.zeros(3), {"mode": "eval"})
    with pytest.raises(ValueError, match="expected gamma and beta of shape \\(3,\\)"):
        batchnorm_forward(x2, np.ones(4), np.zeros(4), {"mode": "train"})
    with pytest.raises(ValueError, match="Use spatial_batchnorm_forward"):
        batchnorm_forward(x4, np.ones(6), np.zeros(6), {"mode": "train"})
    with pytest.raises(ValueError, match="Use batchnorm_forward"):
        spatial_batchnorm_forward(x2, np.ones(3), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match="layernorm_forward: expected 2D input"):
        layernorm_forward(x4, np.ones(6), np.zeros(6), {})
    with pytest.raises(ValueError, match="expected G a positive int dividing C = 6"):
        spatial_groupnorm_forward(x4, np.ones((1, 6, 1, 1)), np.zeros((1, 6, 1, 1)), 4, {})
    with pytest.raises(ValueError, match="expected gamma and beta of shape \\(1, 6, 1, 1\\)"):
        spatial_groupnorm_forward(x4, np.ones((1, 3, 1, 1)), np.zeros((1, 3, 1, 1)), 3, {})
    with pytest.raises(ValueError, match="spatial_groupnorm_forward: expected 4D input"):
        spatial_groupnorm_forward(x2, np.ones(3), np.zeros(3), 1, {})
