"""Batch normalization (Ioffe & Szegedy, 2015): training, eval and the running-stat rule.

Statistics are taken per channel (axis 1) over every axis in ``axes``; BatchNorm1d on
``(N, C)`` uses ``axes=(0,)``, on ``(N, C, L)`` ``(0, 2)``, BatchNorm2d ``(0, 2, 3)``,
BatchNorm3d ``(0, 2, 3, 4)``. One routine serves every rank.
"""

from __future__ import annotations

from typing import NamedTuple

from normlab import backend
from normlab.errors import NormlabValueError
from normlab.functional._bn_checks import (check_bn_affine, check_bn_dout, check_bn_eps,
                                           check_bn_input, check_running,
                                           check_training_count)
from normlab.functional._normalize import channel_shape, reduced_count
from normlab.validation import (check_bool, check_cache, check_dout, check_int, check_real,
                                check_vector, overwritable)
from normlab.functional.batchnorm_moments import _moments_centred
from normlab.functional.batchnorm_stages import (BatchNormCache, _compiled, Moments, batch_moments,
                                                 batch_norm_backward_elementwise,
                                                 batch_norm_backward_reduce,
                                                 batch_norm_forward_from_moments,
                                                 _backward_elementwise, _backward_reduce,
                                                 _cache, _dx_scale, _forward_from_moments,
                                                 _uses_kernels, residual_fits,
                                                 check_axes,
                                                 merge_moments)

__all__ = [
    "BatchNormCache",
    "BatchNormEvalCache",
    "Moments",
    "batch_moments",
    "merge_moments",
    "batch_norm_forward_from_moments",
    "batch_norm_backward_reduce",
    "batch_norm_backward_elementwise",
    "batch_norm_forward",
    "batch_norm_backward",
    "batch_norm_backward_staged",
    "batch_norm_eval_forward",
    "batch_norm_eval_backward",
    "update_running_stats",
]


class BatchNormEvalCache(NamedTuple):
    x: object  # the input itself: backward recomputes x_hat, eval keeps no normalised copy
    mean: object  # keepdims running_mean
    inv_std: object  # keepdims 1 / sqrt(running_var + eps)
    scale: object  # keepdims gamma / sqrt(running_var + eps)
    has_gamma: bool
    has_beta: bool
    axes: tuple


def batch_norm_forward(x, gamma, beta, *, axes, eps: float = 1e-5):
    """Training-mode batch norm: ``out = gamma * (x - mean) / sqrt(var + eps) + beta``.

    ``mean`` and the biased ``var`` are per channel over ``axes`` (two-pass variance).
    The stages on one process: ``batch_moments``, then ``batch_norm_forward_from_moments``.

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
    owner = "batch_norm_forward"
    x = check_bn_input(x, owner)
    axes = check_axes(x, axes, owner)
    check_bn_affine(x, gamma, beta, owner)
    eps = check_bn_eps(eps, owner)
    check_training_count(x, axes, owner)
    return _forward(x, gamma, beta, axes, eps)


def _forward(x, gamma, beta, axes, eps, residual=None, activation=None):
    """``batch_norm_forward`` on checked arguments (also what the BN modules call: they
    check their input and own parameters themselves). ``residual``, ``activation``: the
    fused op's epilogue (``functional.fused``, ``_forward_from_moments``)."""
    impl = _compiled("bn_forward", backend.namespace(x), x, axes)
    done = impl(x, gamma, beta, eps, residual=residual, relu=activation == "relu") \
        if impl is not None and activation in (None, "relu") and residual_fits(residual, x) \
        else None
    if done is not None:  # the stages channel by channel in one kernel (numba_bn.forward)
        out, mean, var, inv_std = done
        moments = Moments(mean, var, reduced_count(x.shape, axes))
        return out, _cache(x, gamma, beta, moments, axes, eps, mean, inv_std)
    moments, centred = _moments_centred(x, axes)
    return _forward_from_moments(x, gamma, beta, moments, axes, eps, centred, residual,
                                 activation)


