"""Weight initialisation (PyTorch formulas). Every initialiser takes a Generator or seed.

Unlike ``torch.nn.init.*_`` these do not fill a tensor in place: each returns a new array
``f(shape, ..., rng=None, dtype=np.float32)``, drawn in float64 and cast to ``dtype``.
Fans are counted as ``torch.nn.init._calculate_fan_in_and_fan_out``, gains as
``torch.nn.init.calculate_gain``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from normlab._random import as_generator
from normlab.errors import NormlabTypeError, NormlabValueError

__all__ = [
    "calculate_fan_in_and_fan_out",
    "pytorch_default_uniform",
    "calculate_gain",
    "zeros",
    "ones",
    "constant",
    "normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal",
    "kaiming_uniform",
]


def calculate_fan_in_and_fan_out(shape) -> tuple[int, int]:
    """Fans of a weight of ``shape`` as PyTorch counts them.

    ``(out, in)`` for Linear and ``(out, in/groups, *kernel)`` for Conv: fan_in is
    ``in * prod(kernel)``, fan_out is ``out * prod(kernel)``.

    Raises
    ------
    ValueError
        For fewer than 2 dimensions.
    """
    shape = tuple(shape)
    if len(shape) < 2:
        raise NormlabValueError(
            f"calculate_fan_in_and_fan_out: expected a weight with at least 2 dimensions, "
            f"got shape {shape}."
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def pytorch_default_uniform(shape, fan_in: int, rng=None, dtype=np.float32):
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: PyTorch's default for Linear/Conv.

    This equals ``kaiming_uniform_(a=sqrt(5))`` for the weight and the bias rule.
    """
    rng = as_generator(rng)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


_LINEAR_GAIN_ONE = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                    "conv_transpose2d", "conv_transpose3d", "sigmoid")
_NONLINEARITIES = _LINEAR_GAIN_ONE + ("tanh", "relu", "leaky_relu", "selu")


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def calculate_gain(nonlinearity: str, param=None) -> float:
    """Recommended gain for ``nonlinearity`` (``torch.nn.init.calculate_gain``).

    linear, conv*, conv_transpose*, sigmoid: 1; tanh: 5/3; relu: sqrt(2);
    leaky_relu: ``sqrt(2 / (1 + slope^2))`` with ``slope = param`` (default 0.01); selu: 3/4.

    Raises
    ------
    ValueError
        For an unknown nonlinearity or a non-numeric leaky_relu slope.
    """
    if nonlinearity in _LINEAR_GAIN_ONE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif _is_number(param):
            slope = float(param)
        else:
            raise NormlabValueError(
                f"calculate_gain: expected a number as the leaky_relu negative slope, got "
                f"{param!r}."
            )
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise NormlabValueError(
        f"calculate_gain: expected nonlinearity in {list(_NONLINEARITIES)}, got "
        f"{nonlinearity!r}."
    )


def _check_shape(owner: str, shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    try:
        shape = tuple(shape)
    except TypeError:
        raise NormlabTypeError(f"{owner}: expected a shape (tuple of ints), got "
                        f"{type(shape).__name__}.") from None
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0
               for d in shape):
        raise NormlabValueError(f"{owner}: expected a shape of non-negative ints, got {shape}.")
    return tuple(int(d) for d in shape)


