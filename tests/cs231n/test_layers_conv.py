"""Course checks for convolution and max pooling, naive and fast (ConvolutionalNetworks)."""

import numpy as np
import pytest
import torch

from normlab.cs231n.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    conv_forward_strides,
    max_pool_backward_fast,
    max_pool_forward_fast,
    max_pool_forward_reshape,
)
from normlab.cs231n.gradient_check import eval_numerical_gradient_array as num_grad
from normlab.cs231n.gradient_check import rel_error
from normlab.cs231n.layer_utils import (
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from normlab.cs231n.layers import (
    conv_backward_naive,
    conv_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
)


def test_conv_forward_naive_matches_course_numbers():
    x_shape, w_shape = (2, 3, 4, 4), (3, 3, 4, 4)
    x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
    w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    correct_out = np.array([[[[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
                             [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
                             [[0.50813986, 0.54309974], [0.64082444, 0.67101435]]],
                            [[[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
                             [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
                             [[2.36270298, 2.36904306], [2.38090835, 2.38247847]]]])
    assert rel_error(out, correct_out) < 1e-7


def test_conv_backward_naive_numeric():
    np.random.seed(231)
    x = np.random.randn(4, 3, 5, 5)
    w = np.random.randn(2, 3, 3, 3)
    b = np.random.randn(2)
    dout = np.random.randn(4, 2, 5, 5)
    conv_param = {"stride": 1, "pad": 1}
    dx_num = num_grad(lambda x: conv_forward_naive(x, w, b, conv_param)[0], x, dout)
    dw_num = num_grad(lambda w: conv_forward_naive(x, w, b, conv_param)[0], w, dout)
    db_num = num_grad(lambda b: conv_forward_naive(x, w, b, conv_param)[0], b, dout)
    _, cache = conv_forward_naive(x, w, b, conv_param)
    dx, dw, db = conv_backward_naive(dout, cache)
    assert rel_error(dx, dx_num) < 1e-7
    assert rel_error(dw, dw_num) < 1e-7
    assert rel_error(db, db_num) < 1e-7


def test_max_pool_forward_naive_matches_course_numbers():
    x_shape = (2, 3, 4, 4)
    x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
    out, _ = max_pool_forward_naive(x, {"pool_width": 2, "pool_height": 2, "stride": 2})
    correct_out = np.array([[[[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
                             [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
                             [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]]],
                            [[[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
                             [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
                             [[0.32631579, 0.34105263], [0.38526316, 0.4]]]])
    assert rel_error(out, correct_out) < 1e-7


def test_max_pool_backward_naive_numeric():
    np.random.seed(231)
    x = np.random.randn(3, 2, 8, 8)
    dout = np.random.randn(3, 2, 4, 4)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    dx_num = num_grad(lambda x: max_pool_forward_naive(x, pool_param)[0], x, dout)
    _, cache = max_pool_forward_naive(x, pool_param)
    assert rel_error(max_pool_backward_naive(dout, cache), dx_num) < 1e-8


def test_fast_conv_equals_naive():
    np.random.seed(231)
    x = np.random.randn(5, 3, 9, 9)
    w = np.random.randn(4, 3, 3, 3)
    b = np.random.randn(4)
    conv_param = {"stride": 2, "pad": 1}
    out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
    out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
    dout = np.random.randn(*out_naive.shape)
    assert rel_error(out_naive, out_fast) < 1e-10
    for g_naive, g_fast in zip(conv_backward_naive(dout, cache_naive),
                               conv_backward_fast(dout, cache_fast)):
        assert rel_error(g_naive, g_fast) < 1e-10
    assert rel_error(conv_forward_strides(x, w, b, conv_param)[0], out_naive) < 1e-10


def test_fast_pool_equals_naive_and_torch_non_square():
    np.random.seed(231)
    x = np.random.randn(3, 2, 8, 9)
    pool_param = {"pool_height": 2, "pool_width": 3, "stride": 2}
    out_naive, cache_naive = max_pool_forward_naive(x, pool_param)
    out_fast, cache_fast = max_pool_forward_fast(x, pool_param)
    ref = torch.nn.functional.max_pool2d(torch.tensor(x), (2, 3), 2).numpy()
    np.testing.assert_array_equal(out_naive, ref)
    np.testing.assert_array_equal(out_fast, ref)
    np.testing.assert_array_equal(max_pool_forward_reshape(x, pool_param)[0], ref)
    dout = np.random.randn(*out_naive.shape)
    np.testing.assert_allclose(max_pool_backward_naive(dout, cache_naive),
                               max_pool_backward_fast(dout, cache_fast), rtol=1e-12)


def test_conv_relu_pool_numeric():
    np.random.seed(231)
    x = np.random.randn(2, 3, 8, 8)
    w = np.random.randn(3, 3, 3, 3)
    b = np.random.randn(3)
    dout = np.random.randn(2, 3, 4, 4)
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    _, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    dx, dw, db = conv_relu_pool_backward(dout, cache)

    def f(x, w, b):
        return conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0]

    assert rel_error(dx, num_grad(lambda x: f(x, w, b), x, dout)) < 1e-6
    assert rel_error(dw, num_grad(lambda w: f(x, w, b), w, dout)) < 1e-6
    assert rel_error(db, num_grad(lambda b: f(x, w, b), b, dout)) < 1e-6


def test_conv_relu_and_conv_bn_relu_numeric():
    np.random.seed(231)
    x = np.random.randn(2, 3, 6, 6)
    w = np.random.randn(3, 3, 3, 3)
    b = np.random.randn(3)
    gamma, beta = np.random.randn(3), np.random.randn(3)
    dout = np.random.randn(2, 3, 6, 6)
    conv_param = {"stride": 1, "pad": 1}
    _, cache = conv_relu_forward(x, w, b, conv_param)
    dx, _, _ = conv_relu_backward(dout, cache)
    dx_num = num_grad(lambda x: conv_relu_forward(x, w, b, conv_param)[0], x, dout)
    assert rel_error(dx, dx_num) < 1e-6
    bn_param = {"mode": "train"}
    _, cache = conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param)
    dx, dw, _, dgamma, _ = conv_bn_relu_backward(dout, cache)
    dx_num = num_grad(
        lambda x: conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param)[0], x, dout)
    dw_num = num_grad(
        lambda w: conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param)[0], w, dout)
    assert rel_error(dx, dx_num) < 1e-6
    assert rel_error(dw, dw_num) < 1e-6


def test_conv_pool_errors():
    x, w, b = np.zeros((1, 3, 4, 4)), np.zeros((2, 3, 3, 3)), np.zeros(2)
    with pytest.raises(ValueError, match="expected w with 3 input channels"):
        conv_forward_naive(x, np.zeros((2, 2, 3, 3)), b, {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match=r"conv_forward_fast: expected conv_param\['stride'\] to be an int >= 1, got 0"):
        conv_forward_fast(x, w, b, {"stride": 0, "pad": 0})
    with pytest.raises(ValueError, match=r"expected x \(N, C, H, W\)"):
        conv_forward_naive(np.zeros((3, 4, 4)), w, b, {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match="max_pool_forward_fast: expected 4D input"):
        max_pool_forward_fast(np.zeros((3, 4, 4)),
                              {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match=r"max_pool_forward_naive: expected pool_param\['pool_height'\] to be an int >= 1, got 0"):
        max_pool_forward_naive(x, {"pool_height": 0, "pool_width": 2, "stride": 2})
