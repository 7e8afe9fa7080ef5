"""BatchRenorm1d/2d: a PyTorch autograd reference of Ioffe 2017, BN identity, schedule, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normlab import functional as F
from normlab import nn
from normlab.gradcheck import check_module
from normlab.nn.catalog import ElementwiseAffine

from tests.nn.test_batchnorm import bn_path, run_torch_parity  # noqa: F401 (fixture)

KINDS = {
    "1d-2D": (nn.BatchRenorm1d, (8, 3)),
    "1d-3D": (nn.BatchRenorm1d, (4, 3, 5)),
    "2d": (nn.BatchRenorm2d, (3, 3, 4, 2)),
}


def _close(ours, theirs):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-12)


class TorchRenorm:
    """Ioffe 2017, Algorithm 1, in torch autograd: r and d detached (stop_gradient)."""

    def __init__(self, C, r_max, d_max, eps, momentum, weight, bias):
        self.r_max, self.d_max, self.eps, self.momentum = r_max, d_max, eps, momentum
        self.weight = torch.tensor(weight, requires_grad=True)
        self.bias = torch.tensor(bias, requires_grad=True)
        self.running_mean = torch.zeros(C, dtype=torch.float64)
        self.running_var = torch.ones(C, dtype=torch.float64)

    def __call__(self, x, training):
        axes = [0] + list(range(2, x.ndim))
        shape = [1, -1] + [1] * (x.ndim - 2)
        sigma = torch.sqrt(self.running_var + self.eps)
        if not training:
            x_hat = (x - self.running_mean.view(shape)) / sigma.view(shape)
        else:
            mu_b = x.mean(dim=axes)
            var_b = x.var(dim=axes, unbiased=False)
            sigma_b = torch.sqrt(var_b + self.eps)
            r = torch.clamp(sigma_b / sigma, 1 / self.r_max, self.r_max).detach()
            d = torch.clamp((mu_b - self.running_mean) / sigma, -self.d_max, self.d_max).detach()
            x_hat = (x - mu_b.view(shape)) / sigma_b.view(shape) * r.view(shape) + d.view(shape)
            m = x.numel() // x.shape[1]
            with torch.no_grad():
                f = self.momentum
                self.running_mean = (1 - f) * self.running_mean + f * mu_b
                self.running_var = (1 - f) * self.running_var + f * var_b * m / (m - 1)
        return x_hat * self.weight.view(shape) + self.bias.view(shape)


@pytest.mark.parametrize("limits", [(1.5, 0.5), (3.0, 5.0), (1.2, 0.1)])
@pytest.mark.parametrize("kind", list(KINDS))
def test_matches_torch_reference_over_steps_then_eval(rng, kind, limits, bn_path):
    cls, shape = KINDS[kind]
    r_max, d_max = limits
    C = shape[1]
    ours = cls(C, r_max=r_max, d_max=d_max, momentum=0.3).to(dtype=np.float64)
    w, b = 1.0 + rng.standard_normal(C), rng.standard_normal(C)
    ours.params["weight"], ours.params["bias"] = w.copy(), b.copy()
    ref = TorchRenorm(C, r_max, d_max, 1e-5, 0.3, w, b)
    for step in range(5):
        training = step < 4
        ours.train(training)
        x = (0.5 + step) * rng.standard_normal(shape) + 0.8 * step  # moves: r, d clip
        dout = rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        ref.weight.grad = ref.bias.grad = None
        ot = ref(xt, training)
        ot.backward(torch.tensor(dout))
        _close(ours(x), ot)
        _close(ours.backward(dout), xt.grad)
        _close(ours.grads["weight"], ref.weight.grad)
        _close(ours.grads["bias"], ref.bias.grad)
        _close(ours.buffers["running_mean"], ref.running_mean)
        _close(ours.buffers["running_var"], ref.running_var)


def test_first_step_closed_form(rng):
    """Fresh statistics (mu = 0, sigma = sqrt(1 + eps)): r and d from the batch alone."""
    m = nn.BatchRenorm1d(2, r_max=2.0, d_max=1.0, eps=1e-5).to(dtype=np.float64)
    x = np.array([[-1.2, 10.0], [-0.2, 10.2], [0.8, 9.8], [1.8, 10.0]])
    mu_b, sigma_b = x.mean(axis=0), np.sqrt(x.var(axis=0) + 1e-5)
    sigma = np.sqrt(1.0 + 1e-5)
    r = np.clip(sigma_b / sigma, 0.5, 2.0)
    d = np.clip(mu_b / sigma, -1.0, 1.0)
    assert r[0] == sigma_b[0] / sigma and r[1] == 0.5 and d[1] == 1.0 and abs(d[0]) < 1
    r_mod, d_mod = m.corrections(mu_b, x.var(axis=0))  # before the step moves the stats
    np.testing.assert_allclose(r_mod, r, rtol=1e-15)
    np.testing.assert_allclose(d_mod, d, rtol=1e-15)
    np.testing.assert_allclose(m(x), (x - mu_b) / sigma_b * r + d, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kw", [{}, {"affine": False}, {"bias": False}, {"momentum": None},
                                {"unbiased_running_var": False}])
@pytest.mark.parametrize("kind", list(KINDS))
def test_r_max_1_d_max_0_is_bit_identical_to_batchnorm(rng, kind, kw, bn_path):
    cls, shape = KINDS[kind]
    bn_cls = nn.BatchNorm1d if cls is nn.BatchRenorm1d else nn.BatchNorm2d
    renorm, bn = cls(3, r_max=1.0, d_max=0.0, **kw), bn_cls(3, **kw)
    for key, p in bn.params.items():
        bn.params[key] = renorm.params[key] = (p + rng.standard_normal(3)).astype(np.float32)
    for step in range(4):
        training = step < 3
        renorm.train(training), bn.train(training)
        x = (rng.standard_normal(shape) * 2 + step).astype(np.float32)
        dout = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_array_equal(renorm(x), bn(x))
        np.testing.assert_array_equal(renorm.backward(dout), bn.backward(dout))
        for key in bn.grads:
            np.testing.assert_array_equal(renorm.grads[key], bn.grads[key])
        for key in bn.buffers:
            np.testing.assert_array_equal(renorm.buffers[key], bn.buffers[key])


def test_r_max_1_d_max_0_matches_torch_batchnorm(rng, bn_path):
    run_torch_parity(nn.BatchRenorm2d(3, r_max=1.0, d_max=0.0), torch.nn.BatchNorm2d(3),
                     (3, 3, 2, 2), rng)


def test_backward_is_batchnorm_backward_with_weight_scaled_by_r(rng):
    m = nn.BatchRenorm1d(3, r_max=10.0, d_max=10.0).to(dtype=np.float64)
    m.buffers["running_var"] = np.array([0.5, 2.0, 4.0])  # r = sigma_B / sigma, unclipped
    m.buffers["running_mean"] = np.array([0.1, -0.2, 0.3])
    x, dout = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    r, d = m.corrections(x.mean(axis=0), x.var(axis=0))
    assert np.all((r > 0.1) & (r < 10) & (r != 1)) and np.all((np.abs(d) < 10) & (d != 0))
    m(x)
    dx = m.backward(dout)
    _, cache = F.batch_norm_forward(x, m.params["weight"] * r, None, axes=(0,))
    np.testing.assert_allclose(dx, F.batch_norm_backward(dout, cache)[0], rtol=1e-13)
    x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5)
    np.testing.assert_allclose(m.grads["weight"], (dout * (x_hat * r + d)).sum(axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(m.grads["bias"], dout.sum(axis=0), rtol=1e-13)


@pytest.mark.parametrize("kw", [{}, {"affine": False}])
def test_gradcheck_where_r_and_d_are_clipped(rng, kw):
    """r and d are constants of the gradient; the numerical gradient agrees where both are
    clipped (running statistics far from the batch), with r != 1 and d != 0."""
    m = nn.BatchRenorm2d(2, r_max=1.5, d_max=0.5, momentum=0.0, **kw).to(dtype=np.float64)
    m.buffers["running_mean"] = np.array([4.0, -4.0])
    m.buffers["running_var"] = np.array([25.0, 0.01])
    if "weight" in m.params:
        m.params["weight"] = np.array([1.3, 0.7])
    x = rng.standard_normal((3, 2, 2, 3))
    r, d = m.corrections(x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)))
    np.testing.assert_array_equal(r, [1 / 1.5, 1.5])
    np.testing.assert_array_equal(d, [-0.5, 0.5])
    pre = ElementwiseAffine((2, 2, 3), rng)
    report = check_module(m, x, rng, pre=pre)
    assert report.passed, report.errors


def test_eval_is_batchnorm_eval_and_leaves_buffers(rng):
    renorm, bn = nn.BatchRenorm2d(2), nn.BatchNorm2d(2)
    for m in (renorm, bn):
        m.buffers["running_mean"] = np.array([0.5, -1.0], np.float32)
        m.buffers["running_var"] = np.array([2.0, 0.5], np.float32)
        m.eval()
    x = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(renorm(x), bn(x))
    np.testing.assert_array_equal(renorm.backward(x), bn.backward(x))
    np.testing.assert_array_equal(renorm.buffers["running_mean"], [0.5, -1.0])


def test_schedule_sets_limits_between_steps(rng):
    """A warm-up schedule 1 -> 3 and 0 -> 5: r and d open up as the limits are raised."""
    m = nn.BatchRenorm1d(1, r_max=1.0, d_max=0.0, momentum=0.0).to(dtype=np.float64)
    m.buffers["running_mean"], m.buffers["running_var"] = np.array([-2.0]), np.array([0.25])
    x = np.linspace(-4.0, 6.0, 16)[:, None]  # mean 1, std 3.2: d = 6, r = 6.4 unclipped
    seen = []
    for r_max, d_max in ((1.0, 0.0), (2.0, 2.5), (3.0, 5.0)):
        m.r_max, m.d_max = r_max, d_max
        r, d = m.corrections(x.mean(axis=0), x.var(axis=0))
        seen.append((float(r[0]), float(d[0])))
        assert "r_max=" + str(r_max) in repr(m)
    assert seen[0] == (1.0, 0.0) and seen[1] == (2.0, 2.5)
    assert seen[2] == (3.0, 5.0)
    m.r_max, m.d_max = 10.0, 10.0
    r, d = m.corrections(x.mean(axis=0), x.var(axis=0))
    np.testing.assert_allclose(d, [6.0], rtol=1e-4)  # (1 + 2) / sqrt(0.25 + eps)
    assert 6.0 < r[0] < 7.0


@pytest.mark.parametrize("kw,exc,msg", [
    ({"r_max": 0.5}, ValueError, r"BatchRenorm1d: expected r_max >= 1, got r_max=0.5"),
    ({"r_max": float("nan")}, ValueError, r"BatchRenorm1d: expected r_max >= 1, got r_max=nan"),
    ({"d_max": -0.1}, ValueError, r"BatchRenorm1d: expected d_max >= 0, got d_max=-0.1"),
    ({"r_max": "3"}, TypeError, r"BatchRenorm1d: expected r_max to be a float, got str"),
    ({"d_max": None}, TypeError, r"BatchRenorm1d: expected d_max to be a float, got NoneType"),
])
def test_bad_limits_at_construction(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        nn.BatchRenorm1d(2, **kw)


def test_bad_limits_set_later_are_refused_and_old_values_kept():
    m = nn.BatchRenorm2d(2)
    with pytest.raises(ValueError, match=r"BatchRenorm2d: expected r_max >= 1, got r_max=0.9"):
        m.r_max = 0.9
    with pytest.raises(ValueError, match=r"BatchRenorm2d: expected d_max >= 0, got d_max=-1"):
        m.d_max = -1
    assert (m.r_max, m.d_max) == (3.0, 5.0)


def test_wrong_rank_and_one_value_per_channel(rng):
    with pytest.raises(ValueError, match=r"BatchRenorm2d: expected 4D input \(N, C, H, W\)"):
        nn.BatchRenorm2d(2)(rng.standard_normal((3, 2)).astype(np.float32))
    with pytest.raises(ValueError, match="BatchRenorm1d: expected more than 1 value per channel"):
        nn.BatchRenorm1d(2)(rng.standard_normal((1, 2)).astype(np.float32))
