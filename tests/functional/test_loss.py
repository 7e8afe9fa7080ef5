"""Loss functions: PyTorch parity (value and gradient), gradient checks, stability, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from normlab import backend
from normlab import functional as F
from normlab.gradcheck import numerical_gradient, rel_error


def _torch_loss(fn, x, *args, **kw):
    xt = torch.tensor(x, requires_grad=True)
    loss = fn(xt, *args, **kw)
    loss.backward()
    return loss.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_torch_parity(rng, reduction):
    x = rng.standard_normal((7, 5)) * 2.0
    y = rng.integers(0, 5, size=7)
    loss, dx = F.softmax_cross_entropy(x, y, reduction=reduction)
    ref, dref = _torch_loss(TF.cross_entropy, x, torch.tensor(y), reduction=reduction)
    np.testing.assert_allclose(loss, ref, rtol=1e-7, atol=0)
    np.testing.assert_allclose(dx, dref, rtol=1e-7, atol=0)


@pytest.mark.parametrize("p,margin", [(1, 1.0), (1, 0.3), (2, 1.0), (2, 2.5)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_multi_margin_torch_parity(rng, p, margin, reduction):
    x = rng.standard_normal((8, 4))
    y = rng.integers(0, 4, size=8)
    loss, dx = F.multi_margin_loss(x, y, margin, p=p, reduction=reduction)
    ref, dref = _torch_loss(TF.multi_margin_loss, x, torch.tensor(y), p=p, margin=margin,
                            reduction=reduction)
    np.testing.assert_allclose(loss, ref, rtol=1e-7, atol=0)
    np.testing.assert_allclose(dx, dref, rtol=1e-7, atol=0)


def test_multi_margin_term_at_exactly_zero_has_no_gradient_like_torch():
    x = np.array([[1.0, 0.0, -3.0]])  # margin - x[y] + x[1] = 1 - 1 + 0 = 0 exactly
    y = np.array([0])
    loss, dx = F.multi_margin_loss(x, y)
    ref, dref = _torch_loss(TF.multi_margin_loss, x, torch.tensor(y))
    assert loss == ref == 0.0
    np.testing.assert_array_equal(dx, dref)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_torch_parity(rng, reduction):
    x = rng.standard_normal((3, 4, 2))
    t = rng.standard_normal((3, 4, 2))
    loss, dx = F.mse_loss(x, t, reduction=reduction)
    ref, dref = _torch_loss(TF.mse_loss, x, torch.tensor(t), reduction=reduction)
    np.testing.assert_allclose(loss, ref, rtol=1e-7, atol=0)
    np.testing.assert_allclose(dx, dref, rtol=1e-7, atol=0)


LOSSES = {
    "cross_entropy": (F.softmax_cross_entropy, lambda rng: rng.integers(0, 5, size=4)),
    "multi_margin": (F.multi_margin_loss, lambda rng: rng.integers(0, 5, size=4)),
    "multi_margin_p2": (lambda x, y: F.multi_margin_loss(x, y, 0.7, p=2),
                        lambda rng: rng.integers(0, 5, size=4)),
    "mse": (F.mse_loss, lambda rng: rng.standard_normal((4, 5))),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck_after_a_linear_layer(rng, name):
    loss_fn, make_target = LOSSES[name]
    x = rng.standard_normal((4, 3))
    w = rng.standard_normal((5, 3))
    target = make_target(rng)

    def f(xin):
        return loss_fn(F.linear_forward(xin, w)[0], target)[0]

    h, lin_cache = F.linear_forward(x, w)
    _, dh = loss_fn(h, target)
    dx, dw, _ = F.linear_backward(dh, lin_cache)
    # step 1e-5, not 1e-6: a scalar output puts roundoff noise eps*|loss|/h on every entry,
    # which at 1e-6 swamps gradient entries near 1e-3; truncation at 1e-5 is ~1e-11
    assert rel_error(dx, numerical_gradient(f, x, 1.0, h=1e-5)) < 1e-7

    def g(win):
        return loss_fn(F.linear_forward(x, win)[0], target)[0]

    assert rel_error(dw, numerical_gradient(g, w, 1.0, h=1e-5)) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_is_0d_array_of_input_dtype(rng, name, dtype):
    loss_fn, make_target = LOSSES[name]
    x = rng.standard_normal((4, 5)).astype(dtype)
    before = x.copy()
    loss, dx = loss_fn(x, make_target(rng))
    assert isinstance(loss, np.ndarray) and loss.shape == () and loss.dtype == dtype
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_for_huge_logits(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4 + 5.0, 1e4], [3e4, 3e4, 3e4]], dtype=dtype)
    y = np.array([1, 2, 0])
    loss, dx = F.softmax_cross_entropy(x, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    ref, dref = _torch_loss(TF.cross_entropy, x.astype(np.float64), torch.tensor(y))
    # row 0: 2e4; row 1: log(1 + e^5) - 0 ... computed exactly in float64 by torch
    np.testing.assert_allclose(loss, ref, rtol=1e-6)
    np.testing.assert_allclose(dx, dref, rtol=1e-6, atol=1e-7)
    assert ref == pytest.approx((2e4 + np.log1p(np.exp(-5.0)) + 5.0 + np.log(3.0)) / 3.0,
                                rel=1e-12)


def test_cross_entropy_of_uniform_logits_is_log_c():
    loss, dx = F.softmax_cross_entropy(np.zeros((2, 10)), np.array([3, 9]))
    assert loss == pytest.approx(np.log(10.0), rel=1e-15)
    np.testing.assert_allclose(dx.sum(axis=1), 0.0, atol=1e-15)  # roundoff of 10 terms


def test_accepts_labels_as_a_list_and_unsigned_ints():
    x = np.zeros((2, 3))
    a, _ = F.softmax_cross_entropy(x, [0, 2])
    b, _ = F.softmax_cross_entropy(x, np.array([0, 2], dtype=np.uint8))
    assert a == b


@pytest.mark.parametrize("fn,owner", [(F.softmax_cross_entropy, "softmax_cross_entropy"),
                                      (F.multi_margin_loss, "multi_margin_loss")])
class TestClassificationErrors:
    def test_label_out_of_range(self, fn, owner):
        with pytest.raises(ValueError, match=rf"{owner}: expected labels in \[0, 2\] for C=3 "
                                             r"classes, got values in \[0, 3\]"):
            fn(np.zeros((2, 3)), np.array([0, 3]))
        with pytest.raises(ValueError, match=r"got values in \[-1, 0\]"):
            fn(np.zeros((2, 3)), np.array([-1, 0]))

    def test_label_shape(self, fn, owner):
        with pytest.raises(ValueError, match=rf"{owner}: expected labels of shape \(2,\) to "
                                             r"match the input's N, got shape \(3,\)"):
            fn(np.zeros((2, 3)), np.array([0, 1, 2]))
        with pytest.raises(ValueError, match=r"got shape \(2, 1\)"):
            fn(np.zeros((2, 3)), np.array([[0], [1]]))

    def test_float_labels(self, fn, owner):
        with pytest.raises(TypeError, match=rf"{owner}: expected integer class labels, got "
                                            r"dtype float64\. Pass class indices"):
            fn(np.zeros((2, 3)), np.array([0.0, 1.0]))
        with pytest.raises(TypeError, match="got dtype bool"):
            fn(np.zeros((2, 3)), np.array([True, False]))

    def test_input_rank(self, fn, owner):
        with pytest.raises(ValueError, match=rf"{owner}: expected 2D .* \(N, C\), got 1D input "
                                             r"of shape \(3,\)"):
            fn(np.zeros(3), np.array([0]))
        with pytest.raises(ValueError, match=r"expected 2D .* got list"):
            fn([[0.0, 1.0]], np.array([0]))

    def test_integer_input(self, fn, owner):
        with pytest.raises(TypeError, match=rf"{owner}: expected floating .* got dtype int64"):
            fn(np.zeros((2, 3), dtype=np.int64), np.array([0, 1]))

    def test_empty_input(self, fn, owner):
        with pytest.raises(ValueError, match=rf"{owner}: expected a non-empty .* got shape "
                                             r"\(0, 3\)"):
            fn(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))

    def test_reduction(self, fn, owner):
        with pytest.raises(ValueError, match=rf"{owner}: expected reduction 'mean' or 'sum', "
                                             r"got 'none'"):
            fn(np.zeros((2, 3)), np.array([0, 1]), reduction="none")


def test_multi_margin_rejects_other_p():
    with pytest.raises(ValueError, match=r"multi_margin_loss: expected p to be 1 or 2, got 3"):
        F.multi_margin_loss(np.zeros((2, 3)), np.array([0, 1]), p=3)
    with pytest.raises(ValueError, match=r"got True"):
        F.multi_margin_loss(np.zeros((2, 3)), np.array([0, 1]), p=True)


def test_mse_errors():
    with pytest.raises(ValueError, match=r"mse_loss: expected target of the prediction's shape "
                                         r"\(2, 3\), got \(3,\)\. Reshape"):
        F.mse_loss(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(TypeError, match=r"mse_loss: expected a floating prediction, got dtype "
                                        r"int64"):
        F.mse_loss(np.zeros(3, dtype=np.int64), np.zeros(3))
    with pytest.raises(ValueError, match=r"mse_loss: expected a non-empty prediction, got shape "
                                         r"\(0,\)"):
        F.mse_loss(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match=r"mse_loss: expected reduction 'mean' or 'sum', got "
                                         r"'batchmean'"):
        F.mse_loss(np.zeros(2), np.zeros(2), reduction="batchmean")


def test_mse_casts_target_to_prediction_dtype(rng):
    x = rng.standard_normal(5).astype(np.float32)
    loss, dx = F.mse_loss(x, rng.standard_normal(5))
    assert loss.dtype == np.float32 and dx.dtype == np.float32


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(LOSSES))
def test_cuda_matches_cpu(rng, name):
    loss_fn, make_target = LOSSES[name]
    x = rng.standard_normal((4, 5))
    target = make_target(rng)  # a host array: the loss moves it to the input's device
    loss, dx = loss_fn(backend.to_device(x, "cuda"), target)
    ref, dref = loss_fn(x, target)
    assert backend.device_of(loss) == "cuda" and loss.shape == ()
    np.testing.assert_allclose(backend.to_numpy(loss), ref, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(dx), dref, rtol=1e-12)
