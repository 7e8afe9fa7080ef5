"""Elementwise activations: ReLU, LeakyReLU, Tanh, Sigmoid, with PyTorch's backward rules."""

from __future__ import annotations

from typing import NamedTuple

from normlab import backend
from normlab.functional import dispatch
from normlab.validation import (check_array, check_bool, check_cache, check_dout, check_real,
                                is_array, overwritable)

__all__ = [
    "ReluCache", "LeakyReluCache", "TanhCache", "SigmoidCache",
    "relu_forward", "relu_backward",
    "leaky_relu_forward", "leaky_relu_backward",
    "tanh_forward", "tanh_backward",
    "sigmoid_forward", "sigmoid_backward", "BY_NAME",
]


class ReluCache(NamedTuple):
    out: object  # max(x, 0): out > 0 exactly where x > 0 (NaN: neither), so no mask is kept


class LeakyReluCache(NamedTuple):
    positive: object  # bool mask x > 0
    negative_slope: float


class TanhCache(NamedTuple):
    out: object  # tanh(x)


class SigmoidCache(NamedTuple):
    out: object  # sigmoid(x)


def _compiled(op, *arrays):
    """The compiled kernel of ``op`` if it applies to ``arrays`` (C-contiguous float32 or
    float64 arrays of one shape and dtype; the first may be a bool mask), else ``None``."""
    if not all(hasattr(a, "flags") and a.ndim for a in arrays):
        return None  # a Python/NumPy scalar (a 0-d output's dout): the reference handles it
    impl = dispatch.lookup(op, backend.namespace(arrays[-1]), *arrays)
    if impl is None:
        return None
    last = arrays[-1]
    if last.dtype.kind != "f" or last.dtype.itemsize not in (4, 8):
        return None
    for a in arrays:
        if a.shape != last.shape or not a.flags.c_contiguous or \
                (a.dtype != last.dtype and a.dtype.kind != "b"):
            return None
    return impl


def _over(dout, overwrite: bool, *operands):
    """``dout`` where a backward handed it over (``overwrite``) may take its result in
    place: an array (not a 0-d output's Python float), writable, C-contiguous, of the
    result's dtype (that of ``dout`` with ``operands``); else ``None``."""
    if not overwrite or not is_array(dout):
        return None
    xp = backend.namespace(dout)
    return dout if overwritable(dout, dout.shape, xp.result_type(dout, *operands)) else None


def relu_forward(x):
    """``out = max(x, 0)``.

    Parameters
    ----------
    x : ndarray, any shape

    Shape
    -----
    out has the shape and dtype of ``x``.

    Returns
    -------
    out : ndarray
    cache : ReluCache
    """
    x = check_array(x, "relu_forward", name="x", allow_empty=True)
    xp = backend.namespace(x)
    # maximum (not x * mask) so that NaN propagates as in torch.relu. The cache is the
    # output itself (which the next layer usually keeps anyway), not a mask: one pass
    # less here and no extra memory.
    impl = _compiled("relu_forward", x)
    out = impl(x) if impl is not None else xp.maximum(x, 0)
    return out, ReluCache(out)


def relu_backward(dout, cache: ReluCache, overwrite_dout=False):
    """``dx = dout * [x > 0]`` with ``[x > 0] = [out > 0]``; the subgradient at 0 is 0,
    as in PyTorch.

    Parameters
    ----------
    overwrite_dout : bool, default False
        The caller hands ``dout`` over (nothing else holds it): ``dx`` may be written over
        it instead of into a new array (the same bits). A permission, not a promise: where
        ``dout`` is read-only, not C-contiguous or of another dtype than ``dx``, ``dx`` is
        a new array.

    Returns
    -------
    dx : ndarray shaped like ``dout``
    """
    overwrite = check_bool(overwrite_dout, "overwrite_dout", "relu_backward")
    ref = check_cache(cache, ReluCache, "relu_backward").out
    dout = check_dout(dout, ref.shape, "relu_backward", like=ref)
    over = _over(dout, overwrite, 0)
    impl = _compiled("relu_backward", ref, dout)
    if impl is not None:  # a branch-free select: NumPy's where mispredicts a random mask
        return impl(ref, dout, into=over)
    xp = backend.namespace(dout)
    if over is not None:
        xp.copyto(dout, 0, where=xp.logical_not(ref > 0))
        return dout
    return xp.where(ref > 0, dout, 0)


