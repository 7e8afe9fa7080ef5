"""LeNet (d2l form): layout, shapes, gradients, overfitting, errors."""

import numpy as np
import pytest

from normlab.models import LeNet


def test_layout_with_batch_norm():
    kinds = [type(m).__name__ for m in LeNet(rng=0)]
    assert kinds == ["Conv2d", "BatchNorm2d", "Sigmoid", "AvgPool2d", "Conv2d", "BatchNorm2d",
                     "Sigmoid", "AvgPool2d", "Flatten", "Linear", "BatchNorm1d", "Sigmoid",
                     "Linear", "BatchNorm1d", "Sigmoid", "Linear"]
    assert len(LeNet(norm=None, rng=0)) == 12


@pytest.mark.parametrize("norm, extra", [(None, 0), ("batch", 2 * (6 + 16 + 120 + 84))])
def test_shape_and_parameter_count(norm, extra, rng):
    net = LeNet(norm=norm, in_channels=2, num_classes=5, rng=0)
    out = net(rng.standard_normal((3, 2, 28, 28)).astype(np.float32))
    assert out.shape == (3, 5) and out.dtype == np.float32
    base = (6 * 2 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 5 + 5)
    assert net.num_parameters() == base + extra


def test_spot_gradcheck(spot_gradcheck, rng):
    # LeNet has 61k parameters: check random entries of every gradient instead of all.
    # (Without BN, five sigmoids shrink dx to ~1e-6, below what centred differences resolve.)
    net = LeNet(norm="batch", dtype=np.float64, rng=1)
    errors = spot_gradcheck(net, rng.standard_normal((3, 1, 28, 28)), rng)
    # Biases feeding a train-mode BatchNorm have zero gradient: nothing to compare.
    zero = {"0.bias", "4.bias", "9.bias", "12.bias"}
    rest = {k: v for k, v in errors.items() if k not in zero}
    assert len(errors) == 19 and max(rest.values()) < 1e-6, errors


def test_overfits_a_batch_of_20(overfit, rng):
    x = rng.standard_normal((20, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 20)
    assert overfit(LeNet(norm="batch", rng=0), x, y, steps=30) == 1.0


def test_bad_arguments_raise(rng):
    with pytest.raises(ValueError, match=r"LeNet: expected norm in .*got 'BN'"):
        LeNet(norm="BN")
    with pytest.raises(ValueError, match=r"LeNet: expected in_channels to be a positive int, got 0"):
        LeNet(in_channels=0)
    with pytest.raises(ValueError, match=r"LeNet: expected input \(N, 1, 28, 28\), got input of "
                                         r"shape \(2, 1, 32, 32\)\. Pad or resize"):
        LeNet(rng=0)(rng.standard_normal((2, 1, 32, 32)).astype(np.float32))
