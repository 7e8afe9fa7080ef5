"""normlab.d2l.batch_norm / BatchNorm against the book's formulas in torch float64."""

import numpy as np
import pytest
import torch
from _book import book_batch_norm
from _parity import step_matches_torch

from normlab import nn
from normlab.d2l import BatchNorm, batch_norm
from normlab.gradcheck import check_module

SHAPES = {2: (8, 5), 4: (4, 3, 5, 6)}


def _batches(rng, dims, steps=5):
    shape = SHAPES[dims]
    return [rng.standard_normal(shape) * (1.0 + k) + 3.0 * k - 1.0 for k in range(steps)]


@pytest.mark.parametrize("dims", [2, 4])
@pytest.mark.parametrize("moving_var_init", ["ones", "zeros"])
def test_function_matches_the_book_for_five_steps_and_prediction(rng, dims, moving_var_init):
    C = SHAPES[dims][1]
    shape = (1, C) if dims == 2 else (1, C, 1, 1)
    gamma, beta = rng.standard_normal(shape), rng.standard_normal(shape)
    mm = np.zeros(shape)
    mv = np.ones(shape) if moving_var_init == "ones" else np.zeros(shape)
    tm, tv = torch.tensor(mm), torch.tensor(mv)
    tg, tb = torch.tensor(gamma), torch.tensor(beta)
    for X in _batches(rng, dims):
        Y, mm, mv = batch_norm(True, X, gamma, beta, mm, mv, eps=1e-5, momentum=0.9)
        tY, tm, tv = book_batch_norm(True, torch.tensor(X), tg, tb, tm, tv, 1e-5, 0.9)
        np.testing.assert_allclose(Y, tY.numpy(), rtol=1e-7, atol=1e-12)
        assert mm.shape == tuple(tm.shape) and mv.shape == tuple(tv.shape)
        np.testing.assert_allclose(mm, tm.numpy(), rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(mv, tv.numpy(), rtol=1e-7, atol=1e-12)
    X = _batches(rng, dims, 1)[0]
    Y, mm2, mv2 = batch_norm(False, X, gamma, beta, mm, mv, eps=1e-5, momentum=0.9)
    tY, _, _ = book_batch_norm(False, torch.tensor(X), tg, tb, tm, tv, 1e-5, 0.9)
    np.testing.assert_allclose(Y, tY.numpy(), rtol=1e-7, atol=1e-12)
    assert mm2 is mm and mv2 is mv  # prediction leaves the moving statistics alone


def test_moving_average_weighs_the_old_value_with_biased_variance():
    X = np.array([[0.0, 1.0], [2.0, 5.0]])
    _, mm, mv = batch_norm(True, X, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2),
                           eps=1e-5, momentum=0.9)
    np.testing.assert_allclose(mm, 0.1 * np.array([1.0, 3.0]))
    np.testing.assert_allclose(mv, 0.9 + 0.1 * np.array([1.0, 4.0]))  # biased: /N, not /(N-1)


