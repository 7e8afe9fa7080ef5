"""Batch norm as stages: statistics as values, so something can sit between the stages.

The one-call ``batch_norm_forward``/``batch_norm_backward`` (``batchnorm.py``) are these
stages run back to back on one process. Written apart, a communicator (SyncBatchNorm), a
chunking rule (Ghost BN) or a re-estimation (precise BN) plugs in between them, as in
PyTorch's SyncBatchNorm and apex::

    forward:  batch_moments(x, axes) -> Moments(mean, var, count)     per process / chunk
              merge_moments([...])    -> Moments                        Chan, count-weighted
              batch_norm_forward_from_moments(x, gamma, beta, moments)  normalise + affine
    backward: batch_norm_backward_reduce(dout, cache) -> sum(dy), sum(dy * x_hat)   (C,)
              (all-reduce the two sums here)
              batch_norm_backward_elementwise(dout, cache, sum_dy, sum_dy_xhat, count) -> dx

The first stage (``Moments``, ``batch_moments``, ``merge_moments``) lives in
``batchnorm_moments.py`` and is re-exported here.

Statistics (``Moments.mean``/``var`` and the two backward sums) are kept in float64 for
float16/float32 input, the precision the compiled kernels accumulate in: merging, or
subtracting a mean of 1e4 from float32 data with std 0.1, would otherwise lose digits.
"""

from __future__ import annotations

from typing import NamedTuple

from normlab import backend
from normlab.functional.activation import BY_NAME as ACTIVATION_BY_NAME
from normlab.errors import NormlabValueError, ShapeError
from normlab.functional._bn_checks import (check_bn_affine, check_bn_dout, check_bn_eps,
                                           check_bn_input, check_moment_shapes)
from normlab.functional._normalize import (channel_shape, normalize_backward,
                                           reduced_count, sum_of_products, sum_over)
from normlab.functional.batchnorm_moments import (  # the first stage; re-exported here
    Moments, _compiled, batch_moments, check_axes, merge_moments, stat_dtype)
from normlab.validation import check_int, describe

__all__ = [
    "Moments",
    "BatchNormCache",
    "batch_moments",
    "merge_moments",
    "batch_norm_forward_from_moments",
    "batch_norm_backward_reduce",
    "batch_norm_backward_elementwise",
]


class BatchNormCache(NamedTuple):
    """What the backward of a training-mode batch norm needs.

    The input itself is kept (a reference, no copy), with the per-channel statistics;
    the backward recomputes ``x_hat = (x - mean) * inv_std`` where it needs it (inside the
    compiled kernels per element, in the reference path as one fresh array), as PyTorch
    keeps its input plus mean and invstd. So nothing may change ``x`` in place between the
    forward and the backward. ``x_hat`` is still there to read, as a property that
    recomputes it.
    """

    x: object  # (N, C, *) the forward's input itself (not a copy)
    inv_std: object  # keepdims (1, C, 1...) : 1 / sqrt(var + eps), dtype of x
    gamma: object  # (C,) or None
    axes: tuple
    mean: object  # (C,) mean used (batch or merged), dtype of x
    var: object  # (C,) biased variance used, dtype of x
    count: int  # values per channel behind mean/var (the global count when merged)
    eps: float  # lets the staged backward rebuild sqrt(var + eps)
    has_beta: bool  # whether the forward had a beta (dbeta is returned only then)
    stat_mean: object  # (C,) mean in the statistics' dtype (float64 for float16/32 data)
    stat_inv_std: object  # (C,) 1 / sqrt(var + eps) in the statistics' dtype

    @property
    def x_hat(self):
        """``(x - mean) * inv_std``, the normalised input, recomputed: a fresh array."""
        return _normalized(self.x, self.stat_mean, self.stat_inv_std)


