"""The one normalisation core shared by batch, layer, group, instance and RMS norm.

``normalize`` standardises ``x`` over a tuple of ``axes`` (statistics kept with
``keepdims``); ``normalize_backward`` is its closed-form gradient. Every norm layer is
this pair plus an affine map and a choice of axes (group norm reshapes first).
"""

from __future__ import annotations

import math

from normlab import backend

__all__ = ["normalize", "normalize_backward", "reduced_count", "channel_shape", "sum_over",
           "sum_of_products"]

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def reduced_count(shape, axes) -> int:
    """Number of elements each statistic is computed from: ``prod(shape[a] for a in axes)``."""
    return math.prod(shape[a] for a in axes)


def channel_shape(ndim: int) -> tuple:
    """Shape that broadcasts a ``(C,)`` vector along axis 1 of an ``ndim``-D array."""
    return (-1,) + (1,) * (ndim - 2)


def _subscripts(ndim: int, axes, operands: int) -> str:
    dims = _LETTERS[:ndim]
    kept = "".join(d for i, d in enumerate(dims) if i not in axes)
    return ",".join([dims] * operands) + "->" + kept


def _keepdims(a, shape, axes):
    return a.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))


def sum_over(a, axes):
    """``a.sum(axis=axes, keepdims=True)``, through einsum.

    einsum reduces several non-contiguous axes at once (BatchNorm2d's ``(0, 2, 3)``)
    about 3x faster than ``ndarray.sum`` on NumPy, and it exists on CuPy too.
    """
    xp = backend.namespace(a)
    return _keepdims(xp.einsum(_subscripts(a.ndim, axes, 1), a), a.shape, axes)


def sum_of_products(a, b, axes):
    """``(a * b).sum(axis=axes, keepdims=True)`` without the ``a * b`` temporary."""
    xp = backend.namespace(a, b)
    return _keepdims(xp.einsum(_subscripts(a.ndim, axes, 2), a, b), a.shape, axes)


def _shift(x, axes):
    """One sample per statistic (index 0 along every reduced axis), ``keepdims`` shaped.

    Subtracting it before summing keeps float32 sums exact-ish when ``|mean| >> std``
    (mean 1e4, std 0.1): the differences are small and, by Sterbenz's lemma, exact.
    """
    index = tuple(slice(0, 1) if a in axes else slice(None) for a in range(x.ndim))
    return x[index]


def normalize(x, axes, eps: float, center: bool = True):
    """Standardise ``x`` over ``axes``: ``x_hat = (x - mean) / sqrt(var + eps)``.

    The variance is biased and computed in two passes (mean, then the mean of squared
    deviations), never as ``E[x^2] - E[x]^2``. The data is shifted by one sample per
    statistic first, so a large common offset does not cost float32 precision. With
    ``center=False`` (RMS norm) ``mean`` is ``None`` and ``var`` is ``mean(x^2)``.

    Parameters
    ----------
    x : ndarray
    axes : tuple of int
        Reduced axes (non-negative).
    eps : float
    center : bool

    Returns
    -------
    x_hat : ndarray, fresh, shape and dtype of ``x``
    mean, var, inv_std : ndarray, ``keepdims`` shape (size 1 along ``axes``)
    """
    xp = backend.namespace(x)
    stat_shape = tuple(1 if a in axes else n for a, n in enumerate(x.shape))
    count = reduced_count(x.shape, axes)
    if count == 0:
        # An empty reduction would divide by zero; PyTorch returns an empty output.
        zeros = xp.zeros(stat_shape, dtype=x.dtype)
        return x.copy(), zeros, zeros.copy(), xp.ones(stat_shape, dtype=x.dtype)
    if center:
        shift = _shift(x, axes)
        d = x - shift  # fresh array, becomes x_hat in place below
        d_mean = sum_over(d, axes) * (1.0 / count)
        d -= d_mean
        mean = shift + d_mean
    else:
        d = x.copy()
        mean = None
    var = sum_of_products(d, d, axes) * (1.0 / count)
    if not bool(xp.isfinite(var).all()) and bool(xp.isfinite(d).all()):
        return _normalize_scaled(d, mean, var, axes, count, eps)
    inv_std = 1.0 / xp.sqrt(var + eps)
    d *= inv_std
    return d, mean, var, inv_std


def _normalize_scaled(d, mean, var, axes, count: int, eps: float):
    """``normalize`` for deviations whose squares overflow (float32 ``|x - mean|`` >~ 1e19).

    Each statistic's deviations are divided by their largest magnitude ``s`` before
    squaring: ``var = s^2 * mean((d/s)^2)`` and ``1/sqrt(var + eps) = 1 / (s * sqrt(
    mean((d/s)^2) + eps/s^2))``, all finite; only ``var`` itself stays ``inf`` where the
    true variance is not representable. PyTorch, accumulating in a wider type, gets the
    same ``x_hat``.
    """
    xp = backend.namespace(d)
    s = xp.max(xp.abs(d), axis=axes, keepdims=True)
    s = xp.where(s > 0, s, xp.ones_like(s))
    d /= s
    var_s = sum_of_products(d, d, axes) * (1.0 / count)
    inv_std_s = 1.0 / xp.sqrt(var_s + (eps / s) / s)  # eps/s^2 underflows harmlessly
    d *= inv_std_s
    return d, mean, var, inv_std_s / s


def normalize_backward(g, x_hat, inv_std, axes, *, scale=None, sum_g=None, sum_gx=None,
                       center: bool = True, count: int | None = None):
    """Gradient of ``normalize`` w.r.t. ``x`` given ``dL/dx_hat = scale * g``.

    ``dx = scale * inv_std / m * (m*g - sum(g) - x_hat * sum(g * x_hat))`` with sums over
    ``axes`` and ``m`` elements per statistic (``center=False`` drops the ``sum(g)``
    term). ``scale`` must be constant along ``axes`` (BatchNorm's gamma), which lets the
    caller reuse ``sum(g)`` and ``sum(g * x_hat)`` as ``dbeta`` and ``dgamma``.

    Parameters
    ----------
    g : ndarray, shape of ``x_hat``
    x_hat, inv_std : from ``normalize``
    axes : tuple of int
    scale : ndarray or None, broadcastable, constant along ``axes``
    sum_g, sum_gx : ndarray or None, ``keepdims`` sums if the caller has them already
    center : bool
    count : int or None
        ``m``, the values behind each statistic. ``None`` counts them from ``x_hat``'s
        shape, which is right only when the statistics came from this very array; batch
        norm passes the count of the moments it normalised with (global under SyncBN,
        where ``sum_g``/``sum_gx`` are all-reduced too).

    Returns
    -------
    dx : ndarray, fresh, shape of ``x_hat``
    """
    xp = backend.namespace(g, x_hat)
    m = reduced_count(x_hat.shape, axes) if count is None else int(count)
    if m == 0 or x_hat.size == 0:
        return xp.zeros_like(x_hat)
    if sum_gx is None:
        sum_gx = sum_of_products(g, x_hat, axes)
    k = inv_std if scale is None else scale * inv_std
    dx = xp.multiply(x_hat, sum_gx * (1.0 / m))
    xp.subtract(g, dx, out=dx)
    if center:
        if sum_g is None:
            sum_g = sum_over(g, axes)
        dx -= sum_g * (1.0 / m)
    dx *= k
    return dx
