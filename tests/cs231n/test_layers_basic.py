"""Course checks for affine, ReLU, dropout and the two losses (FullyConnectedNets, Dropout)."""

import numpy as np
import pytest
import torch
from _course_cells import AFFINE_FORWARD_OUT

from normlab.cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from normlab.cs231n.gradient_check import rel_error
from normlab.cs231n.layers import (
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
    svm_loss,
)


def test_affine_forward_matches_course_numbers():
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    input_size = num_inputs * np.prod(input_shape)
    weight_size = output_dim * np.prod(input_shape)
    x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)
    out, _ = affine_forward(x, w, b)
    correct_out = np.array(AFFINE_FORWARD_OUT)
    assert rel_error(out, correct_out) < 1e-8


def test_affine_backward_numeric():
    np.random.seed(231)
    x = np.random.randn(10, 2, 3)
    w = np.random.randn(6, 5)
    b = np.random.randn(5)
    dout = np.random.randn(10, 5)
    dx_num = eval_numerical_gradient_array(lambda x: affine_forward(x, w, b)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: affine_forward(x, w, b)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: affine_forward(x, w, b)[0], b, dout)
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert rel_error(dx_num, dx) < 1e-8
    assert rel_error(dw_num, dw) < 1e-8
    assert rel_error(db_num, db) < 1e-8


def test_affine_layout_error():
    with pytest.raises(ValueError, match=r"expected w of shape \(D, M\)"):
        affine_forward(np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(4))


def test_relu_forward_matches_course_numbers():
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    out, _ = relu_forward(x)
    correct_out = np.array([[0., 0., 0., 0.],
                            [0., 0., 0.04545455, 0.13636364],
                            [0.22727273, 0.31818182, 0.40909091, 0.5]])
    assert rel_error(out, correct_out) < 1e-7


def test_relu_backward_numeric_after_affine():
    np.random.seed(231)
    x = np.random.randn(10, 4)
    w = np.random.randn(4, 6)
    b = np.random.randn(6)
    dout = np.random.randn(10, 6)

    def f(x):
        return relu_forward(affine_forward(x, w, b)[0])[0]

    dx_num = eval_numerical_gradient_array(f, x, dout)
    a, a_cache = affine_forward(x, w, b)
    _, r_cache = relu_forward(a)
    dx, _, _ = affine_backward(relu_backward(dout, r_cache), a_cache)
    assert rel_error(dx_num, dx) < 1e-8


def _scores():
    np.random.seed(231)
    num_classes, num_inputs = 10, 50
    x = 0.001 * np.random.randn(num_inputs, num_classes)
    y = np.random.randint(num_classes, size=num_inputs)
    return x, y


def test_svm_loss_course_check():
    """Course: loss around 9 (nine margins of ~1), dx error around 1e-9."""
    x, y = _scores()
    loss, dx = svm_loss(x, y)
    dx_num = eval_numerical_gradient(lambda x: svm_loss(x, y)[0], x, verbose=False)
    assert abs(loss - 9.0) < 0.01
    assert rel_error(dx_num, dx) < 1e-7


def test_softmax_loss_course_check():
    """Course: loss around log(10) = 2.3 for tiny scores, dx error around 1e-8."""
    x, y = _scores()
    loss, dx = softmax_loss(x, y)
    dx_num = eval_numerical_gradient(lambda x: softmax_loss(x, y)[0], x, verbose=False)
    assert abs(loss - np.log(10)) < 0.01
    assert rel_error(dx_num, dx) < 1e-7


def test_losses_match_torch():
    np.random.seed(0)
    x = np.random.randn(7, 5)
    y = np.random.randint(5, size=7)
    xt = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(xt, torch.tensor(y))
    ref.backward()
    loss, dx = softmax_loss(x, y)
    np.testing.assert_allclose(loss, ref.item(), rtol=1e-7)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7, atol=1e-15)
    # course SVM = PyTorch MultiMarginLoss times the number of classes
    xt.grad = None
    ref = torch.nn.functional.multi_margin_loss(xt, torch.tensor(y)) * 5
    ref.backward()
    loss, dx = svm_loss(x, y)
    np.testing.assert_allclose(loss, ref.item(), rtol=1e-7)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7, atol=1e-15)


def test_loss_errors():
    with pytest.raises(ValueError, match=r"expected labels in \[0, 3\)"):
        softmax_loss(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"expected labels y of shape \(2,\)"):
        svm_loss(np.zeros((2, 3)), np.array([0]))
    with pytest.raises(ValueError, match=r"expected scores x of shape \(N, C\)"):
        svm_loss(np.zeros(3), np.array([0]))


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_dropout_statistics_course_check(p):
    """Course: train-mode mean ~ input mean, a fraction 1 - p zeroed; test mode is identity."""
    np.random.seed(231)
    x = np.random.randn(500, 500) + 10
    out, _ = dropout_forward(x, {"mode": "train", "p": p})
    out_test, _ = dropout_forward(x, {"mode": "test", "p": p})
    assert abs(out.mean() - x.mean()) < 0.05
    assert abs((out == 0).mean() - (1 - p)) < 0.01
    np.testing.assert_array_equal(out_test, x)


def test_dropout_mask_is_the_courses_global_stream_draw():
    x = np.linspace(1.0, 2.0, 60).reshape(6, 10)
    out, _ = dropout_forward(x, {"mode": "train", "p": 0.6, "seed": 7})
    np.random.seed(7)
    mask = (np.random.rand(*x.shape) < 0.6) / 0.6
    np.testing.assert_array_equal(out, x * mask)


def test_dropout_backward_numeric_with_seed():
    np.random.seed(231)
    x = np.random.randn(10, 10) + 10
    dout = np.random.randn(*x.shape)
    param = {"mode": "train", "p": 0.2, "seed": 123}
    out, cache = dropout_forward(x, param)
    dx = dropout_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda xx: dropout_forward(xx, param)[0], x, dout)
    assert rel_error(dx, dx_num) < 1e-10
    _, cache = dropout_forward(x, {"mode": "test", "p": 0.2})
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


def test_dropout_keeps_dtype():
    out, _ = dropout_forward(np.ones((4, 4), np.float32), {"mode": "train", "p": 0.5})
    assert out.dtype == np.float32


def test_dropout_errors():
    with pytest.raises(ValueError, match="expected dropout_param\\['p'\\] \\(the KEEP"):
        dropout_forward(np.ones(3), {"mode": "train", "p": 0.0})
    with pytest.raises(ValueError, match="expected dropout_param\\['mode'\\]"):
        dropout_forward(np.ones(3), {"mode": "eval", "p": 0.5})