def _check_dtype(owner: str, dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise NormlabTypeError(f"{owner}: expected a floating dtype, got {dtype}. Use np.float32.")
    return dtype


def _check_number(owner: str, name: str, value) -> float:
    if not _is_number(value):
        raise NormlabTypeError(f"{owner}: expected {name} to be a float, got "
                        f"{type(value).__name__} {value!r}.")
    return float(value)


def zeros(shape, dtype=np.float32):
    """An array of zeros (``torch.nn.init.zeros_``)."""
    return np.zeros(_check_shape("zeros", shape), dtype=_check_dtype("zeros", dtype))


def ones(shape, dtype=np.float32):
    """An array of ones (``torch.nn.init.ones_``)."""
    return np.ones(_check_shape("ones", shape), dtype=_check_dtype("ones", dtype))


def constant(shape, val: float, dtype=np.float32):
    """An array filled with ``val`` (``torch.nn.init.constant_``)."""
    val = _check_number("constant", "val", val)
    return np.full(_check_shape("constant", shape), val, dtype=_check_dtype("constant", dtype))


def normal(shape, mean: float = 0.0, std: float = 1.0, rng=None, dtype=np.float32):
    """Draws from ``N(mean, std^2)`` (``torch.nn.init.normal_``).

    Raises
    ------
    ValueError
        For a negative ``std``.
    """
    mean = _check_number("normal", "mean", mean)
    std = _check_number("normal", "std", std)
    if not std >= 0.0:
        raise NormlabValueError(f"normal: expected std >= 0, got {std!r}.")
    shape = _check_shape("normal", shape)
    dtype = _check_dtype("normal", dtype)
    return as_generator(rng).normal(mean, std, size=shape).astype(dtype)


def uniform(shape, a: float = 0.0, b: float = 1.0, rng=None, dtype=np.float32):
    """Draws from ``U(a, b)`` (``torch.nn.init.uniform_``).

    Raises
    ------
    ValueError
        For ``a > b``.
    """
    a = _check_number("uniform", "a", a)
    b = _check_number("uniform", "b", b)
    if not a <= b:
        raise NormlabValueError(f"uniform: expected a <= b, got a={a!r}, b={b!r}.")
    shape = _check_shape("uniform", shape)
    dtype = _check_dtype("uniform", dtype)
    return as_generator(rng).uniform(a, b, size=shape).astype(dtype)


def _empty_if_no_elements(shape, dtype):
    """PyTorch warns and does nothing on zero-element tensors; here: an empty array."""
    return np.zeros(shape, dtype=dtype) if 0 in shape else None


def _draw(rng, dist: str, spread: float, shape, dtype):
    """``U(-spread, spread)`` or ``N(0, spread^2)`` samples cast to ``dtype``."""
    gen = as_generator(rng)
    if dist == "uniform":
        return gen.uniform(-spread, spread, size=shape).astype(dtype)
    return gen.normal(0.0, spread, size=shape).astype(dtype)


def _xavier(owner: str, dist: str, numerator: float, shape, gain, rng, dtype):
    """Glorot init with spread ``gain * sqrt(numerator / (fan_in + fan_out))``."""
    gain = _check_number(owner, "gain", gain)
    shape = _check_shape(owner, shape)
    dtype = _check_dtype(owner, dtype)
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    empty = _empty_if_no_elements(shape, dtype)
    if empty is not None:
        return empty
    return _draw(rng, dist, gain * math.sqrt(numerator / (fan_in + fan_out)), shape, dtype)


def xavier_uniform(shape, gain: float = 1.0, rng=None, dtype=np.float32):
    """Glorot uniform: ``U(-b, b)``, ``b = gain * sqrt(6 / (fan_in + fan_out))``.

    Raises
    ------
    ValueError
        For a shape with fewer than 2 dimensions.
    """
    return _xavier("xavier_uniform", "uniform", 6.0, shape, gain, rng, dtype)


def xavier_normal(shape, gain: float = 1.0, rng=None, dtype=np.float32):
    """Glorot normal: ``N(0, std^2)``, ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Raises
    ------
    ValueError
        For a shape with fewer than 2 dimensions.
    """
    return _xavier("xavier_normal", "normal", 2.0, shape, gain, rng, dtype)


def _kaiming_std(owner: str, shape, a, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise NormlabValueError(f"{owner}: expected mode 'fan_in' or 'fan_out', got {mode!r}.")
    if nonlinearity not in _NONLINEARITIES:
        raise NormlabValueError(
            f"{owner}: expected nonlinearity in {list(_NONLINEARITIES)}, got {nonlinearity!r}."
        )
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:  # zero-element weight: nothing will be drawn
        return 0.0
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def _kaiming(owner: str, dist: str, shape, a, mode, nonlinearity, rng, dtype):
    """He init: ``N(0, std^2)``, or ``U(-b, b)`` with ``b = sqrt(3) * std``."""
    a = _check_number(owner, "a", a)
    shape = _check_shape(owner, shape)
    dtype = _check_dtype(owner, dtype)
    std = _kaiming_std(owner, shape, a, mode, nonlinearity)
    empty = _empty_if_no_elements(shape, dtype)
    if empty is not None:
        return empty
    return _draw(rng, dist, math.sqrt(3.0) * std if dist == "uniform" else std, shape, dtype)


def kaiming_normal(shape, a: float = 0.0, mode: str = "fan_in",
                   nonlinearity: str = "leaky_relu", rng=None, dtype=np.float32):
    """He normal: ``N(0, std^2)``, ``std = gain / sqrt(fan)``.

    ``gain = calculate_gain(nonlinearity, a)``, where ``a`` is the negative slope of the
    following leaky_relu (0 gives ReLU's sqrt(2)).
    ``mode`` picks ``fan_in`` (preserves forward variance) or ``fan_out`` (backward).

    Raises
    ------
    ValueError
        For an unknown ``mode`` or ``nonlinearity``, or fewer than 2 dimensions.
    """
    return _kaiming("kaiming_normal", "normal", shape, a, mode, nonlinearity, rng, dtype)


def kaiming_uniform(shape, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", rng=None, dtype=np.float32):
    """He uniform: ``U(-b, b)``, ``b = gain * sqrt(3 / fan)``.

    ``gain = calculate_gain(nonlinearity, a)``; ``mode`` as in ``kaiming_normal``.
    ``kaiming_uniform(shape, a=sqrt(5))`` is PyTorch's default Linear/Conv weight.

    Raises
    ------
    ValueError
        For an unknown ``mode`` or ``nonlinearity``, or fewer than 2 dimensions.
    """
    return _kaiming("kaiming_uniform", "uniform", shape, a, mode, nonlinearity, rng, dtype)
