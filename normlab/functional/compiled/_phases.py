"""Tile rows and column phases: the F(4x4) output and dout transforms' scatter and gather
as flat loops.

Those transforms write (or read) position ``(4th + i, 4tw + j)``, i, j < 4, of an image for
every tile ``(th, tw)`` of a run. Done tile by tile, each position is a scalar store (or
load) through a stride-4 index: 1024 per 32x32 plane. Instead the image rows of a run go
through a scratch ``rows`` (``4*TW`` wide) laid out *row-block-major*: row ``4th + i`` of
sample ``s`` of the run at row ``(i*ns + s)*TH + th`` (``block_row``). For each ``i`` the
rows of the run's tiles then follow one another in tile order, so column phase ``j`` of
all of them, ``P[j][k] = rows[4k + j]`` (``split``), is one flat strided loop, which numba
vectorises (shuffles; ~15-20 elements per ns in L1), and ``P[j][i*L + u]`` is position
``(i, j)`` of tile ``u`` of the run; ``merge`` is the way back. The rows move between the
image and ``rows`` with ``row_in`` / ``row_out``, vectorised copies.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["block_row", "row_in", "row_out", "split", "merge"]

_jit = numba.njit(cache=True, nogil=True, fastmath=False)


@_jit
def block_row(i, s, th, ns, TH):
    """Row of ``rows`` holding image row ``4th + i`` of sample ``s`` of a run of ``ns``."""
    return (i * ns + s) * TH + th


@_jit
def row_in(src, r, c, dst, d, n):
    """``dst[d:d + n] = src[r, c:c + n]`` (``src`` 2D, ``dst`` 1D, all indices >= 0).

    The spans are indexed, not sliced: a view made per row costs its reference count
    (two calls into numba's runtime, ~6 ns), as much as copying a 32-element row. The
    indices are unsigned so numba drops its negative-index wraparound, which keeps the
    loop from vectorising (measured 3x slower)."""
    r, c, d = np.uint64(r), np.uint64(c), np.uint64(d)
    for k in range(np.uint64(n)):
        dst[d + k] = src[r, c + k]


@_jit
def row_out(src, s, dst, r, c, n):
    """``dst[r, c:c + n] = src[s:s + n]`` (``row_in`` the other way)."""
    s, r, c = np.uint64(s), np.uint64(r), np.uint64(c)
    for k in range(np.uint64(n)):
        dst[r, c + k] = src[s + k]


@_jit
def split(rows, P, n):
    """``P[j, k] = rows[4k + j]`` for ``k < n``, ``j < 4``."""
    p0, p1, p2, p3 = P[0], P[1], P[2], P[3]
    for k in range(n):
        p0[k], p1[k] = rows[4 * k], rows[4 * k + 1]
        p2[k], p3[k] = rows[4 * k + 2], rows[4 * k + 3]


@_jit
def merge(P, rows, n):
    """``rows[4k + j] = P[j, k]`` for ``k < n``, ``j < 4`` (``split``'s inverse)."""
    p0, p1, p2, p3 = P[0], P[1], P[2], P[3]
    for k in range(n):
        rows[4 * k], rows[4 * k + 1] = p0[k], p1[k]
        rows[4 * k + 2], rows[4 * k + 3] = p2[k], p3[k]