@pytest.mark.parametrize("dims", [2, 4])
@pytest.mark.parametrize("moving_var_init", ["ones", "zeros"])
def test_module_matches_the_book_layer_outputs_grads_and_moving_stats(rng, dims,
                                                                      moving_var_init):
    from _book import BookBatchNorm

    C = SHAPES[dims][1]
    m = BatchNorm(C, num_dims=dims, moving_var_init=moving_var_init, dtype=np.float64)
    t = BookBatchNorm(C, dims, moving_var_init=1.0 if moving_var_init == "ones" else 0.0)
    g = rng.standard_normal(m.params["gamma"].shape)
    b = rng.standard_normal(m.params["beta"].shape)
    m.params["gamma"], m.params["beta"] = g.copy(), b.copy()
    with torch.no_grad():
        t.gamma.copy_(torch.tensor(g))
        t.beta.copy_(torch.tensor(b))
    for mode in ["train"] * 5 + ["eval"]:
        m.train(mode == "train")
        t.train(mode == "train")
        X = _batches(rng, dims, 1)[0] * 2 + 1
        dout = rng.standard_normal(X.shape)
        tgrads = step_matches_torch(m, t, X, dout, dx_rtol=1e-7)
        np.testing.assert_allclose(m.grads["gamma"], tgrads["gamma"], rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(m.grads["beta"], tgrads["beta"], rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(m.buffers["moving_mean"], t.moving_mean.numpy(), rtol=1e-7,
                                   atol=1e-12)
        np.testing.assert_allclose(m.buffers["moving_var"], t.moving_var.numpy(), rtol=1e-7,
                                   atol=1e-12)


def test_module_state_starts_as_the_book_and_the_first_edition():
    m = BatchNorm(3, num_dims=4)
    assert m.params["gamma"].shape == (1, 3, 1, 1) and np.all(m.params["gamma"] == 1)
    assert np.all(m.params["beta"] == 0) and np.all(m.buffers["moving_mean"] == 0)
    assert np.all(m.buffers["moving_var"] == 1)
    assert np.all(BatchNorm(3, 2, moving_var_init="zeros").buffers["moving_var"] == 0)
    assert set(m.state_dict()) == {"gamma", "beta", "moving_mean", "moving_var"}
    assert m.num_parameters() == 6


@pytest.mark.parametrize("dims", [2, 4])
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_after_a_layer(rng, dims, training):
    # the layer before has no bias: in training mode BN cancels it, its gradient is 0 and a
    # relative error of round-off against 0 says nothing
    if dims == 2:
        m, pre = BatchNorm(4, 2), nn.Linear(3, 4, bias=False, rng=rng)
        x = rng.standard_normal((6, 3))
    else:
        m = BatchNorm(2, 4)
        pre = nn.Conv2d(2, 2, 3, padding=1, bias=False, rng=rng)
        x = rng.standard_normal((3, 2, 4, 4))
    m.params["gamma"] = rng.standard_normal(m.params["gamma"].shape).astype(np.float32)
    m.buffers["moving_var"] = m.buffers["moving_var"] + 0.5
    m.train(training)
    report = check_module(m, x, rng, pre=pre, tol=1e-6 if dims == 4 else 1e-7)
    assert report.passed, report.errors


def test_errors():
    with pytest.raises(ValueError, match=r"batch_norm: expected X of 2 dims \(N, D\)"):
        batch_norm(True, np.zeros((2, 3, 4)), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3),
                   1e-5, 0.9)
    with pytest.raises(ValueError, match=r"batch_norm: expected gamma with 3 values"):
        batch_norm(True, np.zeros((2, 3)), np.ones(4), np.zeros(3), np.zeros(3), np.ones(3),
                   1e-5, 0.9)
    with pytest.raises(ValueError, match=r"expected momentum in \[0, 1\] \(the weight of the OLD"):
        batch_norm(True, np.zeros((2, 3)), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3),
                   1e-5, 1.5)
    with pytest.raises(ValueError, match="expected eps > 0"):
        batch_norm(True, np.zeros((2, 3)), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3),
                   0.0, 0.9)
    with pytest.raises(ValueError, match="expected more than 1 value per channel when training"):
        batch_norm(True, np.zeros((1, 3)), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3),
                   1e-5, 0.9)
    with pytest.raises(ValueError, match="BatchNorm: expected num_dims 2"):
        BatchNorm(3, 3)
    with pytest.raises(ValueError, match="BatchNorm: expected num_features a positive int"):
        BatchNorm(0, 2)
    with pytest.raises(ValueError, match="BatchNorm: expected moving_var_init 'ones'"):
        BatchNorm(3, 2, moving_var_init="one")
    with pytest.raises(ValueError, match="BatchNorm: expected 4D input for num_dims=4"):
        BatchNorm(3, 4)(np.zeros((2, 3), np.float32))
    with pytest.raises(RuntimeError, match="expected forward\\(\\) before backward\\(\\)"):
        BatchNorm(3, 2).backward(np.zeros((2, 3)))