def batch_norm_backward(dout, cache: BatchNormCache, overwrite_dout=False):
    """Closed-form gradients of ``batch_norm_forward``.

    ``dx = gamma / (m * sigma) * (m * dy - sum(dy) - x_hat * sum(dy * x_hat))``,
    ``dgamma = sum(dy * x_hat)``, ``dbeta = sum(dy)`` (sums over ``axes``, m values each).
    The stages on one process: ``batch_norm_backward_reduce``, then
    ``batch_norm_backward_elementwise`` with the local count ``cache.count``.
    ``overwrite_dout``: the caller hands ``dout`` over; the compiled elementwise pass
    writes dx over it (after the sums have read it) where it is a writable C-contiguous
    array of x's dtype; elsewhere dx is a new array. The same bits.

    Returns
    -------
    dx : shape of x
    dgamma : (C,), or None when the forward had no gamma
    dbeta : (C,), or None when the forward had no beta
    """
    overwrite = check_bool(overwrite_dout, "overwrite_dout", "batch_norm_backward")
    dout = check_bn_dout(dout, cache, BatchNormCache, "batch_norm_backward")
    return _backward(dout, cache, overwrite)


def _backward(dout, cache: BatchNormCache, overwrite_dout: bool = False):
    """``batch_norm_backward`` on a checked ``dout`` (the BN modules' ``Module.backward``
    has checked it against the forward's output)."""
    x, dt = cache.x, cache.x.dtype
    into = dout if overwrite_dout and overwritable(dout, x.shape, dt) else None
    impl = _compiled("bn_backward", backend.namespace(dout, x), x, cache.axes, dout)
    done = impl(dout, x, cache.stat_mean, cache.stat_inv_std, _dx_scale(cache), cache.count,
                into=into) if impl is not None and cache.count else None
    if done is not None:  # the stages channel by channel in one kernel (numba_bn.backward)
        dx, sum_dy, sum_dy_xhat = done
    else:
        # the reference path recomputes x_hat once for both stages; the kernels per element
        x_hat = None if _uses_kernels(dout, cache) else cache.x_hat
        sum_dy, sum_dy_xhat = _backward_reduce(dout, cache, x_hat)
        dx = _backward_elementwise(dout, cache, sum_dy, sum_dy_xhat, cache.count, x_hat, into)
    dgamma = None if cache.gamma is None else sum_dy_xhat.astype(dt)
    dbeta = sum_dy.astype(dt) if cache.has_beta else None
    return dx, dgamma, dbeta


def batch_norm_backward_staged(dout, cache: BatchNormCache):
    """Backward through the computation graph, one node at a time (CS231n derivation).

    Forward graph: ``mu = mean(x)``, ``xmu = x - mu``, ``sq = xmu**2``, ``var = mean(sq)``,
    ``sqrtvar = sqrt(var + eps)``, ``ivar = 1 / sqrtvar``, ``xhat = xmu * ivar``,
    ``gammax = gamma * xhat``, ``out = gammax + beta``. The nodes not in the cache are
    rebuilt from it: ``xhat`` (``cache.x_hat``), ``sqrtvar = sqrt(var + eps)`` and
    ``xmu = xhat * sqrtvar``.

    Returns
    -------
    dx, dgamma, dbeta : as ``batch_norm_backward`` (to round-off)
    """
    dout = check_bn_dout(dout, cache, BatchNormCache, "batch_norm_backward_staged")
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
    return dx, (None if gamma is None else dgamma), (dbeta if cache.has_beta else None)


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
    x, mean, inv_std, scale, axes = _eval_setup(x, gamma, beta, running_mean, running_var,
                                                axes, eps, "batch_norm_eval_forward")
    out = _eval_affine(x, mean, scale, beta, axes)
    return out, BatchNormEvalCache(x, mean, inv_std, scale, gamma is not None,
                                   beta is not None, axes)


def _eval_setup(x, gamma, beta, running_mean, running_var, axes, eps, owner):
    """The checks of an eval forward and its constants: ``(x, mean, inv_std, scale,
    axes)``, the three vectors keepdims (``scale = gamma * inv_std``)."""
    x = check_bn_input(x, owner)
    axes = check_axes(x, axes, owner)
    check_bn_affine(x, gamma, beta, owner)
    check_running(x, running_mean, running_var, owner)
    eps = check_bn_eps(eps, owner)
    xp = backend.namespace(x)
    cs = channel_shape(x.ndim)
    mean = running_mean.reshape(cs)
    inv_std = 1.0 / xp.sqrt(running_var.reshape(cs) + eps)
    scale = inv_std if gamma is None else inv_std * gamma.reshape(cs)
    return x, mean, inv_std, scale, axes