def leaky_relu_forward(x, negative_slope: float = 0.01):
    """``out = x if x > 0 else negative_slope * x``.

    Parameters
    ----------
    x : ndarray, any shape
    negative_slope : float
        Slope for ``x <= 0`` (PyTorch default 0.01).

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : LeakyReluCache
    """
    x = check_array(x, "leaky_relu_forward", name="x", allow_empty=True)
    # a Python float keeps float32 arrays float32
    slope = check_real(negative_slope, "negative_slope", "leaky_relu_forward")
    impl = _compiled("leaky_relu_forward", x)
    if impl is not None:
        out, positive = impl(x, slope)
        return out, LeakyReluCache(positive, slope)
    xp = backend.namespace(x)
    positive = x > 0
    return xp.where(positive, x, x * slope), LeakyReluCache(positive, slope)


def leaky_relu_backward(dout, cache: LeakyReluCache):
    """``dx = dout if x > 0 else negative_slope * dout``.

    Returns
    -------
    dx : ndarray shaped like ``dout``
    """
    ref = check_cache(cache, LeakyReluCache, "leaky_relu_backward").positive
    dout = check_dout(dout, ref.shape, "leaky_relu_backward", like=ref)
    impl = _compiled("leaky_relu_backward", ref, dout)
    if impl is not None:
        return impl(ref, dout, cache.negative_slope)
    xp = backend.namespace(dout)
    return xp.where(cache.positive, dout, dout * cache.negative_slope)


def tanh_forward(x):
    """``out = tanh(x)``.

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : TanhCache
    """
    x = check_array(x, "tanh_forward", name="x", allow_empty=True)
    xp = backend.namespace(x)
    out = xp.tanh(x)
    return out, TanhCache(out)


def tanh_backward(dout, cache: TanhCache):
    """``dx = dout * (1 - tanh(x)^2)``, from the saved output as PyTorch does.

    Returns
    -------
    dx : ndarray shaped like ``dout``
    """
    ref = check_cache(cache, TanhCache, "tanh_backward").out
    dout = check_dout(dout, ref.shape, "tanh_backward", like=ref)
    y = cache.out
    return dout * (1.0 - y * y)


def sigmoid_forward(x):
    """``out = 1 / (1 + exp(-x))``, evaluated without overflow for any ``|x|``.

    For ``x >= 0`` it uses ``1 / (1 + e)``, for ``x < 0`` ``e / (1 + e)``, with
    ``e = exp(-|x|)`` in (0, 1]: ``exp`` is never called on a large positive number.

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : SigmoidCache
    """
    x = check_array(x, "sigmoid_forward", name="x", allow_empty=True)
    impl = _compiled("sigmoid_forward", x)
    if impl is not None:
        out = impl(x)
        return out, SigmoidCache(out)
    xp = backend.namespace(x)
    e = xp.exp(-xp.abs(x))
    denom = 1.0 + e
    out = xp.where(x >= 0, 1.0 / denom, e / denom)
    return out, SigmoidCache(out)


def sigmoid_backward(dout, cache: SigmoidCache, overwrite_dout=False):
    """``dx = dout * s * (1 - s)`` with ``s = sigmoid(x)`` saved by the forward.

    ``overwrite_dout``: as in ``relu_backward``.

    Returns
    -------
    dx : ndarray shaped like ``dout``
    """
    overwrite = check_bool(overwrite_dout, "overwrite_dout", "sigmoid_backward")
    ref = check_cache(cache, SigmoidCache, "sigmoid_backward").out
    dout = check_dout(dout, ref.shape, "sigmoid_backward", like=ref)
    s = cache.out
    over = _over(dout, overwrite, s)
    impl = _compiled("sigmoid_backward", s, dout)
    if impl is not None:  # one fused pass (compiled/numba_sigmoid.py)
        return impl(s, dout, into=over)
    if over is not None:  # the reference's operations, in its order, in place
        xp = backend.namespace(dout)
        xp.multiply(dout, 1.0 - s, out=dout)
        return xp.multiply(dout, s, out=dout)
    return dout * (1.0 - s) * s


#: name -> (forward, backward, cache class) of the activations other ops apply after
#: their own output (batch norm's fused forwards: ``batchnorm_stages``, ``fused``); each
#: cache holds the activation's output
BY_NAME = {"relu": (relu_forward, relu_backward, ReluCache),
           "sigmoid": (sigmoid_forward, sigmoid_backward, SigmoidCache)}
