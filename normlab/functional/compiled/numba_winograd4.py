"""Compiled (numba) transforms of Winograd F(4x4, 3x3), see ``_winograd4.py``.

Each kernel computes the same linear combinations as the NumPy version in
``_winograd4.py`` (rows first, then columns; the sums may be grouped differently, so
float results can differ in the last bit: both are tested against the loop reference).
Like ``numba_conv.winograd_input`` they write a few output planes per inner loop:
interleaving all 36 planes' write streams thrashes L1.
"""

from __future__ import annotations

import numba
import numpy as np

from normlab.functional.compiled._threads import over_batch
from normlab.functional.dispatch import register

__all__ = ["input_transform", "output_transform", "dout_transform"]

PROVIDER = f"numba {numba.__version__}"
_jit = numba.njit(cache=True, nogil=True, fastmath=False)

# float32 constants (exact in both precisions): a float64 literal would promote float32
# data to float64 inside the loops
_2, _4, _5, _8 = np.float32(2.0), np.float32(4.0), np.float32(5.0), np.float32(8.0)


@_jit
def _bt(d0, d1, d2, d3, d4, d5):
    """``B^T d`` of one 6-vector."""
    return (_4 * d0 - _5 * d2 + d4, d3 + d4 - _4 * (d1 + d2), _4 * (d1 - d2) + d4 - d3,
            _2 * (d3 - d1) + d4 - d2, _2 * (d1 - d3) + d4 - d2, _4 * d1 - _5 * d3 + d5)


@_jit
def _at(m0, m1, m2, m3, m4, m5):
    """``A^T m`` of one 6-vector."""
    p, q = m1 + m2, m1 - m2
    r, s = m3 + m4, m3 - m4
    return m0 + p + r, q + _2 * s, p + _4 * r, q + _8 * s + m5


@_jit
def _a(e0, e1, e2, e3):
    """``A e`` of one 4-vector (A = (A^T)^T, 6x4)."""
    p, q = e0 + e2, e1 + e3
    r, s = e0 + _4 * e2, _2 * e1 + _8 * e3
    return e0, p + q, p - q, r + s, r - s, e3


@_jit
def input_transform(x, ph, pw, V):
    """``V[6a+b, n, c, th, tw] = (B^T d B)[a, b]``, ``d = xt[n, c, 4th:4th+6, 4tw:4tw+6]``
    with ``xt = _winograd4._tile_pad(x, (ph, pw), TH, TW)``, built per image in a small
    scratch buffer instead of a padded copy of the chunk."""
    _, N, C, TH, TW = V.shape
    H, W = x.shape[2], x.shape[3]
    Ht, Wt = 4 * TH + 2, 4 * TW + 2
    sh, sw = max(0, -ph), max(0, -pw)  # first source row/column used
    dh, dw = max(0, ph), max(0, pw)  # where it lands
    h, w = min(H - sh, Ht - dh), min(W - sw, Wt - dw)
    xs = np.zeros((Ht, Wt), dtype=V.dtype)
    t = np.empty((6, TH, Wt), dtype=V.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(h):
                for j in range(w):
                    xs[dh + i, dw + j] = x[n, c, sh + i, sw + j]
            for th in range(TH):  # B^T down whole image columns
                for q in range(Wt):
                    t[0, th, q], t[1, th, q], t[2, th, q], t[3, th, q], t[4, th, q], \
                        t[5, th, q] = _bt(xs[4 * th, q], xs[4 * th + 1, q], xs[4 * th + 2, q],
                                          xs[4 * th + 3, q], xs[4 * th + 4, q],
                                          xs[4 * th + 5, q])
            for a in range(6):  # then B along the tile rows, 6 planes at a time
                v0, v1, v2 = V[6 * a, n, c], V[6 * a + 1, n, c], V[6 * a + 2, n, c]
                v3, v4, v5 = V[6 * a + 3, n, c], V[6 * a + 4, n, c], V[6 * a + 5, n, c]
                ta = t[a]
                for th in range(TH):
                    for tw in range(TW):
                        q = 4 * tw
                        v0[th, tw], v1[th, tw], v2[th, tw], v3[th, tw], v4[th, tw], \
                            v5[th, tw] = _bt(ta[th, q], ta[th, q + 1], ta[th, q + 2],
                                             ta[th, q + 3], ta[th, q + 4], ta[th, q + 5])


@_jit
def output_transform(M, out):
    """``out[n, f, 4th+i, 4tw+j] = (A^T M A)[i, j]``; ``M`` (36, n, F, TH, TW)."""
    _, N, F, TH, TW = M.shape
    s = np.empty((4, 6, TH, TW), dtype=out.dtype)
    for n in range(N):
        for f in range(F):
            for b in range(6):  # A^T down the tile rows, 6 read streams at a time
                m0, m1, m2 = M[b, n, f], M[6 + b, n, f], M[12 + b, n, f]
                m3, m4, m5 = M[18 + b, n, f], M[24 + b, n, f], M[30 + b, n, f]
                for th in range(TH):
                    for tw in range(TW):
                        s[0, b, th, tw], s[1, b, th, tw], s[2, b, th, tw], s[3, b, th, tw] = _at(
                            m0[th, tw], m1[th, tw], m2[th, tw], m3[th, tw], m4[th, tw],
                            m5[th, tw])
            o = out[n, f]
            for th in range(TH):  # then A along each output row: 4 adjacent pixels
                for i in range(4):
                    si, r = s[i], o[4 * th + i]
                    for tw in range(TW):
                        r[4 * tw], r[4 * tw + 1], r[4 * tw + 2], r[4 * tw + 3] = _at(
                            si[0, th, tw], si[1, th, tw], si[2, th, tw], si[3, th, tw],
                            si[4, th, tw], si[5, th, tw])


@_jit
def dout_transform(d, D):
    """``D[6a+b, n, f, th, tw] = (A dY A^T)[a, b]`` of the 4x4 block
    ``dY = d[n, f, 4th:4th+4, 4tw:4tw+4]``; ``d`` (n, F, 4TH, 4TW) zero-extended."""
    _, N, F, TH, TW = D.shape
    W4 = d.shape[3]
    t = np.empty((6, TH, W4), dtype=D.dtype)
    for n in range(N):
        for f in range(F):
            x = d[n, f]
            for th in range(TH):  # A down the rows
                for q in range(W4):
                    t[0, th, q], t[1, th, q], t[2, th, q], t[3, th, q], t[4, th, q], \
                        t[5, th, q] = _a(x[4 * th, q], x[4 * th + 1, q], x[4 * th + 2, q],
                                         x[4 * th + 3, q])
            for a in range(6):  # then along the columns
                v0, v1, v2 = D[6 * a, n, f], D[6 * a + 1, n, f], D[6 * a + 2, n, f]
                v3, v4, v5 = D[6 * a + 3, n, f], D[6 * a + 4, n, f], D[6 * a + 5, n, f]
                ta = t[a]
                for th in range(TH):
                    for tw in range(TW):
                        q = 4 * tw
                        v0[th, tw], v1[th, tw], v2[th, tw], v3[th, tw], v4[th, tw], \
                            v5[th, tw] = _a(ta[th, q], ta[th, q + 1], ta[th, q + 2],
                                            ta[th, q + 3])


# batch-parallel (``_threads.over_batch``): V, M and D hold the batch on axis 1
register("winograd4_input", "numpy", over_batch(input_transform, (0, None, None, 1)))
register("winograd4_output", "numpy", over_batch(output_transform, (1, 0)))
register("winograd4_dout", "numpy", over_batch(dout_transform, (0, 1)))
