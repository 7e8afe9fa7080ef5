"""Conv1d / Conv2d modules: initialisation, PyTorch parity, gradient checks, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from normlab import nn
from normlab.gradcheck import check_module


def _torch_twin(m, cls):
    t = cls(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
            dilation=m.dilation, groups=m.groups, bias="bias" in m.params, dtype=torch.float64)
    t.load_state_dict({k: torch.tensor(v) for k, v in m.state_dict().items()})
    return t


@pytest.mark.parametrize("make, cls, xs", [
    (lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, rng=0), torch.nn.Conv2d,
     (2, 4, 7, 6)),
    (lambda: nn.Conv2d(3, 2, (2, 3), dilation=(2, 1), bias=False, rng=0), torch.nn.Conv2d,
     (2, 3, 6, 5)),
    (lambda: nn.Conv1d(3, 4, 3, stride=2, padding=1, rng=0), torch.nn.Conv1d, (2, 3, 8)),
])
def test_matches_torch_module(make, cls, xs, rng):
    m = make().to(dtype=np.float64)
    t = _torch_twin(m, cls)
    x = rng.standard_normal(xs)
    tx = torch.tensor(x, requires_grad=True)
    out, tout = m(x), t(tx)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-7, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(m.backward(dout), tx.grad.numpy(), rtol=1e-7, atol=1e-12)
    for name, p in t.named_parameters():
        np.testing.assert_allclose(m.grads[name], p.grad.numpy(), rtol=1e-7, atol=1e-12)


def test_default_init_is_pytorch_uniform():
    m = nn.Conv2d(8, 16, 3, groups=2, rng=0)
    assert m.params["weight"].shape == (16, 4, 3, 3) and m.params["bias"].shape == (16,)
    assert m.params["weight"].dtype == np.float32
    bound = 1.0 / math.sqrt(4 * 9)  # fan_in = in/groups * KH * KW
    for p in m.params.values():
        assert np.abs(p).max() <= bound
    assert np.abs(m.params["weight"]).max() > 0.9 * bound  # spans the interval, not smaller
    assert list(m.state_dict()) == list(torch.nn.Conv2d(8, 16, 3, groups=2).state_dict())
    np.testing.assert_array_equal(nn.Conv2d(8, 16, 3, rng=5).params["weight"],
                                  nn.Conv2d(8, 16, 3, rng=5).params["weight"])


@pytest.mark.parametrize("make, xs", [
    (lambda rng: nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=rng), (2, 2, 5, 6)),
    (lambda rng: nn.Conv1d(4, 2, 3, dilation=2, groups=2, padding=2, rng=rng), (2, 4, 7)),
])
def test_gradcheck_with_a_layer_before(make, xs):
    rng = np.random.default_rng(1)
    pre_cls = nn.Conv2d if len(xs) == 4 else nn.Conv1d
    pre = pre_cls(xs[1], xs[1], 1, rng=rng)  # 1x1 convolution feeding the layer under test
    report = check_module(make(rng), rng.standard_normal(xs), rng, pre=pre, tol=1e-6)
    assert {"dx", "weight", "bias", "pre.weight", "pre.bias"} <= set(report.errors)
    assert report.passed, report.errors


@pytest.mark.parametrize("kwargs, match", [
    (dict(in_channels=3, out_channels=4, kernel_size=3, groups=2),
     r"Conv2d: expected in_channels and out_channels divisible by groups=2, got in_channels=3"),
    (dict(in_channels=4, out_channels=4, kernel_size=3, padding_mode="reflect"),
     r"Conv2d: expected padding_mode='zeros' .*, got 'reflect'"),
    (dict(in_channels=4, out_channels=4, kernel_size=3, stride=0),
     r"Conv2d: expected positive stride, got stride=\(0, 0\)"),
    (dict(in_channels=4, out_channels=4, kernel_size=(3, 0)),
     r"Conv2d: expected positive kernel_size"),
    (dict(in_channels=0, out_channels=4, kernel_size=3),
     r"Conv2d: expected in_channels to be a positive int, got 0"),
    (dict(in_channels=4, out_channels=4, kernel_size=3, padding="same"),
     r"Conv2d: expected padding to be an int or a tuple of 2 ints, got 'same'"),
    (dict(in_channels=4, out_channels=4, kernel_size=3, padding=-1),
     r"Conv2d: expected non-negative padding"),
])
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.Conv2d(**kwargs)


def test_forward_errors():
    m = nn.Conv2d(3, 4, 3, rng=0)
    with pytest.raises(ValueError, match=r"Conv2d: expected 4D input \(N, C, H, W\), got 3D "
                                         r"input of shape \(3, 8, 8\)\. Add the batch axis"):
        m(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d: expected input with 3 channels \(axis 1\), "
                                         r"got 5 channels"):
        m(np.zeros((1, 5, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"conv2d_forward: expected a kernel no larger than "
                                         r"the padded input"):
        m(np.zeros((1, 3, 2, 8), np.float32))
    with pytest.raises(ValueError, match=r"Conv1d: expected 3D input \(N, C, L\), got 4D"):
        nn.Conv1d(3, 4, 3, rng=0)(np.zeros((1, 3, 8, 8), np.float32))


def test_repr():
    assert repr(nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False, rng=0)) == (
        "Conv2d(3, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)")


def test_eval_forward_keeps_no_winograd_transforms_and_backward_still_works(monkeypatch):
    from normlab.functional import _winograd

    monkeypatch.setattr(_winograd, "REUSE_MIN_CHANNELS", 32)  # training keeps them
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(32, 32, 3, padding=1, rng=0)
    x = rng.standard_normal((8, 32, 16, 16)).astype(np.float32)  # 8 x 4x4 F(4x4) tiles
    dout = rng.standard_normal((8, 32, 16, 16)).astype(np.float32)
    out = conv(x)
    assert conv._cache.winograd and conv._cache.wino_tiles is not None  # training keeps V
    dx = conv.backward(dout)
    dw = conv.grads["weight"].copy()
    conv.eval()
    np.testing.assert_array_equal(conv(x), out)
    assert conv._cache.wino_tiles is None  # eval keeps none (2.25x the input's memory)
    np.testing.assert_array_equal(conv.backward(dout), dx)
    np.testing.assert_allclose(conv.grads["weight"], dw, rtol=1e-5, atol=1e-5)
