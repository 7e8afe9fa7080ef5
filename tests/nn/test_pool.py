"""Pooling modules: PyTorch parity, gradient checks, rejected options, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normlab import nn
from normlab.gradcheck import check_module


@pytest.mark.parametrize("ours, theirs, xs", [
    (nn.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1), (2, 3, 7, 6)),
    (nn.MaxPool2d(2), torch.nn.MaxPool2d(2), (2, 3, 7, 5)),
    (nn.MaxPool1d(3, 2), torch.nn.MaxPool1d(3, 2), (2, 3, 8)),
    (nn.AvgPool2d((3, 2), 1, (1, 0)), torch.nn.AvgPool2d((3, 2), 1, (1, 0)), (2, 3, 5, 6)),
    (nn.AvgPool1d(2), torch.nn.AvgPool1d(2), (2, 3, 7)),
    (nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1), (2, 3, 5, 4)),
    (nn.AdaptiveAvgPool2d((3, None)), torch.nn.AdaptiveAvgPool2d((3, None)), (2, 3, 5, 4)),
])
def test_matches_torch_module(ours, theirs, xs, rng):
    x = rng.standard_normal(xs)
    tx = torch.tensor(x, requires_grad=True)
    out, tout = ours(x), theirs(tx)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-7, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(ours.backward(dout), tx.grad.numpy(), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("m, xs", [
    (nn.MaxPool2d(2, 1), (2, 2, 4, 5)),
    (nn.AvgPool2d(3, 2, 1), (2, 2, 5, 5)),
    (nn.AdaptiveAvgPool2d((2, 2)), (2, 2, 5, 3)),
    (nn.MaxPool1d(2), (2, 2, 5)),
])
def test_gradcheck_with_a_layer_before(m, xs):
    rng = np.random.default_rng(2)
    pre_cls = nn.Conv2d if len(xs) == 4 else nn.Conv1d
    report = check_module(m, rng.standard_normal(xs), rng, pre=pre_cls(2, 2, 1, rng=rng),
                          tol=1e-6)
    assert {"dx", "pre.weight", "pre.bias"} <= set(report.errors)
    assert report.passed, report.errors


@pytest.mark.parametrize("make, match", [
    (lambda: nn.MaxPool2d(3, padding=2), r"MaxPool2d: expected padding at most half of "
                                         r"kernel_size, got padding=\(2, 2\)"),
    (lambda: nn.MaxPool2d(2, stride=0), r"MaxPool2d: expected positive stride"),
    (lambda: nn.MaxPool2d(2, ceil_mode=True), r"MaxPool2d: expected ceil_mode=False .*got "
                                              r"ceil_mode=True"),
    (lambda: nn.MaxPool2d(2, dilation=2), r"MaxPool2d: expected dilation=1"),
    (lambda: nn.MaxPool1d(2, return_indices=True), r"MaxPool1d: expected return_indices=False"),
    (lambda: nn.AvgPool2d(2, count_include_pad=False), r"AvgPool2d: expected "
                                                       r"count_include_pad=True"),
    (lambda: nn.AvgPool2d(2, divisor_override=3), r"AvgPool2d: expected divisor_override=None"),
    (lambda: nn.AvgPool1d(0), r"AvgPool1d: expected positive kernel_size"),
    (lambda: nn.AdaptiveAvgPool2d(0), r"AdaptiveAvgPool2d: expected output_size to be a "
                                      r"positive int"),
])
def test_constructor_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_forward_errors():
    with pytest.raises(ValueError, match=r"MaxPool2d: expected 4D input \(N, C, H, W\), got 2D"):
        nn.MaxPool2d(2)(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"AvgPool1d: expected 3D input \(N, C, L\), got 4D"):
        nn.AvgPool1d(2)(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool2d: expected 4D input"):
        nn.AdaptiveAvgPool2d(1)(np.zeros((1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"max_pool2d_forward: expected a kernel no larger"):
        nn.MaxPool2d(3)(np.zeros((1, 1, 2, 2), np.float32))