def batch_norm_forward_from_moments(x, gamma, beta, moments: Moments, *, axes,
                                    eps: float = 1e-5):
    """Normalise with given moments, then the affine map:
    ``out = gamma * (x - mean) / sqrt(var + eps) + beta``.

    The moments may be this batch's (``batch_moments``) or merged over processes or
    chunks (``merge_moments``); ``cache.count`` is their count, which the backward uses.

    Parameters
    ----------
    x : ndarray, shape (N, C, *)
    gamma, beta : ndarray of shape (C,), or None (affine=False)
    moments : Moments with (C,) statistics
    axes : tuple of int
        The reduced axes (must not contain the channel axis 1).
    eps : float

    Shape
    -----
    x (N, C, *) -> out (N, C, *).

    Returns
    -------
    out : ndarray, dtype of ``x``
    cache : BatchNormCache

    Raises
    ------
    ValueError
        If ``axes`` contains the channel axis or the moments are not (C,) vectors.
    """
    owner = "batch_norm_forward_from_moments"
    x = check_bn_input(x, owner)
    axes = check_axes(x, axes, owner)
    check_bn_affine(x, gamma, beta, owner)
    eps = check_bn_eps(eps, owner)
    check_moment_shapes(x, moments, owner)
    return _forward_from_moments(x, gamma, beta, moments, axes, eps)


def _normalized(x, mean, inv_std):
    """``x_hat = (x - mean) * inv_std``: a fresh array of ``x``'s dtype, from (C,)
    statistics in the statistics' dtype (``stat_dtype``)."""
    xp = backend.namespace(x)
    dt, cs, C = x.dtype, channel_shape(x.ndim), x.shape[1]
    sdt = stat_dtype(dt)
    # mean = hi + lo in x's dtype: x - hi is exact when hi is close to x (Sterbenz), so a
    # float32 mean of 1e4 costs no digits of data with std 0.1. The lo pass is skipped
    # where lo / std is below half an ulp of 1 in x's dtype.
    hi = mean.astype(dt)
    x_hat = x - hi.reshape(cs)
    lo = mean - hi.astype(sdt)
    if sdt != dt and C and float(xp.max(xp.abs(lo) * inv_std)) > xp.finfo(dt).eps / 2:
        x_hat -= lo.astype(dt).reshape(cs)
    x_hat *= inv_std.astype(dt).reshape(cs)
    return x_hat


def residual_fits(residual, x) -> bool:
    """No residual, or one a fused compiled kernel takes: x's array type and dtype, C
    order (``functional.fused``; otherwise the add runs as its own op)."""
    return residual is None or (type(residual) is type(x) and residual.dtype == x.dtype
                                and residual.flags.c_contiguous)


def _forward_from_moments(x, gamma, beta, moments: Moments, axes, eps, centred=None,
                          residual=None, activation=None):
    """``batch_norm_forward_from_moments`` on checked arguments. ``centred``: a fresh
    ``x - moments.mean`` (``_moments_centred``), normalised in place (one pass fewer).
    ``residual`` (checked, x's shape) is added to the output and ``activation`` ("relu",
    "sigmoid" or None) applied after: ``functional.fused``'s training op. The compiled
    kernels do it in their pass (ReLU: where the residual is a C-contiguous array of x's
    type and dtype; sigmoid: without a residual), else the separate ops run (``+``,
    ``relu_forward`` / ``sigmoid_forward``)."""
    xp = backend.namespace(x)
    dt, cs = x.dtype, channel_shape(x.ndim)
    sdt = stat_dtype(dt)
    mean = moments.mean.astype(sdt, copy=False)
    inv_std = 1.0 / xp.sqrt(moments.var.astype(sdt, copy=False) + eps)  # (C,)
    impl = None if centred is not None else _compiled("bn_normalize_affine", xp, x, axes)
    sigmoid = None if centred is not None or activation != "sigmoid" or residual is not None \
        else _compiled("bn_normalize_sigmoid", xp, x, axes)
    fuse = impl is not None and activation == "relu" and residual_fits(residual, x)
    if fuse:  # one pass; the difference x - mean taken in float64
        out = impl(x, mean, inv_std, gamma, beta, residual=residual, relu=True)
        residual, activation = None, None  # done
    elif sigmoid is not None:  # the same, then NumPy's exp and the select, in blocks
        out = sigmoid(x, mean, inv_std, gamma, beta)
        activation = None
    elif impl is not None:
        out = impl(x, mean, inv_std, gamma, beta)
    else:  # out is x_hat, scaled and shifted in place (the cache keeps x, not x_hat)
        if centred is not None:
            out = centred
            out *= inv_std.astype(dt).reshape(cs)
        else:
            out = _normalized(x, mean, inv_std)
        if gamma is not None:
            out *= gamma.reshape(cs)
        if beta is not None:
            out += beta.reshape(cs)
    if residual is not None:
        out = out + residual
    if activation is not None:
        out = ACTIVATION_BY_NAME[activation][0](out)[0]
    return out, _cache(x, gamma, beta, moments, axes, eps, mean, inv_std)


