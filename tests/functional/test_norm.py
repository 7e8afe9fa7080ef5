"""normlab.functional.norm: layer, group, instance and RMS norm against closed forms and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normlab import functional as F
from normlab.gradcheck import numerical_gradient, rel_error

TF = torch.nn.functional


def _close(ours, theirs):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-7, atol=1e-12)


def _torch_check(rng, shape, param_shape, ours_fwd, ours_bwd, theirs, n_params):
    """Run ours and torch's op on the same float64 data; compare out, dx and param grads."""
    x = 2.0 * rng.standard_normal(shape) + 0.5
    params = [rng.standard_normal(param_shape) for _ in range(n_params)]
    dout = rng.standard_normal(shape)
    out, cache = ours_fwd(x, *params)
    grads = ours_bwd(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    pt = [torch.tensor(p, requires_grad=True) for p in params]
    ot = theirs(xt, *pt)
    ot.backward(torch.tensor(dout))
    _close(out, ot)
    _close(grads[0], xt.grad)
    for g, p in zip(grads[1:], pt):
        _close(g, p.grad)


@pytest.mark.parametrize("shape,k", [((4, 5), 1), ((2, 3, 4), 2), ((2, 2, 3, 3), 3)])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_matches_torch(rng, shape, k, affine):
    ns = shape[-k:]
    n = {"both": 2, "weight": 1, "none": 0}[affine]

    def ours(x, g=None, b=None):
        return F.layer_norm_forward(x, g, b, normalized_ndim=k, eps=1e-5)

    def theirs(x, g=None, b=None):
        return TF.layer_norm(x, ns, g, b, eps=1e-5)

    _torch_check(rng, shape, ns, ours, F.layer_norm_backward, theirs, n)


@pytest.mark.parametrize("shape,G", [((3, 6), 3), ((2, 4, 5), 2), ((2, 6, 2, 3), 3),
                                     ((2, 4, 2, 2, 2), 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(rng, shape, G, affine):
    def ours(x, g=None, b=None):
        return F.group_norm_forward(x, g, b, num_groups=G, eps=1e-5)

    def theirs(x, g=None, b=None):
        return TF.group_norm(x, G, g, b, eps=1e-5)

    _torch_check(rng, shape, (shape[1],), ours, F.group_norm_backward, theirs, 2 * affine)


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 3, 4), (2, 2, 2, 3, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_instance_norm_matches_torch(rng, shape, affine):
    def ours(x, g=None, b=None):
        return F.instance_norm_forward(x, g, b, eps=1e-5)

    def theirs(x, g=None, b=None):
        return TF.instance_norm(x, weight=g, bias=b, eps=1e-5)

    _torch_check(rng, shape, (shape[1],), ours, F.instance_norm_backward, theirs, 2 * affine)


@pytest.mark.parametrize("shape,k", [((4, 5), 1), ((2, 3, 4), 2)])
@pytest.mark.parametrize("eps", [None, 1e-6])
@pytest.mark.parametrize("affine", [True, False])
def test_rms_norm_matches_torch(rng, shape, k, eps, affine):
    ns = shape[-k:]

    def ours(x, g=None):
        return F.rms_norm_forward(x, g, normalized_ndim=k, eps=eps)

    def theirs(x, g=None):
        return TF.rms_norm(x, ns, g, eps=eps)

    _torch_check(rng, shape, ns, ours, F.rms_norm_backward, theirs, int(affine))


def test_layer_norm_closed_form(rng):
    x = 3.0 * rng.standard_normal((4, 6)) + 2.0
    out, cache = F.layer_norm_forward(x, None, None, normalized_ndim=1, eps=1e-12)
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(cache.var[:, 0], x.var(axis=1), rtol=1e-12)


def test_instance_norm_is_group_norm_with_one_channel_per_group(rng):
    x, g, b = rng.standard_normal((2, 3, 4, 2)), rng.standard_normal(3), rng.standard_normal(3)
    dout = rng.standard_normal(x.shape)
    out_i, cache_i = F.instance_norm_forward(x, g, b)
    out_g, cache_g = F.group_norm_forward(x, g, b, num_groups=3)
    np.testing.assert_allclose(out_i, out_g, rtol=1e-12, atol=1e-14)
    for a, c in zip(F.instance_norm_backward(dout, cache_i), F.group_norm_backward(dout, cache_g)):
        np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-13)


def test_layer_norm_over_chw_is_group_norm_with_one_group(rng):
    x = rng.standard_normal((2, 4, 3, 2))
    out_l, _ = F.layer_norm_forward(x, None, None, normalized_ndim=3)
    out_g, _ = F.group_norm_forward(x, None, None, num_groups=1)
    np.testing.assert_allclose(out_l, out_g, rtol=1e-12, atol=1e-14)


def test_rms_norm_default_eps_is_machine_epsilon_of_the_dtype(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    out, cache = F.rms_norm_forward(x, None, normalized_ndim=1)
    eps = np.finfo(np.float32).eps
    expected = x / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + eps)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32 and cache.mean is None


CASES = {
    "layer": (lambda x, g, b: F.layer_norm_forward(x, g, b, normalized_ndim=2),
              F.layer_norm_backward, lambda s: s[-2:]),
    "group": (lambda x, g, b: F.group_norm_forward(x, g, b, num_groups=2),
              F.group_norm_backward, lambda s: (s[1],)),
    "instance": (lambda x, g, b: F.instance_norm_forward(x, g, b),
                 F.instance_norm_backward, lambda s: (s[1],)),
    "rms": (lambda x, g, b: F.rms_norm_forward(x, g, normalized_ndim=2),
            lambda d, c: (*F.rms_norm_backward(d, c), None), lambda s: s[-2:]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_gradients_match_numerical(rng, name):
    fwd, bwd, pshape = CASES[name]
    shape = (2, 4, 3)
    x = rng.standard_normal(shape)
    g = 1.0 + 0.5 * rng.standard_normal(pshape(shape))
    b = rng.standard_normal(pshape(shape))
    dout = rng.standard_normal(shape)
    dx, dg, db = bwd(dout, fwd(x, g, b)[1])
    assert rel_error(dx, numerical_gradient(lambda v: fwd(v, g, b)[0], x, dout)) < 1e-7
    assert rel_error(dg, numerical_gradient(lambda v: fwd(x, v, b)[0], g, dout)) < 1e-7
    if db is not None:
        assert rel_error(db, numerical_gradient(lambda v: fwd(x, g, v)[0], b, dout)) < 1e-7


@pytest.mark.parametrize("name", list(CASES))
def test_float32_kept_and_inputs_not_mutated(rng, name):
    fwd, bwd, pshape = CASES[name]
    shape = (2, 4, 3)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(pshape(shape)).astype(np.float32)
    b = rng.standard_normal(pshape(shape)).astype(np.float32)
    dout = rng.standard_normal(shape).astype(np.float32)
    copies = [a.copy() for a in (x, g, b, dout)]
    out, cache = fwd(x, g, b)
    grads = bwd(dout, cache)
    assert out.dtype == np.float32
    assert all(a.dtype == np.float32 for a in grads if a is not None)
    for a, c in zip((x, g, b, dout), copies):
        np.testing.assert_array_equal(a, c)


def test_empty_batch_gives_empty_output(rng):
    x = np.zeros((0, 4, 3))
    for fwd, bwd, _ in CASES.values():
        out, cache = fwd(x, None, None)
        assert out.shape == x.shape and bwd(np.zeros_like(out), cache)[0].shape == x.shape


def test_errors_name_the_fix(rng):
    x = rng.standard_normal((2, 6, 3))
    with pytest.raises(ValueError, match=r"layer_norm_forward: expected 1 <= normalized_ndim "
                                         r"<= x.ndim \(3\), got normalized_ndim=4"):
        F.layer_norm_forward(x, None, None, normalized_ndim=4)
    with pytest.raises(ValueError, match=r"rms_norm_forward: expected 1 <= normalized_ndim "
                                         r"<= x.ndim \(3\), got normalized_ndim=0"):
        F.rms_norm_forward(x, None, normalized_ndim=0)
    with pytest.raises(ValueError, match=r"group_norm_forward: expected input \(N, C, \*\) "
                                         r"with C divisible by num_groups=4, got input of "
                                         r"shape \(2, 6, 3\)"):
        F.group_norm_forward(x, None, None, num_groups=4)
    with pytest.raises(ValueError, match=r"instance_norm_forward: expected input \(N, C, "
                                         r"\*spatial\) with at least 3 dims, got input of "
                                         r"shape \(2, 6\)\. Add a batch axis"):
        F.instance_norm_forward(x[:, :, 0], None, None)
