"""Compiled (numba) transforms of Winograd F(2x2, 3x3) over whole tile planes.

Same maths and the same operations in the same order as the NumPy versions in
``_winograd.py`` / ``_winograd_backward.py`` (bit-identical; the tests compare them),
organised like ``numba_winograd4``: each transform's arithmetic is one loop over a
contiguous run of tiles, which numba vectorises, and the interleaving between tiles and
image rows is a separate copy. The library's V, M, D and dV buffers are channel-major
(16, C, n, TH, TW) viewed as (16, n, C, TH, TW): for one channel the tiles of all ``n``
samples of a chunk lie side by side, so the run is ``n*TH*TW`` tiles long (``_planes.runs``),
not the 16 of one 8x8 image that made per-tile loops slow on ResNet-20's 64-channel
layers. Per 16-sample chunk of that layer (1 thread, CPU time, best of 9, contended),
per-image loops -> these: input 0.307-0.310 -> 0.134 ms, output 0.074-0.083 -> 0.055,
dout 0.237-0.259 -> 0.060-0.071 (16 write streams in one loop did not vectorise: 0.84;
hence 4 planes in and 4 out per loop). The input gradient's adjoint stays the per-image
loop in ``numba_conv``: a plane version measured no faster (0.149-0.157 vs 0.145-0.147
ms: its overlap-add into the image is the same scalar loop, plus 16 planes through
memory).
"""

from __future__ import annotations

import numba
import numpy as np

from normlab.functional.compiled._pad import pad_into
from normlab.functional.compiled._planes import UNLIMITED, read_planes, runs, write_planes
from normlab.functional.compiled._threads import over_batch
from normlab.functional.dispatch import register

__all__ = ["input_transform", "output_transform", "dout_transform"]

PROVIDER = f"numba {numba.__version__}"
_jit = numba.njit(cache=True, nogil=True, fastmath=False)


@_jit
def _a_t(m0, m1, m2, m3):
    """``A^T m`` of one 4-vector, in ``_winograd._output_transform``'s operation order."""
    return (m0 + m1) + m2, (m1 - m2) - m3