def _cache(x, gamma, beta, moments: Moments, axes, eps, mean, inv_std) -> BatchNormCache:
    """The training forward's cache; ``mean`` and ``inv_std`` (C,) in the statistics'
    dtype (``stat_dtype``), ``inv_std = 1 / sqrt(var + eps)``."""
    dt = x.dtype
    return BatchNormCache(x, inv_std.astype(dt).reshape((1,) + channel_shape(x.ndim)), gamma,
                          axes, moments.mean.astype(dt), moments.var.astype(dt),
                          int(moments.count), float(eps), beta is not None, mean, inv_std)


def batch_norm_backward_reduce(dout, cache: BatchNormCache):
    """The reduce stage of the backward: per-channel ``sum(dy)`` and ``sum(dy * x_hat)``.

    These are ``dbeta`` and ``dgamma`` of this process's data; summed over processes
    (all-reduce) they feed ``batch_norm_backward_elementwise`` with the global count.

    Parameters
    ----------
    dout : ndarray, shape of the forward's input
    cache : BatchNormCache

    Shape
    -----
    dout (N, C, *) -> sum_dy (C,), sum_dy_xhat (C,).

    Returns
    -------
    sum_dy, sum_dy_xhat : ndarray (C,), float64 for float16/float32 data
    """
    dout = check_bn_dout(dout, cache, BatchNormCache, "batch_norm_backward_reduce")
    return _backward_reduce(dout, cache)


def _backward_reduce(dout, cache: BatchNormCache, x_hat=None):
    """``batch_norm_backward_reduce`` on a checked ``dout``. ``x_hat``: the reference
    path's recomputed ``cache.x_hat`` if the caller has it (else recomputed here)."""
    x, axes = cache.x, cache.axes
    C = x.shape[1]
    sdt = stat_dtype(x.dtype)
    impl = _compiled("bn_grad_sums", backend.namespace(dout, x), x, axes, dout)
    if impl is not None:  # -> float64 (C,) sum_dy, sum_dy_xhat; x_hat per element inside
        return impl(dout, x, cache.stat_mean, cache.stat_inv_std)
    if x_hat is None:
        x_hat = cache.x_hat
    sum_dy = sum_over(dout, axes).reshape(C).astype(sdt)
    sum_dy_xhat = sum_of_products(dout, x_hat, axes).reshape(C).astype(sdt)
    return sum_dy, sum_dy_xhat


def _uses_kernels(dout, cache: BatchNormCache) -> bool:
    """Whether both backward stages run compiled (then no ``x_hat`` array is made)."""
    xp = backend.namespace(dout, cache.x)
    return all(_compiled(op, xp, cache.x, cache.axes, dout) is not None
               for op in ("bn_grad_sums", "bn_grad_input"))


