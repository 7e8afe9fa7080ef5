"""Batch statistics as values: ``Moments``, ``batch_moments``, ``merge_moments``.

The first stage of batch norm (``batchnorm_stages.py`` has the rest, and re-exports these):
per-channel mean and biased variance with their count, computed per process or chunk and
merged exactly (Chan et al.). Statistics are float64 for float16/float32 input, the
precision the compiled kernels accumulate in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from normlab import backend
from normlab.errors import NormlabValueError
from normlab.functional import dispatch
from normlab.functional._bn_checks import check_bn_axes, check_bn_input
from normlab.functional._normalize import reduced_count, sum_of_products, sum_over

__all__ = ["Moments", "batch_moments", "merge_moments"]


class Moments(NamedTuple):
    """Per-channel batch statistics of ``count`` values each.

    ``mean`` and ``var`` (biased: divided by ``count``) have shape (C,) and dtype float64
    for float16/float32 input (the input's dtype for float64). ``count`` is a Python int,
    the number of values per channel; ``count == 0`` comes with ``mean == var == 0``.
    """

    mean: object  # (C,)
    var: object  # (C,) biased
    count: int


def stat_dtype(dtype):
    """dtype the statistics of ``dtype`` data are kept in: float64, or wider."""
    return np.promote_types(dtype, np.float64)


def check_axes(x, axes, owner: str = "batch_norm") -> tuple:
    """Non-negative reduced ``axes`` of ``x``; they must exclude the channel axis 1.

    See ``_bn_checks.check_bn_axes`` (messages name the axes as given).
    """
    return check_bn_axes(x, axes, owner)


_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _compiled(op: str, xp, x, axes, *others):
    """The compiled kernel for ``op`` (``dispatch.lookup``) if its layout applies: float32
    or float64 data reduced over every axis but the channel axis, of one array type."""
    if x.dtype not in _KERNEL_DTYPES or x.size == 0 or axes != (0, *range(2, x.ndim)):
        return None
    for other in others:
        if type(other) is not type(x):
            return None
    return dispatch.lookup(op, xp)


def batch_moments(x, axes) -> Moments:
    """Per-channel mean and biased variance of ``x`` over ``axes``, and the count.

    ``mean = sum(x) / m``, ``var = sum((x - mean)^2) / m`` with ``m = count`` values per
    channel: two passes, never ``E[x^2] - E[x]^2``. The reference path first subtracts one
    sample per channel (exact by Sterbenz's lemma when ``|mean| >> std``), so float32 data
    with mean 1e4 and std 0.1 keeps its digits; the compiled kernel accumulates in float64.
    An input with no values per channel (``N = 0``) gives ``count = 0`` and zero statistics.

    Parameters
    ----------
    x : ndarray, shape (N, C, *)
    axes : tuple of int
        Reduced axes; must not contain the channel axis 1.

    Shape
    -----
    x (N, C, *) -> mean (C,), var (C,).

    Returns
    -------
    Moments

    Raises
    ------
    ValueError
        If ``axes`` contains the channel axis.
    """
    x = check_bn_input(x, "batch_moments")
    axes = check_axes(x, axes, "batch_moments")
    return _moments(x, axes)


def _moments(x, axes) -> Moments:
    """``batch_moments`` on checked arguments."""
    return _moments_centred(x, axes)[0]


def _moments_centred(x, axes):
    """``(Moments, centred)``: the moments and, from the reference path, the fresh array
    ``x - mean`` it computed on the way (``None`` from a compiled kernel or for ``count ==
    0``); the one-call forward normalises it in place instead of subtracting again."""
    xp = backend.namespace(x)
    C = x.shape[1]
    count = reduced_count(x.shape, axes)
    sdt = stat_dtype(x.dtype)
    if count == 0:
        return Moments(xp.zeros(C, dtype=sdt), xp.zeros(C, dtype=sdt), 0), None
    impl = _compiled("bn_moments", xp, x, axes)
    if impl is not None:  # -> float64 (C,) mean, var
        mean, var = impl(x)
        return Moments(mean, var, count), None
    index = tuple(slice(0, 1) if a in axes else slice(None) for a in range(x.ndim))
    shift = x[index]  # one sample per channel, keepdims
    d = x - shift
    d_mean = sum_over(d, axes) * (1.0 / count)
    d -= d_mean
    var = sum_of_products(d, d, axes) * (1.0 / count)
    mean = shift.reshape(C).astype(sdt) + d_mean.reshape(C).astype(sdt)
    return Moments(mean, var.reshape(C).astype(sdt), count), d


def merge_moments(moments: Sequence[Moments]) -> Moments:
    """Moments of the union of disjoint sets from the moments of each (Chan et al., 1979).

    ``n = sum(n_i)``, ``mean = sum(n_i * mean_i) / n``,
    ``var = sum(n_i * (var_i + (mean_i - mean)^2)) / n``: exact for uneven counts. Entries
    with ``count == 0`` are ignored; the merge of one (non-empty) entry is that entry; if
    every count is 0 the result has count 0 and zero statistics.

    Parameters
    ----------
    moments : sequence of Moments, each with (C,) statistics

    Shape
    -----
    k Moments of (C,) statistics -> one Moments of (C,) statistics.

    Returns
    -------
    Moments

    Raises
    ------
    ValueError
        If ``moments`` is empty, a count is negative or the statistics' shapes differ.
    """
    moments = list(moments)
    if not moments:
        raise NormlabValueError("merge_moments: expected at least one Moments, got an empty "
                         "sequence.")
    shapes = {tuple(m.mean.shape) for m in moments} | {tuple(m.var.shape) for m in moments}
    if len(shapes) != 1:
        raise NormlabValueError(f"merge_moments: expected statistics of one shape (C,), got shapes "
                         f"{sorted(shapes)}.")
    counts = [int(m.count) for m in moments]
    if min(counts) < 0:
        raise NormlabValueError(f"merge_moments: expected counts >= 0, got {counts}.")
    kept = [m for m, n in zip(moments, counts) if n > 0]
    if not kept:
        first = moments[0]
        xp = backend.namespace(first.mean)
        return Moments(xp.zeros_like(first.mean), xp.zeros_like(first.var), 0)
    if len(kept) == 1:
        return Moments(kept[0].mean, kept[0].var, int(kept[0].count))
    total = sum(int(m.count) for m in kept)
    mean = sum(m.mean * int(m.count) for m in kept) / total
    m2 = sum((m.var + (m.mean - mean) ** 2) * int(m.count) for m in kept)
    return Moments(mean, m2 / total, total)
