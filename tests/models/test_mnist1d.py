"""MNIST-1D reference models: shapes, residual wiring, gradients, overfitting, errors."""

import numpy as np
import pytest

from normlab.models import ConvBase, LinearBase, MLPBase


@pytest.mark.parametrize("make", [lambda: LinearBase(rng=0), lambda: MLPBase(rng=0),
                                  lambda: ConvBase(rng=0), lambda: MLPBase(norm="batch", rng=0),
                                  lambda: ConvBase(norm="batch", rng=0)])
@pytest.mark.parametrize("shape", [(4, 40), (4, 1, 40)])
def test_shapes(make, shape, rng):
    net = make()
    x = rng.standard_normal(shape).astype(np.float32)
    out = net(x)
    assert out.shape == (4, 10) and out.dtype == np.float32
    assert net.backward(np.ones_like(out)).shape == shape


def test_parameter_counts():
    assert LinearBase().num_parameters() == 40 * 10 + 10
    assert MLPBase().num_parameters() == (40 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10)
    assert MLPBase(norm="batch").num_parameters() == MLPBase().num_parameters() + 400
    conv = (25 * 1 * 5 + 25) + 2 * (25 * 25 * 3 + 25)
    assert ConvBase().num_parameters() == conv + 125 * 10 + 10  # lengths 40 -> 19 -> 10 -> 5
    assert ConvBase(norm="batch").num_parameters() == conv + 1260 + 150


def test_mlp_residual_forward(rng):
    net = MLPBase(input_length=6, hidden=4, num_classes=3, dtype=np.float64, rng=0)
    x = rng.standard_normal((2, 6))

    def lin(m, h):
        return h @ m.params["weight"].T + m.params["bias"]

    h1 = np.maximum(lin(net.linear1, x), 0)
    h2 = h1 + np.maximum(lin(net.linear2, h1), 0)
    np.testing.assert_allclose(net(x), lin(net.linear3, h2), rtol=1e-12)


@pytest.mark.parametrize("make, zero", [
    (lambda: LinearBase(input_length=8, num_classes=3, dtype=np.float64, rng=1), ()),
    (lambda: MLPBase(input_length=8, hidden=5, num_classes=3, dtype=np.float64, rng=1), ()),
    (lambda: MLPBase(input_length=8, hidden=6, num_classes=3, norm="batch", dtype=np.float64,
                     rng=1), ("linear1.bias", "linear2.bias")),
    (lambda: MLPBase(input_length=8, hidden=16, num_classes=3, norm="group", dtype=np.float64,
                     rng=1), ()),
    (lambda: ConvBase(input_length=12, channels=2, num_classes=3, dtype=np.float64, rng=1), ()),
    (lambda: ConvBase(input_length=12, channels=2, num_classes=3, norm="batch",
                      dtype=np.float64, rng=1), ("conv1.bias", "conv2.bias", "conv3.bias")),
])
def test_gradcheck(make, zero, gradcheck, rng):
    net = make()
    gradcheck(net, rng.standard_normal((3, net.input_length)), rng, tol=1e-6, zero=zero)


@pytest.mark.parametrize("make", [lambda: LinearBase(rng=0), lambda: MLPBase(hidden=32, rng=0),
                                  lambda: ConvBase(channels=8, norm="batch", rng=0)])
def test_overfits_a_batch_of_20(make, overfit, rng):
    x = rng.standard_normal((20, 40)).astype(np.float32)
    y = rng.integers(0, 10, 20)
    assert overfit(make(), x, y, steps=150) == 1.0


def test_errors(rng):
    with pytest.raises(ValueError, match=r"MLPBase: expected hidden to be a positive int, got 0"):
        MLPBase(hidden=0)
    with pytest.raises(ValueError, match=r"LinearBase: expected input_length to be a positive int"):
        LinearBase(input_length=-1)
    with pytest.raises(ValueError, match=r"ConvBase: expected norm in .*got 'x'"):
        ConvBase(norm="x")
    with pytest.raises(ValueError, match=r"ConvBase: expected input_length >= 3, got 2"):
        ConvBase(input_length=2)
    with pytest.raises(ValueError, match=r"expected \(N, C, L\) or \(N, C, H, W\) features"):
        MLPBase(norm="instance")
    x = rng.standard_normal((2, 2, 40)).astype(np.float32)
    for net in (LinearBase(rng=0), MLPBase(rng=0), ConvBase(rng=0)):
        name = type(net).__name__
        with pytest.raises(ValueError, match=rf"{name}: expected input \(N, 40\) or \(N, 1, 40\), "
                                             r"got input of shape \(2, 2, 40\)"):
            net(x)