def batch_norm_backward_elementwise(dout, cache: BatchNormCache, sum_dy, sum_dy_xhat,
                                    count: int):
    """The elementwise stage of the backward, from (possibly all-reduced) sums.

    ``dx = gamma * inv_std * (dy - sum_dy / count - x_hat * sum_dy_xhat / count)`` with
    the sums and ``count`` over the whole (global) batch the moments came from.

    Parameters
    ----------
    dout : ndarray, shape of the forward's input
    cache : BatchNormCache
    sum_dy, sum_dy_xhat : ndarray (C,), from ``batch_norm_backward_reduce`` (summed over
        processes for a distributed batch)
    count : int
        Values per channel in the global batch (``cache.count`` for one process).

    Shape
    -----
    dout (N, C, *) -> dx (N, C, *).

    Returns
    -------
    dx : ndarray, dtype of the forward's input (zeros when ``count == 0``)

    Raises
    ------
    ValueError
        If ``count`` is smaller than this input's values per channel.
    """
    owner = "batch_norm_backward_elementwise"
    dout = check_bn_dout(dout, cache, BatchNormCache, owner)
    x, axes = cache.x, cache.axes
    for name, v in (("sum_dy", sum_dy), ("sum_dy_xhat", sum_dy_xhat)):
        if tuple(getattr(v, "shape", ())) != (x.shape[1],):
            raise ShapeError(f"{owner}: expected {name} of shape ({x.shape[1]},) (one per "
                             f"channel), got {describe(v)}.")
    count = check_int(count, "count", owner, low=0)
    count, local = int(count), reduced_count(x.shape, axes)
    if count < local:
        raise NormlabValueError(
            f"batch_norm_backward_elementwise: expected the global count of values per "
            f"channel (at least the {local} of this input), got count={count}. Pass the count "
            "of the moments the forward used (cache.count)."
        )
    return _backward_elementwise(dout, cache, sum_dy, sum_dy_xhat, count)


def _dx_scale(cache: BatchNormCache):
    """The compiled dx kernels' per-channel ``k = inv_std * gamma``: (C,) in the statistics'
    dtype, from the ``inv_std`` the cache keeps in x's dtype."""
    k = cache.inv_std.reshape(cache.x.shape[1]).astype(stat_dtype(cache.x.dtype))
    return k if cache.gamma is None else k * cache.gamma.astype(k.dtype)


def _backward_elementwise(dout, cache: BatchNormCache, sum_dy, sum_dy_xhat, count: int,
                          x_hat=None, into=None):
    """``batch_norm_backward_elementwise`` on checked arguments. ``x_hat``: as in
    ``_backward_reduce``. ``into``: ``dout`` itself where the caller hands it over and it
    may take dx (``validation.overwritable``): the compiled kernel writes dx over it; the
    reference returns a new array."""
    x, inv_std, gamma, axes = cache.x, cache.inv_std, cache.gamma, cache.axes
    xp = backend.namespace(dout, x)
    if count == 0 or x.size == 0:
        return xp.zeros_like(x)
    sdt = stat_dtype(x.dtype)
    sum_dy = xp.asarray(sum_dy).astype(sdt, copy=False)
    sum_dy_xhat = xp.asarray(sum_dy_xhat).astype(sdt, copy=False)
    impl = _compiled("bn_grad_input", xp, x, axes, dout)
    if impl is not None:
        # dx = k * (dy - shift - x_hat * slope), x_hat = (x - mean) * inv_std per element
        return impl(dout, x, cache.stat_mean, cache.stat_inv_std, _dx_scale(cache),
                    sum_dy / count, sum_dy_xhat / count, into=into)
    if x_hat is None:
        x_hat = cache.x_hat
    dt, ks = x.dtype, inv_std.shape
    scale = None if gamma is None else gamma.reshape(channel_shape(x.ndim))
    return normalize_backward(dout, x_hat, inv_std, axes, scale=scale,
                              sum_g=sum_dy.astype(dt).reshape(ks),
                              sum_gx=sum_dy_xhat.astype(dt).reshape(ks), count=count)
