"""The rows of batch norm's compiled kernels (``numba_bn``), one definition each: loops
over the ``B`` values of one sample and channel, inlined into the stage kernels and the
channel-by-channel ones alike, so both sum in one order; and the per-channel float64
scalars between the channel-by-channel kernels' stages.

Module-level functions: a kernel that captures a jitted function from a closure is not
cacheable (every process compiled ``numba_bn``'s kernels again, 1.7-2 s).
"""

from __future__ import annotations

import math

import numba

# One row of batch norm's dx = k * (dy - shift - (x - mean) * slope), slope = inv_std *
# sum(dy x_hat) / m, inlined into the dx kernels of ``numba_bn._build``. The in-place ones
# (dx over dy) pass dy's row once, as both: numba then sees one array; two aliasing
# arguments would send the loop to its scalar version (see
# numba_elementwise._channel_affine_inplace).
_row = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz", "arcp"}, inline="always")


@_row
def _dx_row(dy, x, dx, mu, kc, sc, pc):  # (B,) rows of one sample and channel
    for b in range(dy.shape[0]):
        dx[b] = kc * (dy[b] - sc - (x[b] - mu) * pc)


# The other rows of one sample and channel, shared by the stage kernels and the
# channel-by-channel ones (``forward``, ``backward``): one definition of each sum's order.
@_row
def _sum_dev(x, sh):  # sum(x - sh), in float64
    s = 0.0
    for b in range(x.shape[0]):
        s += x[b] - sh
    return s


@_row
def _sum_sq_dev(x, mu):  # sum((x - mu)^2), in float64
    s = 0.0
    for b in range(x.shape[0]):
        d = x[b] - mu
        s += d * d
    return s


@_row
def _grad_sums_row(dy, x, mu):  # (sum(dy), sum(dy * (x - mu))), in float64
    s = 0.0
    t = 0.0
    for b in range(dy.shape[0]):
        g = dy[b]
        s += g
        t += g * (x[b] - mu)
    return s, t


@_row
def _normalize_row(x, r, o, mu, k, bt, add, relu, zero):
    """``o = (x - mu) * k + bt`` rounded to o's dtype; then, while the row is in cache,
    ``+ r`` and ReLU in o's dtype (``functional.fused``)."""
    for b in range(x.shape[0]):
        o[b] = (x[b] - mu) * k + bt
    if add or relu:
        for b in range(x.shape[0]):
            v = o[b] + r[b] if add else o[b]
            o[b] = v if not relu or v > zero or v != v else zero


@_row
def _dx_row_2d(dy, x, dx, mean, k, shift, slope):  # (C,) rows of one sample
    for c in range(dy.shape[0]):
        dx[c] = k[c] * (dy[c] - shift[c] - (x[c] - mean[c]) * slope[c])


# Per-channel float64 scalars between a fused kernel's stages, without the kernels'
# fast-math flags (which allow a / b -> a * (1 / b)): the same IEEE operations NumPy does
# on the (C,) vectors between the staged kernels, so the fused kernels give their bits.
_strict = numba.njit(cache=True, nogil=True, fastmath=False)


@_strict
def _inv_std(var, eps):  # 1 / sqrt(var + eps), as ``_forward_from_moments``
    return 1.0 / math.sqrt(var + eps)


@_strict
def _times(a, b):
    return a * b


@_strict
def _coefficients(sum_dy, sum_dyx, inv_std, count, shift, slope, c):
    """``shift = sum_dy / count``, ``slope = sum_dyx / count * inv_std`` at channel c."""
    shift[c] = sum_dy[c] / count
    slope[c] = sum_dyx[c] / count * inv_std[c]
