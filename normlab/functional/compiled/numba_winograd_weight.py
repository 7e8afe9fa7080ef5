"""Compiled (numba) weight transforms of Winograd F(2x2, 3x3) and F(4x4, 3x3).

Each conv call takes the weight into the Winograd domain, ``U = G w G^T`` (forward, and
again for the input gradient), and brings the weight gradient back, ``dw = G^T M G``. As
NumPy expressions over (F, C) planes (``_winograd._transform_weight``,
``_winograd4._transform_weight`` and their ``_weight_from_sum``) these are 20-50 small array
operations: F(4x4) 0.23 / 0.71 / 11.8 ms for 16 / 64 / 256 channels. Here the same
operations run in the NumPy version's order (zero coefficients skipped, a 1 taken as is),
so the results are the same bits, as compiled loops over all F*C filters at once: the 9
taps are first gathered into planes (``_taps``), each step of ``G``/``G^T`` is then one
vectorised loop over a plane, and the gradient's 9 planes are scattered back last
(``_untaps``).

The per-filter blocks these replaced (one straight-line block per 3x3 filter, 16 or 36
strided writes each) slowed down sharply where ``F*C*itemsize`` is a multiple of 4 KiB:
all the filter's writes fell on one L1 set. F(4x4) ``U``, float32, 1 thread, per call,
per-filter -> planes: 16 channels 5.1 -> 5.2 us, 32 101.7 -> 18.3, 64 404 -> 76, 128
1642 -> 359, 256 6722 -> 1470 (ResNet-20 b32 ran 6.1 ms of such transforms per step).
The two tile sizes are written out apart, like the data transforms in
``numba_winograd2`` / ``numba_winograd4``: numba cannot unroll one loop over tuples of
either length.
"""

from __future__ import annotations

import numba
import numpy as np

from normlab.functional import _winograd4
from normlab.functional.dispatch import register

__all__ = ["weight2_transform", "weight2_from_sum", "weight4_transform", "weight4_from_sum"]

PROVIDER = f"numba {numba.__version__}"
_jit = numba.njit(cache=True, nogil=True, fastmath=False)

# Filters per block: the taps, the half-transformed planes and the block's outputs stay
# in L1/L2 between the passes
BLOCK = 512


@_jit
def _taps(w, p0, T):
    """``T[3i + j, q] = w[f, c, i, j]`` for filter ``p0 + q = f*C + c`` (q < T.shape[1]):
    each kernel tap of a block of filters as one plane."""
    C = w.shape[1]
    for q in range(T.shape[1]):
        f, c = divmod(p0 + q, C)
        for i in range(3):
            for j in range(3):
                T[3 * i + j, q] = w[f, c, i, j]


@_jit
def _untaps(D, p0, dw):
    """``dw[f, c, i, j] = D[3i + j, q]`` for filter ``p0 + q = f*C + c``: ``_taps``'s
    inverse, into ``dw`` (F, C, 3, 3)."""
    C = dw.shape[1]
    for q in range(D.shape[1]):
        f, c = divmod(p0 + q, C)
        for i in range(3):
            for j in range(3):
                dw[f, c, i, j] = D[3 * i + j, q]


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
def _weight2_planes(w, U):
    """``U[4a+b, f, c] = (G w[f, c] G^T)[a, b]``: G down the kernel rows (per column),
    then along them, a block of filters at a time."""
    P = w.shape[0] * w.shape[1]
    Uf = U.reshape(16, P)
    T = np.empty((9, min(P, BLOCK)), dtype=w.dtype)
    R = np.empty((4, 3, min(P, BLOCK)), dtype=w.dtype)  # R[a, j]: G down kernel column j
    for p0 in range(0, P, BLOCK):
        n = min(BLOCK, P - p0)
        _taps(w, p0, T[:, :n])
        for j in range(3):
            x0, x1, x2 = T[j], T[3 + j], T[6 + j]
            r0, r1, r2, r3 = R[0, j], R[1, j], R[2, j], R[3, j]
            for q in range(n):
                r0[q], r1[q], r2[q], r3[q] = _f(x0[q], x1[q], x2[q])
        for a in range(4):
            x0, x1, x2 = R[a, 0], R[a, 1], R[a, 2]
            u0, u1 = Uf[4 * a, p0:p0 + n], Uf[4 * a + 1, p0:p0 + n]
            u2, u3 = Uf[4 * a + 2, p0:p0 + n], Uf[4 * a + 3, p0:p0 + n]
            for q in range(n):
                u0[q], u1[q], u2[q], u3[q] = _f(x0[q], x1[q], x2[q])


