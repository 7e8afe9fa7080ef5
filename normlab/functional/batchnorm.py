"""Batch normalization (Ioffe & Szegedy, 2015): training, eval and the running-stat rule.

Statistics are taken per channel (axis 1) over every axis in ``axes``; BatchNorm1d on
``(N, C)`` uses ``axes=(0,)``, on ``(N, C, L)`` ``(0, 2)``, BatchNorm2d ``(0, 2, 3)``,
BatchNorm3d ``(0, 2, 3, 4)``. One routine serves every rank.
"""

from __future__ import annotations

from typing import NamedTuple

from normlab import backend
from normlab.functional import _bn_kernels
from normlab.functional._normalize import (channel_shape, normalize, normalize_backward,
                                           reduced_count, sum_of_products, sum_over)

__all__ = [
    "BatchNormCache",
    "BatchNormEvalCache",
    "batch_norm_forward",
    "batch_norm_backward",
    "batch_norm_backward_staged",
    "batch_norm_eval_forward",
    "batch_norm_eval_backward",
    "update_running_stats",
]


class BatchNormCache(NamedTuple):
    x_hat: object  # (N, C, *) normalised input
    inv_std: object  # keepdims (1, C, 1...) : 1 / sqrt(var + eps)
    gamma: object  # (C,) or None
    axes: tuple
    mean: object  # (C,) batch mean
    var: object  # (C,) biased batch variance
    count: int  # values per channel, for the unbiased running variance
    eps: float  # lets the staged backward rebuild sqrt(var + eps)


class BatchNormEvalCache(NamedTuple):
    x_hat: object  # (x - running_mean) / sqrt(running_var + eps)
    scale: object  # keepdims gamma / sqrt(running_var + eps)
    has_gamma: bool
    has_beta: bool
    axes: tuple


def _affine(x_hat, gamma, beta):
    """``x_hat * gamma + beta`` with (C,) vectors broadcast along axis 1; a fresh array."""
    cs = channel_shape(x_hat.ndim)
    out = x_hat.copy() if gamma is None else x_hat * gamma.reshape(cs)
    if beta is not None:
        out += beta.reshape(cs)
    return out


def _check_axes(x, axes) -> tuple:
    axes = tuple(int(a) % x.ndim for a in axes)
    if 1 in axes or x.ndim < 2:
        raise ValueError(
            f"batch_norm: expected reduced axes that exclude the channel axis 1 of an input "
            f"with at least 2 dims, got axes={axes} for input of shape {tuple(x.shape)}."
        )
    return axes


def batch_norm_forward(x, gamma, beta, *, axes, eps: float = 1e-5):
    """Training-mode batch norm: ``out = gamma * (x - mean) / sqrt(var + eps) + beta``.

    ``mean`` and the biased ``var`` are per channel over ``axes`` (two-pass variance).

    Parameters
    ----------
    x : ndarray, shape (N, C, *)
    gamma, beta : ndarray of shape (C,), or None (affine=False)
    axes : tuple of int
        Reduced axes; must not contain the channel axis 1.
    eps : float

    Shape
    -----
    x (N, C, *) -> out (N, C, *).

    Returns
    -------
    out : ndarray, dtype of ``x``
    cache : BatchNormCache (``mean``, ``var`` (biased) and ``count`` feed
        ``update_running_stats``)

    Raises
    ------
    ValueError
        If ``axes`` contains the channel axis.
    """
    axes = _check_axes(x, axes)
    C = x.shape[1]
    if _bn_kernels.usable(x, axes):  # fused NumPy kernels: same maths, fewer passes
        out, x_hat, mean, var, inv_std = _bn_kernels.forward(x, gamma, beta, eps)
        inv_std = inv_std.reshape((1,) + channel_shape(x.ndim))
    else:
        x_hat, mean, var, inv_std = normalize(x, axes, eps)
        out = _affine(x_hat, gamma, beta)
    cache = BatchNormCache(x_hat, inv_std, gamma, axes, mean.reshape(C), var.reshape(C),
                           reduced_count(x.shape, axes), float(eps))
    return out, cache


def batch_norm_backward(dout, cache: BatchNormCache):
    """Closed-form gradients of ``batch_norm_forward``.

    ``dx = gamma / (m * sigma) * (m * dy - sum(dy) - x_hat * sum(dy * x_hat))``,
    ``dgamma = sum(dy * x_hat)``, ``dbeta = sum(dy)`` (sums over ``axes``, m values each).

    Returns
    -------
    dx : shape of x; dgamma, dbeta : (C,), or None when gamma was None
    """
    x_hat, inv_std, gamma, axes = cache.x_hat, cache.inv_std, cache.gamma, cache.axes
    C = x_hat.shape[1]
    if _bn_kernels.usable(x_hat, axes) and type(dout) is type(x_hat):
        dx, dgamma, dbeta = _bn_kernels.backward(dout, x_hat, inv_std.reshape(C), gamma)
        return (dx, None, None) if gamma is None else (dx, dgamma, dbeta)
    sum_dy = sum_over(dout, axes)
    sum_dy_xhat = sum_of_products(dout, x_hat, axes)
    scale = None if gamma is None else gamma.reshape(channel_shape(x_hat.ndim))
    dx = normalize_backward(dout, x_hat, inv_std, axes, scale=scale, sum_g=sum_dy,
                            sum_gx=sum_dy_xhat)
    if gamma is None:
        return dx, None, None
    return dx, sum_dy_xhat.reshape(C), sum_dy.reshape(C)


