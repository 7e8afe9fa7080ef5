"""Inverted dropout: statistics, eval identity, mask reuse in backward, seeding, edge p."""

import numpy as np
import pytest

from normlab import backend
from normlab import functional as F
from normlab.gradcheck import numerical_gradient, rel_error


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_zero_fraction_and_mean_are_preserved(p):
    x = np.full((200, 500), 2.0, dtype=np.float32)  # 1e5 elements
    out, _ = F.dropout_forward(x, p, True, np.random.default_rng(0))
    n = x.size
    zero_frac = float(np.mean(out == 0))
    # binomial standard error sqrt(p(1-p)/n) <= 1.6e-3; 5 standard errors
    assert abs(zero_frac - p) < 5 * np.sqrt(p * (1 - p) / n)
    kept = out[out != 0]
    np.testing.assert_allclose(kept, np.float32(2.0 / (1 - p)), rtol=1e-6)
    # E[out] = x; std of the mean of out is 2 * sqrt(p / ((1-p) n))
    assert abs(float(out.mean(dtype=np.float64)) - 2.0) < 5 * 2.0 * np.sqrt(p / ((1 - p) * n))


def test_identity_when_not_training_or_p_zero(rng):
    x = rng.standard_normal((3, 4))
    for p, training in [(0.5, False), (0.0, True), (1.0, False)]:
        out, cache = F.dropout_forward(x, p, training, np.random.default_rng(0))
        np.testing.assert_array_equal(out, x)
        np.testing.assert_array_equal(F.dropout_backward(x * 3.0, cache), x * 3.0)


def test_p_zero_and_eval_do_not_draw_from_the_generator():
    g = np.random.default_rng(5)
    F.dropout_forward(np.ones(4), 0.0, True, g)
    F.dropout_forward(np.ones(4), 0.5, False, g)
    assert g.random() == np.random.default_rng(5).random()


def test_p_one_gives_zeros_without_nan(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    out, cache = F.dropout_forward(x, 1.0, True, rng)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.zeros_like(x))
    dx = F.dropout_backward(np.ones_like(x), cache)
    np.testing.assert_array_equal(dx, np.zeros_like(x))


def test_backward_uses_the_forward_mask(rng):
    x = rng.standard_normal((6, 7))
    out, cache = F.dropout_forward(x, 0.4, True, np.random.default_rng(1))
    dout = rng.standard_normal((6, 7))
    dx = F.dropout_backward(dout, cache)
    kept = out != 0
    assert 0 < kept.sum() < x.size
    np.testing.assert_array_equal(dx == 0, ~kept)
    np.testing.assert_allclose(dx[kept], dout[kept] / 0.6, rtol=1e-15)


def test_gradcheck_with_a_fixed_mask_after_a_linear_layer(rng):
    x = rng.standard_normal((4, 5))
    w = rng.standard_normal((6, 5))
    dout = rng.standard_normal((4, 6))

    def f(xin):  # the same seed redraws the same mask on every evaluation
        return F.dropout_forward(F.linear_forward(xin, w)[0], 0.3, True,
                                 np.random.default_rng(9))[0]

    h, lin_cache = F.linear_forward(x, w)
    _, cache = F.dropout_forward(h, 0.3, True, np.random.default_rng(9))
    dx, _, _ = F.linear_backward(F.dropout_backward(dout, cache), lin_cache)
    assert rel_error(dx, numerical_gradient(f, x, dout)) < 1e-7


def test_deterministic_under_a_seed_and_int_seed_accepted(rng):
    x = rng.standard_normal((5, 5))
    a, _ = F.dropout_forward(x, 0.5, True, np.random.default_rng(3))
    b, _ = F.dropout_forward(x, 0.5, True, np.random.default_rng(3))
    c, _ = F.dropout_forward(x, 0.5, True, 3)
    d, _ = F.dropout_forward(x, 0.5, True, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, d)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_input_not_mutated(rng, dtype):
    x = rng.standard_normal((4, 4)).astype(dtype)
    before = x.copy()
    out, cache = F.dropout_forward(x, 0.3, True, rng)
    assert out.dtype == dtype and F.dropout_backward(np.ones_like(x), cache).dtype == dtype
    np.testing.assert_array_equal(x, before)


def test_p_validation():
    x = np.ones(3)
    with pytest.raises(ValueError, match=r"dropout_forward: expected dropout probability p in "
                                         r"\[0, 1\], got 1\.5\. p is the probability of "
                                         r"DROPPING"):
        F.dropout_forward(x, 1.5, True, 0)
    with pytest.raises(ValueError, match=r"got -0\.1"):
        F.dropout_forward(x, -0.1, True, 0)
    with pytest.raises(ValueError, match=r"got nan"):
        F.dropout_forward(x, float("nan"), True, 0)
    with pytest.raises(TypeError, match=r"dropout_forward: expected p to be a float in "
                                        r"\[0, 1\], got str '0\.5'"):
        F.dropout_forward(x, "0.5", True, 0)
    with pytest.raises(TypeError, match=r"got bool True"):
        F.dropout_forward(x, True, True, 0)


@pytest.mark.gpu
def test_cuda_draws_the_same_mask_as_cpu(rng):
    x = rng.standard_normal((6, 7)).astype(np.float32)
    out, cache = F.dropout_forward(backend.to_device(x, "cuda"), 0.4, True,
                                   np.random.default_rng(0))
    ref, _ = F.dropout_forward(x, 0.4, True, np.random.default_rng(0))
    assert backend.device_of(out) == "cuda" and out.dtype == np.float32
    np.testing.assert_array_equal(backend.to_numpy(out), ref)
    dx = F.dropout_backward(backend.to_device(np.ones_like(x), "cuda"), cache)
    np.testing.assert_array_equal(backend.to_numpy(dx) == 0, ref == 0)
