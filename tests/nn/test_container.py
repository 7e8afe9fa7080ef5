"""Sequential: requires_dx (skipping the first layer's input gradient)."""

from __future__ import annotations

import numpy as np
import pytest

from normlab import models, nn
from normlab.functional import _winograd


def _grads(model):
    return {name: g.copy() for name, _, g in model.named_parameters()}


@pytest.mark.parametrize("build, shape", [
    (lambda: models.FullyConnectedNet((8, 6), input_dim=12, norm="batch", rng=0), (5, 3, 4)),
    (lambda: models.ThreeLayerConvNet((3, 8, 8), num_filters=4, filter_size=3, hidden_dim=7,
                                      rng=0), (4, 3, 8, 8)),
    (lambda: models.resnet20(base_width=16, rng=0), (2, 3, 8, 8)),  # blocks and shortcuts
    # models that reshape Sequential's dx (regression: a None dx crashed the Trainer)
    (lambda: models.LinearBase(rng=0), (3, 1, 40)),
    (lambda: models.ConvBase(rng=0), (3, 1, 40)),
    (lambda: models.MLPBase(rng=0), (3, 40)),  # a plain Module: ignores the flag
], ids=["mlp", "convnet", "resnet20", "mnist1d-linear", "mnist1d-cnn", "mnist1d-mlp"])
def test_requires_dx_false_returns_none_and_the_same_parameter_gradients(build, shape, rng):
    model = build()
    x = rng.standard_normal(shape).astype(np.float32)
    dout_shape = model(x).shape
    dout = rng.standard_normal(dout_shape).astype(np.float32)
    model(x)
    dx = model.backward(dout)
    assert dx is not None and dx.shape == x.shape
    full = _grads(model)
    model.set_requires_dx(False)
    model(x)
    skipped_dx = model.backward(dout)
    if isinstance(model, nn.Sequential):
        assert skipped_dx is None
    else:  # the contract allows ignoring the flag: then dx is still right
        np.testing.assert_array_equal(skipped_dx, dx)
    skipped = _grads(model)
    assert full.keys() == skipped.keys()
    for name in full:
        np.testing.assert_array_equal(skipped[name], full[name], err_msg=name)
    model.set_requires_dx(True)  # and back: dx again
    model(x)
    np.testing.assert_array_equal(model.backward(dout), dx)


def test_only_the_first_learnable_child_skips_dx():
    seq = nn.Sequential(nn.Flatten(), nn.Linear(6, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=1))
    seq.set_requires_dx(False)
    assert [m.requires_dx for m in seq] == [True, False, True, True]
    seq.set_requires_dx(True)
    assert all(m.requires_dx for m in seq)


@pytest.mark.parametrize("winograd", [True, False])
def test_conv_and_linear_modules_skip_dx(winograd, rng):
    old = _winograd.use_winograd(winograd)
    try:
        for layer, x in ((nn.Conv2d(16, 16, 3, padding=1, rng=0),
                          rng.standard_normal((2, 16, 6, 6)).astype(np.float32)),
                         (nn.Linear(5, 3, rng=0), rng.standard_normal((4, 5)).astype(np.float32))):
            out = layer(x)
            dout = rng.standard_normal(out.shape).astype(np.float32)
            assert layer.backward(dout) is not None
            dw = layer.grads["weight"].copy()
            layer.set_requires_dx(False)
            layer(x)
            assert layer.backward(dout) is None
            np.testing.assert_array_equal(layer.grads["weight"], dw)
    finally:
        _winograd.use_winograd(old)


def test_a_module_that_ignores_the_flag_still_returns_dx(rng):
    relu = nn.ReLU().set_requires_dx(False)  # nothing to skip: the contract holds
    x = rng.standard_normal((3, 4))
    relu(x)
    assert relu.backward(np.ones((3, 4))).shape == (3, 4)
