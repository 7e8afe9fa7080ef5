"""Compiled (numba) weight transforms of Winograd F(2x2, 3x3) and F(4x4, 3x3).

Each conv call takes the weight into the Winograd domain, ``U = G w G^T`` (forward, and
again for the input gradient), and brings the weight gradient back, ``dw = G^T M G``. As
NumPy expressions over (F, C) planes (``_winograd._transform_weight``,
``_winograd4._transform_weight`` and their ``_weight_from_sum``) these are 20-50 small array
operations: F(4x4) 0.23 / 0.71 / 11.8 ms for 16 / 64 / 256 channels. Here each 3x3 filter
is one straight-line block with the NumPy version's operations in its order (zero
coefficients skipped, a 1 taken as is), so the results are the same bits. The two tile
sizes are written out apart, like the data transforms in ``numba_winograd2`` /
``numba_winograd4``: numba cannot unroll one loop over tuples of either length.
"""

from __future__ import annotations

import numba
import numpy as np

from normlab.functional import _winograd4
from normlab.functional.dispatch import register

__all__ = ["weight2_transform", "weight2_from_sum", "weight4_transform", "weight4_from_sum"]

PROVIDER = f"numba {numba.__version__}"
_jit = numba.njit(cache=True, nogil=True, fastmath=False)


# ---------------------------------------------------------------- F(2x2, 3x3)
_half = np.float32(0.5)  # exact in both precisions


@_jit
def _f(x0, x1, x2):
    """``G x`` of one 3-vector, G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]."""
    return x0, ((x0 + x1) + x2) * _half, ((x0 - x1) + x2) * _half, x2


@_jit
def _ft(m0, m1, m2, m3):
    """``G^T m`` of one 4-vector."""
    return m0 + (m1 + m2) * _half, (m1 - m2) * _half, (m1 + m2) * _half + m3


@_jit
def weight2_transform(w, U):
    """``_winograd._transform_weight`` into ``U`` (16, F, C), w (F, C, 3, 3):
    ``U[4a+b, f, c] = (G w[f, c] G^T)[a, b]``, G down the kernel rows, then along them."""
    F, C = w.shape[0], w.shape[1]
    for f in range(F):
        for c in range(C):
            g = w[f, c]
            c0 = _f(g[0, 0], g[1, 0], g[2, 0])
            c1 = _f(g[0, 1], g[1, 1], g[2, 1])
            c2 = _f(g[0, 2], g[1, 2], g[2, 2])
            for a in range(4):
                u = _f(c0[a], c1[a], c2[a])
                for b in range(4):
                    U[4 * a + b, f, c] = u[b]


@_jit
def weight2_from_sum(M, dw):
    """``_winograd._weight_from_sum`` into ``dw`` (F, C, 3, 3), M (16, F, C):
    ``dw[f, c] = G^T M[:, f, c] G`` with ``M[4a+b]``, G^T down, then along the rows."""
    F, C = dw.shape[0], dw.shape[1]
    r = np.empty((4, 3), dtype=dw.dtype)  # r[b, i]
    for f in range(F):
        for c in range(C):
            for b in range(4):
                r[b, 0], r[b, 1], r[b, 2] = _ft(M[b, f, c], M[4 + b, f, c], M[8 + b, f, c],
                                                M[12 + b, f, c])
            for i in range(3):
                dw[f, c, i, 0], dw[f, c, i, 1], dw[f, c, i, 2] = _ft(r[0, i], r[1, i],
                                                                     r[2, i], r[3, i])


# ---------------------------------------------------------------- F(4x4, 3x3)
# ``G`` comes in the data's dtype: 1/6 has no exact float32 value, and a float64 literal
# would promote float32 data.


@_jit
def _g(x0, x1, x2, G):
    """``G x`` of one 3-vector."""
    return (x0 * G[0, 0], (x0 * G[1, 0] + x1 * G[1, 1]) + x2 * G[1, 2],
            (x0 * G[2, 0] + x1 * G[2, 1]) + x2 * G[2, 2],
            (x0 * G[3, 0] + x1 * G[3, 1]) + x2 * G[3, 2],
            (x0 * G[4, 0] + x1 * G[4, 1]) + x2 * G[4, 2], x2)


@_jit
def _gt(m0, m1, m2, m3, m4, m5, G):
    """``G^T m`` of one 6-vector."""
    return ((((m0 * G[0, 0] + m1 * G[1, 0]) + m2 * G[2, 0]) + m3 * G[3, 0]) + m4 * G[4, 0],
            ((m1 * G[1, 1] + m2 * G[2, 1]) + m3 * G[3, 1]) + m4 * G[4, 1],
            (((m1 * G[1, 2] + m2 * G[2, 2]) + m3 * G[3, 2]) + m4 * G[4, 2]) + m5)


@_jit
def _weight4_planes(w, G, U):
    """``U[6a+b, f, c] = (G w[f, c] G^T)[a, b]``: G down the kernel rows (per column),
    then along them."""
    F, C = w.shape[0], w.shape[1]
    for f in range(F):
        for c in range(C):
            g = w[f, c]
            c0 = _g(g[0, 0], g[1, 0], g[2, 0], G)
            c1 = _g(g[0, 1], g[1, 1], g[2, 1], G)
            c2 = _g(g[0, 2], g[1, 2], g[2, 2], G)
            for a in range(6):
                u = _g(c0[a], c1[a], c2[a], G)
                for b in range(6):
                    U[6 * a + b, f, c] = u[b]


@_jit
def _weight4_grad_planes(M, G, dw):
    """``dw[f, c] = G^T M[:, f, c] G`` with ``M[6a+b]``: G^T down the tile rows (per
    column b), then along them."""
    F, C = dw.shape[0], dw.shape[1]
    r = np.empty((6, 3), dtype=dw.dtype)  # r[b, i]
    for f in range(F):
        for c in range(C):
            for b in range(6):
                r[b, 0], r[b, 1], r[b, 2] = _gt(M[b, f, c], M[6 + b, f, c], M[12 + b, f, c],
                                                M[18 + b, f, c], M[24 + b, f, c],
                                                M[30 + b, f, c], G)
            for i in range(3):
                dw[f, c, i, 0], dw[f, c, i, 1], dw[f, c, i, 2] = _gt(
                    r[0, i], r[1, i], r[2, i], r[3, i], r[4, i], r[5, i], G)


_G = {np.dtype(t): np.array(_winograd4.G, dtype=t) for t in (np.float32, np.float64)}


def weight4_transform(w, U):
    """``_winograd4._transform_weight`` into ``U`` (36, F, C): w (F, C, 3, 3)."""
    _weight4_planes(w, _G[w.dtype], U)


def weight4_from_sum(M, dw):
    """``_winograd4._weight_from_sum`` into ``dw`` (F, C, 3, 3): M (36, F, C)."""
    _weight4_grad_planes(M, _G[M.dtype], dw)


register("winograd2_weight", "numpy", weight2_transform)
register("winograd2_weight_grad", "numpy", weight2_from_sum)
register("winograd4_weight", "numpy", weight4_transform)
register("winograd4_weight_grad", "numpy", weight4_from_sum)
