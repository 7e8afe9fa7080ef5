"""ThreeLayerConvNet: layout, shapes, gradients, overfitting, errors."""

import numpy as np
import pytest

from normlab.models import ThreeLayerConvNet


def test_layout_with_and_without_norm():
    net = ThreeLayerConvNet((3, 8, 8), num_filters=4, filter_size=3, hidden_dim=6, norm="batch")
    assert [type(m).__name__ for m in net] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
                                               "Flatten", "Linear", "ReLU", "Linear"]
    plain = ThreeLayerConvNet((3, 8, 8), num_filters=4, filter_size=3, hidden_dim=6)
    assert [type(m).__name__ for m in plain][:3] == ["Conv2d", "ReLU", "MaxPool2d"]


@pytest.mark.parametrize("norm", ["batch", "layer", "group", "instance", None])
def test_shape_and_parameter_count(norm, rng):
    net = ThreeLayerConvNet((3, 9, 8), num_filters=4, filter_size=5, hidden_dim=6,
                            num_classes=7, norm=norm, rng=0)
    out = net(rng.standard_normal((2, 3, 9, 8)).astype(np.float32))
    assert out.shape == (2, 7) and out.dtype == np.float32
    n_norm = 0 if norm is None else 8
    # conv keeps 9x8, the pool floors it to 4x4
    assert net.num_parameters() == (4 * 3 * 25 + 4) + n_norm + (4 * 4 * 4 * 6 + 6) + (6 * 7 + 7)


@pytest.mark.parametrize("norm", ["batch", "layer", "group", "instance", None])
def test_gradcheck(norm, gradcheck, rng):
    net = ThreeLayerConvNet((2, 4, 4), num_filters=4, filter_size=3, hidden_dim=5,
                            num_classes=3, norm=norm, dtype=np.float64, rng=1)
    zero = ("0.bias",) if norm in ("batch", "instance") else ()  # per-channel mean removed
    gradcheck(net, rng.standard_normal((2, 2, 4, 4)), rng, tol=1e-6, zero=zero)


def test_overfits_a_batch_of_20(overfit, rng):
    x = rng.standard_normal((20, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 20)
    net = ThreeLayerConvNet((3, 8, 8), num_filters=8, filter_size=3, hidden_dim=32,
                            norm="batch", rng=0)
    assert overfit(net, x, y, steps=100) == 1.0


@pytest.mark.parametrize("kw, match", [
    ({"input_dim": (3, 8)}, r"ThreeLayerConvNet: expected input_dim \(C, H, W\) of ints"),
    ({"num_filters": 0}, r"ThreeLayerConvNet: expected num_filters to be a positive int, got 0"),
    ({"filter_size": 4}, r"ThreeLayerConvNet: expected an odd filter_size .*got 4"),
    ({"norm": "weight"}, r"ThreeLayerConvNet: expected norm in .*got 'weight'"),
])
def test_bad_hyperparameters_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        ThreeLayerConvNet(**{"input_dim": (3, 8, 8), **kw})


def test_wrong_input_shape_raises(rng):
    net = ThreeLayerConvNet((3, 8, 8), num_filters=2, filter_size=3, hidden_dim=4)
    with pytest.raises(ValueError, match=r"ThreeLayerConvNet: expected input \(N, 3, 8, 8\), "
                                         r"got input of shape \(2, 3, 8, 9\)"):
        net(rng.standard_normal((2, 3, 8, 9)).astype(np.float32))


def test_grayscale_input_is_accepted():
    """Regression: input_dim (1, 8, 8) was refused because C = 1 failed the H, W >= 2 check."""
    from normlab.models import ThreeLayerConvNet

    net = ThreeLayerConvNet(input_dim=(1, 8, 8), num_filters=4, filter_size=3, hidden_dim=8,
                            rng=0)
    assert net(np.zeros((2, 1, 8, 8), np.float32)).shape == (2, 10)
