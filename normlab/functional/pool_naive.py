"""Pooling written as loops over output positions: the readable reference for ``pool.py``.

Each output value looks at its own window of the padded input. Max pooling remembers
WHERE the maximum was: the first position in row-major window order whose value is
strictly greater than everything before it (ties keep the earlier one, PyTorch's CPU
rule), and backward sends the whole window gradient there. Average pooling divides by
``KH*KW`` whatever the padding (``count_include_pad=True``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from normlab import backend
from normlab.errors import NormlabValueError
from normlab.functional._spatial import as_tuple, check_input, pool_args

__all__ = ["max_pool1d_forward_naive", "max_pool1d_backward_naive",
           "max_pool2d_forward_naive", "max_pool2d_backward_naive",
           "avg_pool1d_forward_naive", "avg_pool1d_backward_naive",
           "avg_pool2d_forward_naive", "avg_pool2d_backward_naive",
           "adaptive_avg_pool2d_forward_naive", "adaptive_avg_pool2d_backward_naive"]


class PoolNaiveCache(NamedTuple):
    x: object
    kernel: tuple
    stride: tuple
    padding: tuple
    argmax: object  # max pool: (N, C, OH, OW, 2) padded-input row/col of each maximum


def max_pool2d_forward_naive(x, kernel_size, stride=None, padding=0):
    """Loop reference for ``max_pool2d_forward``."""
    (KH, KW), s, p, (OH, OW) = pool_args(x, kernel_size, stride, padding, 2,
                                         "max_pool2d_forward_naive")
    xp = backend.namespace(x)
    N, C, H, W = x.shape
    xpad = xp.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=-math.inf)
    out = xp.zeros((N, C, OH, OW), dtype=x.dtype)
    argmax = xp.zeros((N, C, OH, OW, 2), dtype=xp.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    best, where = None, None
                    for i in range(KH):
                        for j in range(KW):
                            r, q = oh * s[0] + i, ow * s[1] + j
                            v = xpad[n, c, r, q]
                            if best is None or v > best or v != v:  # NaN wins, like torch
                                best, where = v, (r, q)
                    out[n, c, oh, ow] = best
                    argmax[n, c, oh, ow] = where
    return out, PoolNaiveCache(x, (KH, KW), s, p, argmax)


def max_pool2d_backward_naive(dout, cache: PoolNaiveCache):
    """Loop reference for ``max_pool2d_backward``: each ``dout`` value goes to its argmax."""
    x, _, _, p, argmax = cache
    xp = backend.namespace(dout)
    N, C, H, W = x.shape
    OH, OW = dout.shape[2:]
    dxpad = xp.zeros((N, C, H + 2 * p[0], W + 2 * p[1]), dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    r, q = (int(v) for v in argmax[n, c, oh, ow])
                    dxpad[n, c, r, q] += dout[n, c, oh, ow]
    return dxpad[:, :, p[0]:p[0] + H, p[1]:p[1] + W].copy()


def avg_pool2d_forward_naive(x, kernel_size, stride=None, padding=0):
    """Loop reference for ``avg_pool2d_forward``."""
    (KH, KW), s, p, (OH, OW) = pool_args(x, kernel_size, stride, padding, 2,
                                         "avg_pool2d_forward_naive")
    xp = backend.namespace(x)
    N, C, H, W = x.shape
    xpad = xp.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    out = xp.zeros((N, C, OH, OW), dtype=x.dtype)
    for oh in range(OH):
        for ow in range(OW):
            r, q = oh * s[0], ow * s[1]
            out[:, :, oh, ow] = xpad[:, :, r:r + KH, q:q + KW].sum(axis=(2, 3)) / (KH * KW)
    return out, PoolNaiveCache(x, (KH, KW), s, p, None)


def avg_pool2d_backward_naive(dout, cache: PoolNaiveCache):
    """Loop reference for ``avg_pool2d_backward``: every window member gets ``1/(KH*KW)``."""
    x, (KH, KW), s, p, _ = cache
    xp = backend.namespace(dout)
    N, C, H, W = x.shape
    OH, OW = dout.shape[2:]
    dxpad = xp.zeros((N, C, H + 2 * p[0], W + 2 * p[1]), dtype=dout.dtype)
    for oh in range(OH):
        for ow in range(OW):
            r, q = oh * s[0], ow * s[1]
            dxpad[:, :, r:r + KH, q:q + KW] += dout[:, :, oh, ow, None, None] / (KH * KW)
    return dxpad[:, :, p[0]:p[0] + H, p[1]:p[1] + W].copy()


def _on_h1(forward2d, x, kernel_size, stride, padding, owner):
    """A 2D loop reference run on the ``H = 1`` view of (N, C, L), back to (N, C, OL)."""
    k, s, p, _ = pool_args(x, kernel_size, stride, padding, 1, owner)
    out, cache = forward2d(x[:, :, None, :], (1,) + k, (1,) + s, (0,) + p)
    return out[:, :, 0, :], cache


def max_pool1d_forward_naive(x, kernel_size, stride=None, padding=0):
    """Loop reference for ``max_pool1d_forward`` (the 2D loops on ``H = 1``)."""
    return _on_h1(max_pool2d_forward_naive, x, kernel_size, stride, padding,
                  "max_pool1d_forward_naive")


def max_pool1d_backward_naive(dout, cache: PoolNaiveCache):
    """Loop reference for ``max_pool1d_backward``."""
    return max_pool2d_backward_naive(dout[:, :, None, :], cache)[:, :, 0, :]


def avg_pool1d_forward_naive(x, kernel_size, stride=None, padding=0):
    """Loop reference for ``avg_pool1d_forward``."""
    return _on_h1(avg_pool2d_forward_naive, x, kernel_size, stride, padding,
                  "avg_pool1d_forward_naive")


def avg_pool1d_backward_naive(dout, cache: PoolNaiveCache):
    """Loop reference for ``avg_pool1d_backward``."""
    return avg_pool2d_backward_naive(dout[:, :, None, :], cache)[:, :, 0, :]


def _bin(i: int, size: int, out: int) -> slice:
    """PyTorch's adaptive bin ``[floor(i*size/out), ceil((i+1)*size/out))``."""
    return slice((i * size) // out, -((-(i + 1) * size) // out))


def adaptive_avg_pool2d_forward_naive(x, output_size):
    """Loop reference for ``adaptive_avg_pool2d_forward``: one mean per output bin."""
    owner = "adaptive_avg_pool2d_forward_naive"
    check_input(x, 2, owner)
    N, C, H, W = x.shape
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = (H if output_size[0] is None else output_size[0],
                       W if output_size[1] is None else output_size[1])
    OH, OW = as_tuple(output_size, 2, "output_size", owner)
    if OH <= 0 or OW <= 0:
        raise NormlabValueError(f"{owner}: expected positive output_size, got {(OH, OW)}.")
    xp = backend.namespace(x)
    out = xp.zeros((N, C, OH, OW), dtype=x.dtype)
    for i in range(OH):
        for j in range(OW):
            out[:, :, i, j] = x[:, :, _bin(i, H, OH), _bin(j, W, OW)].mean(axis=(2, 3))
    return out, PoolNaiveCache(x, (OH, OW), None, None, None)


def adaptive_avg_pool2d_backward_naive(dout, cache: PoolNaiveCache):
    """Loop reference for ``adaptive_avg_pool2d_backward``."""
    x, (OH, OW), _, _, _ = cache
    xp = backend.namespace(dout)
    N, C, H, W = x.shape
    dx = xp.zeros(x.shape, dtype=dout.dtype)
    for i in range(OH):
        for j in range(OW):
            rows, cols = _bin(i, H, OH), _bin(j, W, OW)
            count = (rows.stop - rows.start) * (cols.stop - cols.start)
            dx[:, :, rows, cols] += dout[:, :, i, j, None, None] / count
    return dx
