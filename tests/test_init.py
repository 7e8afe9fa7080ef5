"""Initialisers: statistics against PyTorch's formulas, fans and gains equal to torch's, errors."""

import math

import numpy as np
import pytest
import torch

from normlab import init

GAIN_CASES = [("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
              ("conv_transpose2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
              ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 0), ("leaky_relu", 3),
              ("selu", None)]


@pytest.mark.parametrize("nonlinearity,param", GAIN_CASES)
def test_calculate_gain_equals_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15)


@pytest.mark.parametrize("shape", [(10, 20), (16, 3, 5, 5), (8, 4, 3), (6, 2, 2, 3, 4),
                                   (3, 7, 1, 1)])
def test_fans_equal_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.calculate_fan_in_and_fan_out(shape) == expected


SHAPE = (256, 64, 3, 3)  # fan_in 576, fan_out 2304, 147456 values
FAN_IN, FAN_OUT = 64 * 9, 256 * 9


def _uniform_std(bound):
    return bound / math.sqrt(3.0)


STD_CASES = {
    "normal": (lambda rng: init.normal(SHAPE, 0.0, 0.02, rng=rng), 0.02),
    "uniform": (lambda rng: init.uniform(SHAPE, -0.3, 0.3, rng=rng), _uniform_std(0.3)),
    "xavier_normal": (lambda rng: init.xavier_normal(SHAPE, gain=2.0, rng=rng),
                      2.0 * math.sqrt(2.0 / (FAN_IN + FAN_OUT))),
    "xavier_uniform": (lambda rng: init.xavier_uniform(SHAPE, rng=rng),
                       _uniform_std(math.sqrt(6.0 / (FAN_IN + FAN_OUT)))),
    "kaiming_normal": (lambda rng: init.kaiming_normal(SHAPE, nonlinearity="relu", rng=rng),
                       math.sqrt(2.0 / FAN_IN)),
    "kaiming_normal_fan_out": (lambda rng: init.kaiming_normal(SHAPE, a=0.1, mode="fan_out",
                                                               rng=rng),
                               math.sqrt(2.0 / (1 + 0.01)) / math.sqrt(FAN_OUT)),
    "kaiming_uniform": (lambda rng: init.kaiming_uniform(SHAPE, a=math.sqrt(5), rng=rng),
                        _uniform_std(1.0 / math.sqrt(FAN_IN))),
    "kaiming_uniform_tanh": (lambda rng: init.kaiming_uniform(SHAPE, nonlinearity="tanh",
                                                              mode="fan_out", rng=rng),
                             (5.0 / 3) / math.sqrt(FAN_OUT)),
}


@pytest.mark.parametrize("name", list(STD_CASES))
def test_std_matches_formula_and_torch(name):
    make, expected_std = STD_CASES[name]
    w = make(np.random.default_rng(0))
    assert w.shape == SHAPE and w.dtype == np.float32
    assert abs(float(w.std()) / expected_std - 1.0) < 0.05
    assert abs(float(w.mean())) < 0.05 * expected_std
    # the same initialiser in torch, to check our formula is torch's
    t = torch.empty(SHAPE)
    torch.manual_seed(0)
    torch_init = {
        "normal": lambda: torch.nn.init.normal_(t, 0.0, 0.02),
        "uniform": lambda: torch.nn.init.uniform_(t, -0.3, 0.3),
        "xavier_normal": lambda: torch.nn.init.xavier_normal_(t, gain=2.0),
        "xavier_uniform": lambda: torch.nn.init.xavier_uniform_(t),
        "kaiming_normal": lambda: torch.nn.init.kaiming_normal_(t, nonlinearity="relu"),
        "kaiming_normal_fan_out": lambda: torch.nn.init.kaiming_normal_(t, a=0.1,
                                                                        mode="fan_out"),
        "kaiming_uniform": lambda: torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5)),
        "kaiming_uniform_tanh": lambda: torch.nn.init.kaiming_uniform_(
            t, nonlinearity="tanh", mode="fan_out"),
    }[name]
    assert abs(float(torch_init().std()) / expected_std - 1.0) < 0.05