@_jit
def _weight2_grad_planes(M, dw):
    """``dw[f, c] = G^T M[:, f, c] G`` with ``M[4a+b]`` (M contiguous): G^T down the tile
    rows (per column b), then along them, a block of filters at a time."""
    P = dw.shape[0] * dw.shape[1]
    Mf = M.reshape(16, P)
    R = np.empty((4, 3, min(P, BLOCK)), dtype=dw.dtype)  # R[b, i]: G^T down tile column b
    D = np.empty((9, min(P, BLOCK)), dtype=dw.dtype)  # D[3i + j]
    for p0 in range(0, P, BLOCK):
        n = min(BLOCK, P - p0)
        for b in range(4):
            m0, m1 = Mf[b, p0:p0 + n], Mf[4 + b, p0:p0 + n]
            m2, m3 = Mf[8 + b, p0:p0 + n], Mf[12 + b, p0:p0 + n]
            r0, r1, r2 = R[b, 0], R[b, 1], R[b, 2]
            for q in range(n):
                r0[q], r1[q], r2[q] = _ft(m0[q], m1[q], m2[q], m3[q])
        for i in range(3):
            m0, m1, m2, m3 = R[0, i], R[1, i], R[2, i], R[3, i]
            d0, d1, d2 = D[3 * i], D[3 * i + 1], D[3 * i + 2]
            for q in range(n):
                d0[q], d1[q], d2[q] = _ft(m0[q], m1[q], m2[q], m3[q])
        _untaps(D[:, :n], p0, dw)


def weight2_transform(w, U):
    """``_winograd._transform_weight`` into ``U`` (16, F, C): w (F, C, 3, 3)."""
    _weight2_planes(w, U)


def weight2_from_sum(M, dw):
    """``_winograd._weight_from_sum`` into ``dw`` (F, C, 3, 3): M (16, F, C)."""
    _weight2_grad_planes(np.ascontiguousarray(M), dw)


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
    then along them, a block of filters at a time."""
    P = w.shape[0] * w.shape[1]
    Uf = U.reshape(36, P)
    T = np.empty((9, min(P, BLOCK)), dtype=w.dtype)
    R = np.empty((6, 3, min(P, BLOCK)), dtype=w.dtype)  # R[a, j]: G down kernel column j
    for p0 in range(0, P, BLOCK):
        n = min(BLOCK, P - p0)
        _taps(w, p0, T[:, :n])
        for j in range(3):
            x0, x1, x2 = T[j], T[3 + j], T[6 + j]
            r0, r1, r2, r3, r4, r5 = R[0, j], R[1, j], R[2, j], R[3, j], R[4, j], R[5, j]
            for q in range(n):
                r0[q], r1[q], r2[q], r3[q], r4[q], r5[q] = _g(x0[q], x1[q], x2[q], G)
        for a in range(6):
            x0, x1, x2 = R[a, 0], R[a, 1], R[a, 2]
            u0, u1 = Uf[6 * a, p0:p0 + n], Uf[6 * a + 1, p0:p0 + n]
            u2, u3 = Uf[6 * a + 2, p0:p0 + n], Uf[6 * a + 3, p0:p0 + n]
            u4, u5 = Uf[6 * a + 4, p0:p0 + n], Uf[6 * a + 5, p0:p0 + n]
            for q in range(n):
                u0[q], u1[q], u2[q], u3[q], u4[q], u5[q] = _g(x0[q], x1[q], x2[q], G)


@_jit
def _weight4_grad_planes(M, G, dw):
    """``dw[f, c] = G^T M[:, f, c] G`` with ``M[6a+b]`` (M contiguous): G^T down the tile
    rows (per column b), then along them, a block of filters at a time."""
    P = dw.shape[0] * dw.shape[1]
    Mf = M.reshape(36, P)
    R = np.empty((6, 3, min(P, BLOCK)), dtype=dw.dtype)  # R[b, i]: G^T down tile column b
    D = np.empty((9, min(P, BLOCK)), dtype=dw.dtype)  # D[3i + j]
    for p0 in range(0, P, BLOCK):
        n = min(BLOCK, P - p0)
        for b in range(6):
            m0, m1 = Mf[b, p0:p0 + n], Mf[6 + b, p0:p0 + n]
            m2, m3 = Mf[12 + b, p0:p0 + n], Mf[18 + b, p0:p0 + n]
            m4, m5 = Mf[24 + b, p0:p0 + n], Mf[30 + b, p0:p0 + n]
            r0, r1, r2 = R[b, 0], R[b, 1], R[b, 2]
            for q in range(n):
                r0[q], r1[q], r2[q] = _gt(m0[q], m1[q], m2[q], m3[q], m4[q], m5[q], G)
        for i in range(3):
            m0, m1, m2, m3, m4, m5 = R[0, i], R[1, i], R[2, i], R[3, i], R[4, i], R[5, i]
            d0, d1, d2 = D[3 * i], D[3 * i + 1], D[3 * i + 2]
            for q in range(n):
                d0[q], d1[q], d2[q] = _gt(m0[q], m1[q], m2[q], m3[q], m4[q], m5[q], G)
        _untaps(D[:, :n], p0, dw)


_G = {np.dtype(t): np.array(_winograd4.G, dtype=t) for t in (np.float32, np.float64)}


def weight4_transform(w, U):
    """``_winograd4._transform_weight`` into ``U`` (36, F, C): w (F, C, 3, 3)."""
    _weight4_planes(w, _G[w.dtype], U)


def weight4_from_sum(M, dw):
    """``_winograd4._weight_from_sum`` into ``dw`` (F, C, 3, 3): M (36, F, C)."""
    _weight4_grad_planes(np.ascontiguousarray(M), _G[M.dtype], dw)


register("winograd2_weight", "numpy", weight2_transform)
register("winograd2_weight_grad", "numpy", weight2_from_sum)
register("winograd4_weight", "numpy", weight4_transform)
register("winograd4_weight_grad", "numpy", weight4_from_sum)