@_jit
def _output_planes(flat, sk, sn, sf, G, L, TH, TW, out):
    """``out[n, f, 2th+i, 2tw+j] = (A^T M A)[i, j]``, plane ``M[k, n, f]`` at
    ``flat[k*sk + n*sn + f*sf:][:TH*TW]``: A^T along and down the tiles in one loop over a
    run of ``L`` tiles into ``Y[2i + j]``, then ``Y`` interleaved into the image rows."""
    F = out.shape[1]
    T = TH * TW
    Y = np.empty((4, L), dtype=out.dtype)
    y0, y1, y2, y3 = Y[0], Y[1], Y[2], Y[3]
    for f in range(F):
        for g in range(G):
            o = g * sn + f * sf
            m0, m1, m2, m3 = flat[o:o + L], flat[o + sk:][:L], flat[o + 2 * sk:][:L], \
                flat[o + 3 * sk:][:L]
            m4, m5, m6, m7 = flat[o + 4 * sk:][:L], flat[o + 5 * sk:][:L], \
                flat[o + 6 * sk:][:L], flat[o + 7 * sk:][:L]
            m8, m9, m10, m11 = flat[o + 8 * sk:][:L], flat[o + 9 * sk:][:L], \
                flat[o + 10 * sk:][:L], flat[o + 11 * sk:][:L]
            m12, m13, m14, m15 = flat[o + 12 * sk:][:L], flat[o + 13 * sk:][:L], \
                flat[o + 14 * sk:][:L], flat[o + 15 * sk:][:L]
            for u in range(L):
                s00, s01 = _a_t(m0[u], m1[u], m2[u], m3[u])
                s10, s11 = _a_t(m4[u], m5[u], m6[u], m7[u])
                s20, s21 = _a_t(m8[u], m9[u], m10[u], m11[u])
                s30, s31 = _a_t(m12[u], m13[u], m14[u], m15[u])
                y0[u], y2[u] = _a_t(s00, s10, s20, s30)
                y1[u], y3[u] = _a_t(s01, s11, s21, s31)
            for s in range(L // T):  # sample g + s of the run
                p = out[g + s, f]
                for th in range(TH):
                    ra, rb = p[2 * th], p[2 * th + 1]
                    for tw in range(TW):
                        u = s * T + th * TW + tw
                        ra[2 * tw], ra[2 * tw + 1] = y0[u], y1[u]
                        rb[2 * tw], rb[2 * tw + 1] = y2[u], y3[u]


def output_transform(M, out):
    """``out[n, f, 2th+i, 2tw+j] = (A^T M A)[i, j]``; ``M`` (16, n, F, TH, TW)."""
    if M.size == 0:
        return
    read_planes(M, lambda root, P: _output_entry(root, P, out))


@_jit
def _output_entry(root, M, out):
    ok, flat, sk, sn, sf, G, L = runs(root, M, UNLIMITED)
    if ok:
        _output_planes(flat, sk, sn, sf, G, L, M.shape[3], M.shape[4], out)
    return ok


@_jit
def _dout_planes(d, flat, sk, sn, sf, G, L, TH, TW):
    """``D[4a+b, n, f] = (A dY A^T)[a, b]`` per 2x2 block of ``d[n, f]``, plane
    ``D[k, n, f]`` at ``flat[k*sk + n*sn + f*sf:][:TH*TW]``: the 4 block positions gathered
    into ``Y[2i + j]`` first, then A down and along them in one loop over the run."""
    F = d.shape[1]
    T = TH * TW
    Y = np.empty((4, L), dtype=d.dtype)
    y0, y1, y2, y3 = Y[0], Y[1], Y[2], Y[3]
    for f in range(F):
        for g in range(G):
            for s in range(L // T):
                p = d[g + s, f]
                for th in range(TH):
                    ra, rb = p[2 * th], p[2 * th + 1]
                    for tw in range(TW):
                        u = s * T + th * TW + tw
                        y0[u], y1[u] = ra[2 * tw], ra[2 * tw + 1]
                        y2[u], y3[u] = rb[2 * tw], rb[2 * tw + 1]
            o = g * sn + f * sf
            v0, v1, v2, v3 = flat[o:o + L], flat[o + sk:][:L], flat[o + 2 * sk:][:L], \
                flat[o + 3 * sk:][:L]
            v4, v5, v6, v7 = flat[o + 4 * sk:][:L], flat[o + 5 * sk:][:L], \
                flat[o + 6 * sk:][:L], flat[o + 7 * sk:][:L]
            v8, v9, v10, v11 = flat[o + 8 * sk:][:L], flat[o + 9 * sk:][:L], \
                flat[o + 10 * sk:][:L], flat[o + 11 * sk:][:L]
            v12, v13, v14, v15 = flat[o + 12 * sk:][:L], flat[o + 13 * sk:][:L], \
                flat[o + 14 * sk:][:L], flat[o + 15 * sk:][:L]
            # A = [[1, 0], [1, 1], [1, -1], [0, -1]] down the rows (t_a = (c0, c1)), then
            # along them; one loop per row a of 4 planes (16 write streams in one loop
            # did not vectorise)
            for u in range(L):
                t0, t1 = y0[u], y1[u]
                v0[u], v1[u], v2[u], v3[u] = t0, t0 + t1, t0 - t1, -t1
            for u in range(L):
                t0, t1 = y0[u] + y2[u], y1[u] + y3[u]
                v4[u], v5[u], v6[u], v7[u] = t0, t0 + t1, t0 - t1, -t1
            for u in range(L):
                t0, t1 = y0[u] - y2[u], y1[u] - y3[u]
                v8[u], v9[u], v10[u], v11[u] = t0, t0 + t1, t0 - t1, -t1
            for u in range(L):
                t0, t1 = -y2[u], -y3[u]
                v12[u], v13[u], v14[u], v15[u] = t0, t0 + t1, t0 - t1, -t1


def dout_transform(d, D):
    """``D[4a+b, n, f, th, tw] = (A dY A^T)[a, b]`` of the 2x2 block
    ``d[n, f, 2th:2th+2, 2tw:2tw+2]``; ``d`` (n, F, 2TH, 2TW) zero-extended."""
    if D.size == 0:
        return
    write_planes(D, lambda root, P: _dout_entry(root, P, d))


@_jit
def _dout_entry(root, D, d):
    ok, flat, sk, sn, sf, G, L = runs(root, D, UNLIMITED)
    if ok:
        _dout_planes(d, flat, sk, sn, sf, G, L, D.shape[3], D.shape[4])
    return ok


@_jit
def _b_t(e0, e1, e2, e3):
    """``B^T e`` of one 4-vector, in ``_winograd._input_transform``'s operation order."""
    return e0 - e2, e1 + e2, e2 - e1, e1 - e3


@_jit
def _input_planes(x, ph, pw, flat, sk, sn, sc, G, L, TH, TW):
    """``V[4a+b, n, c] = (B^T d B)[a, b]`` per 4x4 tile ``d`` of ``_winograd._tile_pad(x,
    (ph, pw), TH, TW)[n, c]``, plane ``V[k, n, c]`` at ``flat[k*sk + n*sn + c*sc:][:TH*TW]``:
    each image is padded into a small scratch image and its 16 tile positions gathered
    into ``Y[4i + j]``; then B^T down the tile columns and along the rows, 4 planes in and
    4 out per loop over the run."""
    C = x.shape[1]
    T = TH * TW
    Ht, Wt = 2 * TH + 2, 2 * TW + 2
    xs = np.zeros((Ht, Wt), dtype=flat.dtype)  # the border stays zero
    Y = np.empty((16, L), dtype=flat.dtype)  # Y[4i + j]
    S = np.empty((4, 4, L), dtype=flat.dtype)  # S[a, j]
    for c in range(C):
        for g in range(G):
            for s in range(L // T):  # sample g + s of the run
                pad_into(x[g + s, c], ph, pw, xs)
                for th in range(TH):
                    for i in range(4):
                        row = xs[2 * th + i]
                        ya, yb, yc, yd = Y[4 * i], Y[4 * i + 1], Y[4 * i + 2], Y[4 * i + 3]
                        for tw in range(TW):
                            u, q = s * T + th * TW + tw, 2 * tw
                            ya[u], yb[u], yc[u], yd[u] = row[q], row[q + 1], row[q + 2], \
                                row[q + 3]
            for j in range(4):  # B^T down the columns (the rows of each tile first)
                e0, e1, e2, e3 = Y[j], Y[4 + j], Y[8 + j], Y[12 + j]
                s0, s1, s2, s3 = S[0, j], S[1, j], S[2, j], S[3, j]
                for u in range(L):
                    s0[u], s1[u], s2[u], s3[u] = _b_t(e0[u], e1[u], e2[u], e3[u])
            o = g * sn + c * sc
            for a in range(4):  # then along the rows, into V's planes
                e0, e1, e2, e3 = S[a, 0], S[a, 1], S[a, 2], S[a, 3]
                k = o + 4 * a * sk
                v0, v1, v2, v3 = flat[k:k + L], flat[k + sk:][:L], flat[k + 2 * sk:][:L], \
                    flat[k + 3 * sk:][:L]
                for u in range(L):
                    v0[u], v1[u], v2[u], v3[u] = _b_t(e0[u], e1[u], e2[u], e3[u])


def input_transform(x, ph, pw, V):
    """``V[4a+b, n, c, th, tw] = (B^T d B)[a, b]`` of the tile at ``(2th, 2tw)`` of
    ``_winograd._tile_pad(x, (ph, pw), TH, TW)``; ``V`` (16, n, C, TH, TW)."""
    if V.size == 0:
        return
    write_planes(V, lambda root, P: _input_entry(root, P, x, ph, pw))


@_jit
def _input_entry(root, V, x, ph, pw):
    ok, flat, sk, sn, sc, G, L = runs(root, V, UNLIMITED)
    if ok:
        _input_planes(x, ph, pw, flat, sk, sn, sc, G, L, V.shape[3], V.shape[4])
    return ok


# batch-parallel (``_threads.over_batch``): V, M and D hold the batch on axis 1
register("winograd2_input", "numpy", over_batch(input_transform, (0, None, None, 1)))
register("winograd2_output", "numpy", over_batch(output_transform, (1, 0)))
register("winograd2_dout", "numpy", over_batch(dout_transform, (0, 1)))
