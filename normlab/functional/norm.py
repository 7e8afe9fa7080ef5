"""Layer, group, instance and RMS normalization: one core routine, different axes.

Each is ``normalize`` (``functional/_normalize.py``) over its own axes plus an
elementwise affine map, and its backward is ``normalize_backward`` over the same axes:

- layer norm: the trailing ``normalized_ndim`` axes, gamma/beta of that trailing shape;
- group norm: ``(N, C, *)`` reshaped to ``(N, G, C/G * prod(*))``, statistics over axis 2,
  gamma/beta per channel;
- instance norm: every axis after the channel axis, gamma/beta per channel;
- RMS norm: the trailing axes, no centring, ``y = x / sqrt(mean(x^2) + eps) * gamma``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from normlab.errors import NormlabTypeError, NormlabValueError, ShapeError
from normlab.functional._normalize import (channel_shape, normalize, normalize_backward,
                                           reduced_count)
from normlab.validation import (check_array, check_cache, check_dout, check_int, check_positive,
                                check_vector, describe, is_array)

__all__ = [
    "NormCache",
    "layer_norm_forward",
    "layer_norm_backward",
    "group_norm_forward",
    "group_norm_backward",
    "instance_norm_forward",
    "instance_norm_backward",
    "rms_norm_forward",
    "rms_norm_backward",
]


class NormCache(NamedTuple):
    x_hat: object  # shape of x
    inv_std: object  # keepdims over the normalised view
    gamma: object  # None when there is no weight
    has_beta: bool
    axes: tuple  # reduced axes of the normalised view
    param_axes: tuple  # axes that dgamma/dbeta sum over (in x's shape)
    mean: object  # statistics, keepdims over the normalised view (None for RMS norm)
    var: object
    count: int  # elements per statistic
    num_groups: int  # group norm only (0 otherwise)


def _trailing_axes(x, normalized_ndim: int, owner: str) -> tuple:
    check_int(normalized_ndim, "normalized_ndim", owner)
    if not 1 <= normalized_ndim <= x.ndim:
        raise NormlabValueError(
            f"{owner}: expected 1 <= normalized_ndim <= x.ndim ({x.ndim}), got "
            f"normalized_ndim={normalized_ndim}."
        )
    return tuple(range(x.ndim - normalized_ndim, x.ndim))


def _check_affine(p, shape: tuple, owner: str, name: str, like):
    """``gamma``/``beta`` of exactly ``shape`` (floating, on ``like``'s device), or None."""
    if p is None:
        return None
    if not is_array(p):
        raise NormlabTypeError(f"{owner}: expected {name} to be an ndarray of shape {shape} or "
                               f"None, got {describe(p)}.")
    if len(shape) == 1:
        return check_vector(p, shape[0], owner, name, like=like)
    if np.dtype(p.dtype).kind != "f":
        raise NormlabTypeError(f"{owner}: expected a floating {name}, got dtype {p.dtype}.")
    if tuple(p.shape) != tuple(shape):
        raise ShapeError(f"{owner}: expected {name} of shape {shape} (the normalized shape), got "
                         f"shape {tuple(p.shape)}.")
    return p


def _checked(x, owner: str, min_ndim: int = 1):
    return check_array(x, owner, name="x", min_ndim=min_ndim, allow_empty=True)


def _eps(eps, owner: str) -> float:
    return check_positive(eps, "eps", owner, hint="eps keeps 1/sqrt(var + eps) finite.")


def _backward_dout(dout, cache, owner: str):
    cache = check_cache(cache, NormCache, owner)
    return check_dout(dout, cache.x_hat.shape, owner, like=cache.x_hat), cache


def _param_grads(dout, x_hat, cache: NormCache):
    """``dgamma = sum(dy * x_hat)``, ``dbeta = sum(dy)`` over ``param_axes`` (or None)."""
    gamma = cache.gamma
    dgamma = None if gamma is None else (dout * x_hat).sum(axis=cache.param_axes).reshape(
        gamma.shape)
    dbeta = None
    if cache.has_beta:
        dbeta = dout.sum(axis=cache.param_axes)
    return dgamma, dbeta


def layer_norm_forward(x, gamma, beta, *, normalized_ndim: int, eps: float = 1e-5):
    """PyTorch ``LayerNorm`` over the trailing ``normalized_ndim`` axes.

    ``out = (x - mean) / sqrt(var + eps) * gamma + beta`` with the biased variance of each
    sample over the trailing axes.

    Parameters
    ----------
    x : ndarray, shape (*, *normalized_shape)
    gamma, beta : ndarray of shape ``normalized_shape``, or None
    normalized_ndim : int
    eps : float

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : NormCache

    Raises
    ------
    NormlabTypeError
        Non-array or integer ``x``, ``gamma``, ``beta``.
    ValueError
        If ``normalized_ndim`` is not in ``1..x.ndim``, ``eps <= 0``, or gamma/beta are not
        of the normalized shape.
    """
    owner = "layer_norm_forward"
    x = _checked(x, owner)
    axes = _trailing_axes(x, normalized_ndim, owner)
    eps = _eps(eps, owner)
    shape = tuple(x.shape[-normalized_ndim:])
    gamma = _check_affine(gamma, shape, owner, "gamma", x)
    beta = _check_affine(beta, shape, owner, "beta", x)
    x_hat, mean, var, inv_std = normalize(x, axes, eps)
    out = x_hat.copy() if gamma is None else x_hat * gamma
    if beta is not None:
        out += beta
    lead = tuple(range(x.ndim - normalized_ndim))
    return out, NormCache(x_hat, inv_std, gamma, beta is not None, axes, lead, mean, var,
                          reduced_count(x.shape, axes), 0)


def layer_norm_backward(dout, cache: NormCache):
    """Gradients of ``layer_norm_forward``: ``(dx, dgamma, dbeta)`` (None when absent)."""
    dout, cache = _backward_dout(dout, cache, "layer_norm_backward")
    g = dout if cache.gamma is None else dout * cache.gamma
    dx = normalize_backward(g, cache.x_hat, cache.inv_std, cache.axes)
    return (dx, *_param_grads(dout, cache.x_hat, cache))


def group_norm_forward(x, gamma, beta, *, num_groups: int, eps: float = 1e-5):
    """PyTorch ``GroupNorm``: statistics per sample over each of ``num_groups`` contiguous
    channel groups (and all spatial positions); gamma/beta per channel.

    ``out = (x - mean_g) / sqrt(var_g + eps) * gamma_c + beta_c``

    Parameters
    ----------
    x : ndarray, shape (N, C, *), C divisible by num_groups
    gamma, beta : ndarray of shape (C,), or None
    num_groups : int
    eps : float

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : NormCache (statistics of shape (N, G, 1))

    Raises
    ------
    NormlabTypeError
        Non-array or integer ``x``, ``gamma``, ``beta``; a non-int ``num_groups``.
    ValueError
        If ``x`` has fewer than 2 dims, ``num_groups < 1`` or does not divide C, ``eps <= 0``,
        or gamma/beta are not of shape (C,).
    """
    owner = "group_norm_forward"
    x = _checked(x, owner, min_ndim=2)
    num_groups = check_int(num_groups, "num_groups", owner, low=1)
    if x.shape[1] % num_groups:
        raise NormlabValueError(
            f"group_norm_forward: expected input (N, C, *) with C divisible by num_groups="
            f"{num_groups}, got input of shape {tuple(x.shape)}."
        )
    eps = _eps(eps, owner)
    N, C = x.shape[:2]
    gamma = _check_affine(gamma, (C,), owner, "gamma", x)
    beta = _check_affine(beta, (C,), owner, "beta", x)
    group_size = C // num_groups * math.prod(x.shape[2:])
    xg = x.reshape(N, num_groups, group_size)  # (N, G, C/G * prod(*))
    xg_hat, mean, var, inv_std = normalize(xg, (2,), eps)
    x_hat = xg_hat.reshape(x.shape)
    cs = channel_shape(x.ndim)
    out = x_hat.copy() if gamma is None else x_hat * gamma.reshape(cs)
    if beta is not None:
        out += beta.reshape(cs)
    param_axes = (0,) + tuple(range(2, x.ndim))
    return out, NormCache(x_hat, inv_std, gamma, beta is not None, (2,), param_axes, mean,
                          var, group_size, num_groups)


def group_norm_backward(dout, cache: NormCache):
    """Gradients of ``group_norm_forward``: ``(dx, dgamma, dbeta)`` (None when absent)."""
    dout, cache = _backward_dout(dout, cache, "group_norm_backward")
    x_hat = cache.x_hat
    N = x_hat.shape[0]
    gshape = (N, cache.num_groups, cache.count)
    g = dout if cache.gamma is None else dout * cache.gamma.reshape(channel_shape(dout.ndim))
    dx = normalize_backward(g.reshape(gshape), x_hat.reshape(gshape), cache.inv_std, (2,))
    return (dx.reshape(x_hat.shape), *_param_grads(dout, x_hat, cache))


def instance_norm_forward(x, gamma, beta, *, eps: float = 1e-5):
    """Instance norm (input statistics): each (sample, channel) over its spatial axes.

    ``out = (x - mean_nc) / sqrt(var_nc + eps) * gamma_c + beta_c``. For running
    statistics PyTorch averages the per-instance statistics over the batch: feed
    ``cache.mean.mean(0)``, ``cache.var.mean(0)`` and ``cache.count`` to
    ``update_running_stats``; in eval with running statistics use
    ``batch_norm_eval_forward`` with ``axes=(0, 2, ...)``.

    Parameters
    ----------
    x : ndarray, shape (N, C, *) with at least one spatial axis
    gamma, beta : ndarray of shape (C,), or None
    eps : float

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : NormCache (``mean``, ``var`` of shape (N, C))

    Raises
    ------
    NormlabTypeError
        Non-array or integer ``x``, ``gamma``, ``beta``.
    ValueError
        If ``x`` has fewer than 3 dims, ``eps <= 0``, or gamma/beta are not of shape (C,).
    """
    owner = "instance_norm_forward"
    x = _checked(x, owner)
    if x.ndim < 3:
        raise ShapeError(
            f"instance_norm_forward: expected input (N, C, *spatial) with at least 3 dims, "
            f"got input of shape {tuple(x.shape)}. Add a batch axis with x[None]."
        )
    eps = _eps(eps, owner)
    gamma = _check_affine(gamma, (x.shape[1],), owner, "gamma", x)
    beta = _check_affine(beta, (x.shape[1],), owner, "beta", x)
    axes = tuple(range(2, x.ndim))
    x_hat, mean, var, inv_std = normalize(x, axes, eps)
    cs = channel_shape(x.ndim)
    out = x_hat.copy() if gamma is None else x_hat * gamma.reshape(cs)
    if beta is not None:
        out += beta.reshape(cs)
    N, C = x.shape[:2]
    return out, NormCache(x_hat, inv_std, gamma, beta is not None, axes, (0,) + axes,
                          mean.reshape(N, C), var.reshape(N, C),
                          reduced_count(x.shape, axes), 0)


def instance_norm_backward(dout, cache: NormCache):
    """Gradients of ``instance_norm_forward``: ``(dx, dgamma, dbeta)`` (None when absent)."""
    dout, cache = _backward_dout(dout, cache, "instance_norm_backward")
    x_hat, axes = cache.x_hat, cache.axes
    # gamma is constant over each instance's axes, so the per-instance sums are shared
    # between dx and the parameter gradients.
    sum_dy = dout.sum(axis=axes, keepdims=True)  # (N, C, 1...)
    sum_dy_xhat = (dout * x_hat).sum(axis=axes, keepdims=True)
    gamma = cache.gamma
    scale = None if gamma is None else gamma.reshape(channel_shape(dout.ndim))
    dx = normalize_backward(dout, x_hat, cache.inv_std, axes, scale=scale, sum_g=sum_dy,
                            sum_gx=sum_dy_xhat)
    C = x_hat.shape[1]
    dgamma = None if gamma is None else sum_dy_xhat.reshape(-1, C).sum(axis=0)
    dbeta = sum_dy.reshape(-1, C).sum(axis=0) if cache.has_beta else None
    return dx, dgamma, dbeta


def rms_norm_forward(x, gamma, *, normalized_ndim: int, eps=None):
    """PyTorch ``RMSNorm``: ``out = x / sqrt(mean(x^2) + eps) * gamma`` over trailing axes.

    Parameters
    ----------
    x : ndarray, shape (*, *normalized_shape)
    gamma : ndarray of shape ``normalized_shape``, or None
    normalized_ndim : int
    eps : float or None
        None means the machine epsilon of ``x.dtype`` (PyTorch's default).

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : NormCache (``mean`` is None, ``var`` is ``mean(x^2)``)

    Raises
    ------
    NormlabTypeError
        Non-array or integer ``x``, ``gamma``, ``beta``.
    ValueError
        If ``normalized_ndim`` is not in ``1..x.ndim``, ``eps <= 0``, or gamma/beta are not
        of the normalized shape.
    """
    owner = "rms_norm_forward"
    x = _checked(x, owner)
    axes = _trailing_axes(x, normalized_ndim, owner)
    eps = float(np.finfo(x.dtype).eps) if eps is None else _eps(eps, owner)
    gamma = _check_affine(gamma, tuple(x.shape[-normalized_ndim:]), owner, "gamma", x)
    x_hat, _, ms, inv_rms = normalize(x, axes, eps, center=False)
    out = x_hat.copy() if gamma is None else x_hat * gamma
    lead = tuple(range(x.ndim - normalized_ndim))
    return out, NormCache(x_hat, inv_rms, gamma, False, axes, lead, None, ms,
                          reduced_count(x.shape, axes), 0)


def rms_norm_backward(dout, cache: NormCache):
    """Gradients of ``rms_norm_forward``: ``(dx, dgamma)`` (dgamma None without gamma).

    ``dx = inv_rms * (g - x_hat * mean(g * x_hat))`` with ``g = dy * gamma``.
    """
    dout, cache = _backward_dout(dout, cache, "rms_norm_backward")
    g = dout if cache.gamma is None else dout * cache.gamma
    dx = normalize_backward(g, cache.x_hat, cache.inv_std, cache.axes, center=False)
    dgamma, _ = _param_grads(dout, cache.x_hat, cache)
    return dx, dgamma

