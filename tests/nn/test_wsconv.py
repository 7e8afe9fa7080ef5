"""WSConv2d: torch autograd reference of weight standardisation, invariances, gradcheck, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normlab import nn
from normlab.gradcheck import check_module
from normlab.nn.catalog import ElementwiseAffine


def _torch_ws_conv(x, w, b, eps, **kw):
    """Standardise each filter (biased variance, eps inside the root), then conv2d."""
    flat = w.reshape(w.shape[0], -1)
    mean = flat.mean(dim=1, keepdim=True)
    var = flat.var(dim=1, unbiased=False, keepdim=True)
    w_hat = ((flat - mean) / torch.sqrt(var + eps)).reshape(w.shape)
    return torch.nn.functional.conv2d(x, w_hat, b, **kw)


@pytest.mark.parametrize("kw", [
    {},
    {"stride": 2, "padding": 1},
    {"groups": 2, "bias": False, "eps": 1e-3},
    {"dilation": 2, "padding": 2},
])
def test_matches_torch_autograd_reference(rng, kw):
    eps = kw.get("eps", 1e-5)
    m = nn.WSConv2d(4, 6, 3, rng=rng, **kw).to(dtype=np.float64)
    x = rng.standard_normal((2, 4, 7, 6))
    out = m(x)
    dout = rng.standard_normal(out.shape)
    dx = m.backward(dout)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(m.params["weight"], requires_grad=True)
    bt = torch.tensor(m.params["bias"], requires_grad=True) if "bias" in m.params else None
    conv_kw = {k: v for k, v in kw.items() if k in ("stride", "padding", "dilation", "groups")}
    ot = _torch_ws_conv(xt, wt, bt, eps, **conv_kw)
    ot.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, ot.detach().numpy(), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(m.grads["weight"], wt.grad.numpy(), rtol=1e-7, atol=1e-12)
    if bt is not None:
        np.testing.assert_allclose(m.grads["bias"], bt.grad.numpy(), rtol=1e-7, atol=1e-12)


def test_standardized_filters_have_mean_0_and_biased_variance_var_over_var_plus_eps(rng):
    m = nn.WSConv2d(3, 5, 3, rng=rng, eps=1e-3).to(dtype=np.float64)
    w_hat, _ = m.standardized_weight()
    flat, raw = w_hat.reshape(5, -1), m.params["weight"].reshape(5, -1)
    np.testing.assert_allclose(flat.mean(axis=1), 0.0, atol=1e-15)
    var = raw.var(axis=1)
    np.testing.assert_allclose(flat.var(axis=1), var / (var + 1e-3), rtol=1e-12)


def test_output_invariant_to_affine_rescaling_of_each_filter(rng):
    """W[o] -> a[o] * W[o] + c[o] (a > 0) leaves the output unchanged (up to eps) and the
    weight gradient is orthogonal to the filter's constant and linear directions."""
    m = nn.WSConv2d(2, 3, 3, padding=1, rng=rng, eps=1e-12).to(dtype=np.float64)
    x = rng.standard_normal((2, 2, 5, 5))
    out = m(x)
    m.backward(np.ones_like(out))
    g = m.grads["weight"].reshape(3, -1)
    w = m.params["weight"].reshape(3, -1)
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-9)
    np.testing.assert_allclose((g * w).sum(axis=1), 0.0, atol=1e-9)
    a = np.array([0.5, 2.0, 7.0])[:, None, None, None]
    m.params["weight"] = m.params["weight"] * a + np.array([1.0, -3.0, 0.2])[:, None, None, None]
    np.testing.assert_allclose(m(x), out, rtol=1e-8, atol=1e-10)


def test_gradcheck(rng):
    m = nn.WSConv2d(3, 4, 3, stride=2, padding=1, rng=rng)
    report = check_module(m, rng.standard_normal((2, 3, 5, 5)), rng,
                          pre=ElementwiseAffine((3, 1, 1), rng), tol=1e-6)
    assert report.passed, report.errors


def test_is_a_conv2d_but_not_folded_into(rng):
    from normlab.interop import fold_batchnorm  # noqa: PLC0415

    seq = nn.Sequential(nn.WSConv2d(2, 3, 3, rng=rng), nn.BatchNorm2d(3)).eval()
    assert isinstance(seq[0], nn.Conv2d)
    folded = fold_batchnorm(seq)
    assert isinstance(folded[1], nn.BatchNorm2d)  # scaling W would be undone by the WS


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="WSConv2d: expected eps > 0, got eps=0"):
        nn.WSConv2d(2, 3, 3, eps=0.0)
    with pytest.raises(ValueError, match=r"WSConv2d: expected more than 1 weight per output "
                                         r"filter, got in_channels/groups \* kh \* kw = 1"):
        nn.WSConv2d(2, 2, 1, groups=2)
    with pytest.raises(ValueError, match="WSConv2d: expected in_channels and out_channels "
                                         "divisible by groups"):
        nn.WSConv2d(3, 4, 3, groups=2)