def test_uniform_bounds_and_kaiming_default_is_pytorch_default_linear():
    w = init.kaiming_uniform((50, 40), a=math.sqrt(5), rng=1)
    assert np.abs(w).max() <= 1.0 / math.sqrt(40)
    np.testing.assert_array_equal(w, init.pytorch_default_uniform((50, 40), 40, rng=1))
    u = init.uniform((1000,), 2.0, 3.0, rng=0)
    assert u.min() >= 2.0 and u.max() < 3.0


def test_constants():
    np.testing.assert_array_equal(init.zeros((2, 3)), np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(init.ones(3, dtype=np.float64), np.ones(3))
    c = init.constant((2, 2), 0.5)
    assert c.dtype == np.float32 and np.all(c == 0.5)


@pytest.mark.parametrize("fn", [init.normal, init.uniform, init.xavier_normal,
                                init.xavier_uniform, init.kaiming_normal, init.kaiming_uniform])
def test_seeded_dtype_and_fresh_array(fn):
    a = fn((6, 4), rng=3)
    b = fn((6, 4), rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fn((6, 4), rng=4))
    assert fn((6, 4), rng=3, dtype=np.float64).dtype == np.float64
    assert fn((0, 4), rng=3).shape == (0, 4)  # torch: a no-op on zero-element tensors


def test_mode_and_nonlinearity_errors():
    for fn in (init.kaiming_normal, init.kaiming_uniform):
        name = fn.__name__
        with pytest.raises(ValueError, match=rf"{name}: expected mode 'fan_in' or 'fan_out', "
                                             r"got 'fan_avg'"):
            fn((3, 3), mode="fan_avg")
        with pytest.raises(ValueError, match=rf"{name}: expected nonlinearity in \[.*'selu'\], "
                                             r"got 'gelu'"):
            fn((3, 3), nonlinearity="gelu")
    with pytest.raises(ValueError, match=r"calculate_gain: expected nonlinearity in \[.*\], got "
                                         r"'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match=r"calculate_gain: expected a number as the leaky_relu "
                                         r"negative slope, got 'x'"):
        init.calculate_gain("leaky_relu", "x")
    with pytest.raises(ValueError, match=r"got True"):
        init.calculate_gain("leaky_relu", True)


def test_value_errors():
    with pytest.raises(ValueError, match=r"normal: expected std >= 0, got -1\.0"):
        init.normal((2,), std=-1.0)
    with pytest.raises(ValueError, match=r"uniform: expected a <= b, got a=1\.0, b=0\.0"):
        init.uniform((2,), 1.0, 0.0)
    with pytest.raises(ValueError, match=r"calculate_fan_in_and_fan_out: expected a weight with "
                                         r"at least 2 dimensions, got shape \(5,\)"):
        init.xavier_uniform((5,))
    with pytest.raises(ValueError, match=r"zeros: expected a shape of non-negative ints, got "
                                         r"\(2, -1\)"):
        init.zeros((2, -1))


def test_type_errors():
    with pytest.raises(TypeError, match=r"normal: expected a shape \(tuple of ints\), got float"):
        init.normal(2.5)
    with pytest.raises(TypeError, match=r"xavier_normal: expected gain to be a float, got str"):
        init.xavier_normal((2, 2), gain="1")
    with pytest.raises(TypeError, match=r"constant: expected val to be a float, got NoneType"):
        init.constant((2,), None)
    with pytest.raises(TypeError, match=r"uniform: expected a floating dtype, got int32\. Use "
                                        r"np\.float32"):
        init.uniform((2,), dtype=np.int32)
    with pytest.raises(TypeError, match=r"as_generator: expected None, an int seed"):
        init.normal((2,), rng="seed")
