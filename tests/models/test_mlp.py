"""FullyConnectedNet: layout, shapes, gradients, overfitting, errors."""

import numpy as np
import pytest

from normlab import nn
from normlab.models import FullyConnectedNet


def test_children_follow_documented_layout():
    net = FullyConnectedNet([5, 4], input_dim=6, num_classes=3, norm="batch", dropout=0.5, rng=0)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Flatten", "Linear", "BatchNorm1d", "ReLU", "Dropout",
                     "Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
    plain = FullyConnectedNet([5], input_dim=6, num_classes=3, activation="tanh", rng=0)
    assert [type(m).__name__ for m in plain] == ["Flatten", "Linear", "Tanh", "Linear"]


@pytest.mark.parametrize("norm", ["batch", "layer", "group", None])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_shape_and_dtype(norm, dtype, rng):
    net = FullyConnectedNet([8, 8], input_dim=(2, 3, 2), num_classes=4, norm=norm,
                            dtype=dtype, rng=0)
    x = rng.standard_normal((5, 2, 3, 2)).astype(dtype)
    out = net(x)
    assert out.shape == (5, 4) and out.dtype == dtype
    dx = net.backward(np.ones_like(out))
    assert dx.shape == x.shape and dx.dtype == dtype


def test_parameter_count():
    net = FullyConnectedNet([10, 7], input_dim=12, num_classes=3, norm="batch", rng=0)
    assert net.num_parameters() == (12 * 10 + 10) + 20 + (10 * 7 + 7) + 14 + (7 * 3 + 3)


@pytest.mark.parametrize("norm", ["batch", "layer", "group", None])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu"])
def test_gradcheck(norm, activation, gradcheck):
    # 16 hidden units: "group" norm on vectors needs groups of 8 to be non-degenerate.
    rng = np.random.default_rng(0)
    net = FullyConnectedNet([16], input_dim=6, num_classes=3, norm=norm,
                            activation=activation, dtype=np.float64, rng=1)
    zero = ("1.bias",) if norm == "batch" else ()  # a bias feeding train-mode BN
    gradcheck(net, rng.standard_normal((4, 6)), rng, zero=zero)


@pytest.mark.parametrize("norm", ["batch", "layer", None])
def test_gradcheck_two_hidden_layers(norm, gradcheck):
    rng = np.random.default_rng(0)
    net = FullyConnectedNet([16, 5], input_dim=6, num_classes=3, norm=norm,
                            dtype=np.float64, rng=1)
    zero = ("1.bias", "4.bias") if norm == "batch" else ()
    gradcheck(net, rng.standard_normal((4, 6)), rng, zero=zero)


def test_gradcheck_eval_mode_with_batch_norm(gradcheck, rng):
    net = FullyConnectedNet([6, 5], input_dim=6, num_classes=3, norm="batch",
                            dtype=np.float64, rng=1)
    net(rng.standard_normal((8, 6)) * 2 + 1)  # running stats away from 0 and 1
    gradcheck(net.eval(), rng.standard_normal((4, 6)), rng)


def test_gradcheck_with_dropout(gradcheck, rng):
    net = FullyConnectedNet([5], input_dim=6, num_classes=3, norm="batch", dropout=0.3,
                            dtype=np.float64, rng=1)
    gradcheck(net, rng.standard_normal((4, 6)), rng, zero=("1.bias",))


@pytest.mark.parametrize("norm", ["batch", None])
def test_overfits_a_batch_of_20(norm, overfit, rng):
    x = rng.standard_normal((20, 12)).astype(np.float32)
    y = rng.integers(0, 5, 20)
    net = FullyConnectedNet([32, 32], input_dim=12, num_classes=5, norm=norm, rng=0)
    assert overfit(net, x, y, steps=150) == 1.0


@pytest.mark.parametrize("kw, match", [
    ({"input_dim": 0}, r"FullyConnectedNet: expected input_dim to be a positive int, got 0"),
    ({"input_dim": (3, 0)}, r"FullyConnectedNet: expected input_dim to be a positive int, got 0"),
    ({"num_classes": 1.5}, r"FullyConnectedNet: expected num_classes to be a positive int"),
    ({"hidden_dims": [4, -1]}, r"FullyConnectedNet: expected hidden_dims to be positive ints"),
    ({"dropout": 1.0}, r"FullyConnectedNet: expected dropout in \[0, 1\), got 1.0"),
    ({"norm": "bn"}, r"FullyConnectedNet: expected norm in .*got 'bn'"),
    ({"activation": "gelu"}, r"FullyConnectedNet: expected activation in .*got 'gelu'"),
])
def test_bad_hyperparameters_raise(kw, match):
    args = {"hidden_dims": [4], "input_dim": 6, "num_classes": 3, **kw}
    with pytest.raises(ValueError, match=match):
        FullyConnectedNet(**args)


def test_wrong_input_size_raises(rng):
    net = FullyConnectedNet([4], input_dim=6, num_classes=3, rng=0)
    with pytest.raises(ValueError, match=r"FullyConnectedNet: expected input \(N, \.\.\.\) with "
                                         r"6 features per sample, got input of shape \(2, 7\)"):
        net(rng.standard_normal((2, 7)).astype(np.float32))
    with pytest.raises(ValueError, match=r"got input of shape \(6,\)"):
        net(rng.standard_normal(6).astype(np.float32))


def test_is_a_sequential():
    assert isinstance(FullyConnectedNet([4], input_dim=6, num_classes=3, rng=0), nn.Sequential)