def _eval_kernel(x, axes, mean, scale, op="bn_eval_affine"):
    """The compiled ``op`` (``bn_eval_affine``, or ``bn_eval_sigmoid`` for
    ``functional.fused``) if it applies (C-contiguous ``x``, constants of its dtype),
    else ``None``."""
    impl = _compiled(op, backend.namespace(x), x, axes, mean, scale)
    if impl is not None and x.flags.c_contiguous and mean.dtype == scale.dtype == x.dtype:
        return impl
    return None


def _eval_affine(x, mean, scale, beta, axes):
    """``(x - mean) * scale + beta``: a new array, one compiled pass where it applies."""
    impl = _eval_kernel(x, axes, mean, scale)
    if impl is not None:
        return impl(x, mean, scale, beta)  # one pass (compiled/numba_elementwise.py)
    out = x - mean  # in place on one new array: no x_hat is kept (backward recomputes it)
    out *= scale
    if beta is not None:
        out += beta.reshape(channel_shape(x.ndim))
    return out


def batch_norm_eval_backward(dout, cache: BatchNormEvalCache):
    """Gradients of ``batch_norm_eval_forward``: ``dx = dy * gamma / sqrt(running_var + eps)``.

    Returns
    -------
    dx : shape of x; dgamma, dbeta : (C,) or None for an absent param
    """
    owner = "batch_norm_eval_backward"
    x = check_cache(cache, BatchNormEvalCache, owner).x  # the input: shape of the output
    dout = check_dout(dout, x.shape, owner, like=x)
    x, mean, inv_std, scale, has_gamma, has_beta, axes = cache
    dx = dout * scale
    if has_gamma:
        x_hat = x - mean  # recomputed: eval forward keeps only the input
        x_hat *= inv_std
        dgamma = (dout * x_hat).sum(axis=axes)
    else:
        dgamma = None
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
    owner = "update_running_stats"
    count = check_int(count, "count", owner, low=0)
    C = getattr(running_mean, "shape", (0,))[0] if getattr(running_mean, "ndim", 0) == 1 else 0
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("batch_mean", batch_mean), ("batch_var", batch_var)):
        check_vector(v, C or 1, owner, name) if C else check_vector(v, -1, owner, name)
    if momentum is not None:
        running_factor(momentum, 1, owner)  # checks it
    if count == 0:
        return running_mean.copy(), running_var.copy()
    if count == 1:
        raise NormlabValueError(
            "update_running_stats: expected more than 1 value per statistic, got count=1. "
            "The unbiased variance needs at least 2 values."
        )
    factor = running_factor(momentum, num_batches_tracked, owner)
    return _update_running_stats(running_mean, running_var, batch_mean,
                                 batch_var * (count / (count - 1)), factor)


def running_factor(momentum, num_batches_tracked, owner: str) -> float:
    """Weight ``f`` of the new statistic: ``momentum``, or ``1 / num_batches_tracked`` for
    ``momentum=None`` (the counter already incremented). Checks both."""
    if momentum is None:
        n = int(num_batches_tracked)
        if n < 1:
            raise NormlabValueError(
                f"{owner}: expected num_batches_tracked >= 1 (incremented before the update) "
                f"for momentum=None, got {n}."
            )
        return 1.0 / n
    if type(momentum) is float and 0.0 <= momentum <= 1.0:  # the hot path
        return momentum
    return check_real(momentum, "momentum", owner, low=0.0, high=1.0,
                      hint="momentum is the weight of the NEW statistic (PyTorch).")


def _update_running_stats(running_mean, running_var, batch_mean, batch_var, factor: float):
    """``new = (1 - factor) * running + factor * batch`` for the mean and for ``batch_var``
    as given (unbiased for PyTorch's rule, biased for d2l's); new arrays, dtype of the
    running statistics. Unchecked: ``update_running_stats`` and the BN modules check."""
    dtype = running_mean.dtype
    new_mean = running_mean * (1.0 - factor) + batch_mean.astype(dtype) * factor
    new_var = running_var * (1.0 - factor) + batch_var.astype(dtype) * factor
    return new_mean, new_var