def batch_norm_backward_staged(dout, cache: BatchNormCache):
    """Backward through the computation graph, one node at a time (CS231n derivation).

    Forward graph: ``mu = mean(x)``, ``xmu = x - mu``, ``sq = xmu**2``, ``var = mean(sq)``,
    ``sqrtvar = sqrt(var + eps)``, ``ivar = 1 / sqrtvar``, ``xhat = xmu * ivar``,
    ``gammax = gamma * xhat``, ``out = gammax + beta``. The nodes not in the cache are
    rebuilt from it: ``sqrtvar = sqrt(var + eps)`` and ``xmu = xhat * sqrtvar``.
    The beta gradient is returned even when beta was None together with gamma.

    Returns
    -------
    dx, dgamma, dbeta : as ``batch_norm_backward`` (to round-off)
    """
    xp = backend.namespace(dout)
    axes = cache.axes
    cs = channel_shape(dout.ndim)
    m = cache.count
    gamma = cache.gamma
    ivar = cache.inv_std
    sqrtvar = xp.sqrt(cache.var.reshape(cs) + cache.eps)
    xhat = cache.x_hat
    xmu = xhat * sqrtvar
    # out = gammax + beta
    dbeta = dout.sum(axis=axes)
    dgammax = dout
    # gammax = gamma * xhat
    dgamma = (dgammax * xhat).sum(axis=axes)
    dxhat = dgammax if gamma is None else dgammax * gamma.reshape(cs)
    # xhat = xmu * ivar
    divar = (dxhat * xmu).sum(axis=axes, keepdims=True)
    dxmu1 = dxhat * ivar
    # ivar = 1 / sqrtvar
    dsqrtvar = -1.0 / sqrtvar**2 * divar
    # sqrtvar = sqrt(var + eps)
    dvar = 0.5 / sqrtvar * dsqrtvar
    # var = mean(sq)
    dsq = xp.ones_like(dout) * (dvar / m)
    # sq = xmu ** 2
    dxmu2 = 2.0 * xmu * dsq
    # xmu = x - mu
    dx1 = dxmu1 + dxmu2
    dmu = -(dxmu1 + dxmu2).sum(axis=axes, keepdims=True)
    # mu = mean(x)
    dx2 = xp.ones_like(dout) * (dmu / m)
    dx = dx1 + dx2
    if gamma is None:
        return dx, None, None
    return dx, dgamma, dbeta


def batch_norm_eval_forward(x, gamma, beta, running_mean, running_var, *, axes,
                            eps: float = 1e-5):
    """Eval-mode (frozen) batch norm: running statistics are constants.

    ``out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta``

    Parameters
    ----------
    x : ndarray, shape (N, C, *)
    gamma, beta : (C,) or None
    running_mean, running_var : (C,)
    axes : tuple of int
        The axes a training step would reduce (the gradients of gamma and beta sum
        over them).
    eps : float

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : BatchNormEvalCache
    """
    axes = _check_axes(x, axes)
    cs = channel_shape(x.ndim)
    inv_std = 1.0 / backend.namespace(x).sqrt(running_var.reshape(cs) + eps)
    x_hat = x - running_mean.reshape(cs)
    x_hat *= inv_std
    out = _affine(x_hat, gamma, beta)
    scale = inv_std if gamma is None else inv_std * gamma.reshape(cs)
    return out, BatchNormEvalCache(x_hat, scale, gamma is not None, beta is not None, axes)


def batch_norm_eval_backward(dout, cache: BatchNormEvalCache):
    """Gradients of ``batch_norm_eval_forward``: ``dx = dy * gamma / sqrt(running_var + eps)``.

    Returns
    -------
    dx : shape of x; dgamma, dbeta : (C,) or None for an absent param
    """
    x_hat, scale, has_gamma, has_beta, axes = cache
    dx = dout * scale
    dgamma = (dout * x_hat).sum(axis=axes) if has_gamma else None
    dbeta = dout.sum(axis=axes) if has_beta else None
    return dx, dgamma, dbeta


def update_running_stats(running_mean, running_var, batch_mean, batch_var, count: int,
                         momentum, num_batches_tracked):
    """PyTorch's running-statistics rule; returns new arrays, inputs untouched.

    ``new = (1 - f) * running + f * batch`` with ``f = momentum`` (the weight of the
    **new** statistic) or, for ``momentum=None``, ``f = 1 / num_batches_tracked``
    (a cumulative average; pass the counter after incrementing it). The variance
    uses the unbiased batch variance ``batch_var * count / (count - 1)``. An empty
    batch (``count == 0``) leaves both statistics unchanged, as in PyTorch.

    Parameters
    ----------
    running_mean, running_var : ndarray (C,)
    batch_mean, batch_var : ndarray (C,), biased variance
    count : int
        Values each batch statistic was computed from.
    momentum : float or None
    num_batches_tracked : int or 0-d int array

    Returns
    -------
    new_mean, new_var : ndarray (C,), dtype of the running statistics

    Raises
    ------
    ValueError
        If ``count == 1`` (the unbiased variance is undefined), or ``momentum`` is
        None with ``num_batches_tracked < 1``.
    """
    count = int(count)
    if count == 0:
        return running_mean.copy(), running_var.copy()
    if count == 1:
        raise ValueError(
            "update_running_stats: expected more than 1 value per statistic, got count=1. "
            "The unbiased variance needs at least 2 values."
        )
    if momentum is None:
        n = int(num_batches_tracked)
        if n < 1:
            raise ValueError(
                "update_running_stats: expected num_batches_tracked >= 1 (incremented before "
                f"the update) for momentum=None, got {n}."
            )
        factor = 1.0 / n
    else:
        factor = float(momentum)
    dtype = running_mean.dtype
    unbiased = batch_var * (count / (count - 1))
    new_mean = running_mean * (1.0 - factor) + batch_mean.astype(dtype) * factor
    new_var = running_var * (1.0 - factor) + unbiased.astype(dtype) * factor
    return new_mean, new_var
