"""Compiled (numba) transforms of Winograd F(4x4, 3x3), see ``_winograd4.py``.

Each kernel computes the same linear combinations as the NumPy version in
``_winograd4.py`` (rows first, then columns; the sums may be grouped differently, so
float results can differ in the last bit: both are tested against the loop reference).
Like ``numba_winograd2``'s kernels they write a few output planes per inner loop:
interleaving all 36 planes' write streams thrashes L1. All four transforms work on whole
image planes of tiles (``_planes.runs``): their inner loops run over all ``TH*TW`` tiles
of a plane as 1D contiguous slices, which numba vectorises (bit-identical to the per-tile
loops they replaced: same operations, same order); the input transform's loops run over
all samples of a chunk for one channel (``runs``: the buffers are channel-major).
The output and dout transforms move their non-overlapping 4x4 blocks through column
phases (``_phases``): flat vectorised loops instead of a scalar store or load per
position (1 thread, batch 128, F(4x4) convs 16x32x32 / 32x16x16 / 64x8x8 -> same: output
transform 2.88 / 1.35 / 0.81 -> 1.97 / 0.89 / 0.40 ms, dout 2.74 / 1.26 / 1.00 -> 2.03 /
0.99 / 0.73; same bits). The input transform and its adjoint keep their per-tile gather
and scatter-add: their 6x6 tiles overlap, and the same scheme (rows 4th+4, 4th+5 twice;
the overlaps added in four ordered flat passes) measured 2.45 -> 2.2, 1.35 -> 1.4, 0.72 ->
0.94 ms (input, hot) and 2.35 -> 2.8, 1.27 -> 1.8, 0.67 -> 1.43 (adjoint).
The weight's transforms are in ``numba_winograd_weight``.
"""

from __future__ import annotations

import numba
import numpy as np

from normlab.functional.compiled._pad import pad_into
from normlab.functional.compiled._phases import block_row, merge, row_in, row_out, split
from normlab.functional.compiled._planes import UNLIMITED, read_planes, runs, write_planes
from normlab.functional.compiled._threads import over_batch
from normlab.functional.dispatch import register

__all__ = ["input_transform", "output_transform", "dout_transform", "input_adjoint"]

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
def _input_planes(x, ph, pw, flat, sk, sn, sc, G, L, TH, TW):
    """``V[6a+b, n, c] = (B^T d B)[a, b]`` per 6x6 tile ``d`` of ``_winograd4._tile_pad(x,
    (ph, pw), TH, TW)[n, c]``, plane ``V[k, n, c]`` at ``flat[k*sk + n*sn + c*sc:][:TH*TW]``
    (``runs``): each image padded into a scratch image, its 36 tile positions gathered
    into ``Y[6i + j]``, then B^T down the tile columns and along the rows, 6 planes in and
    6 out per loop over the run (rows first, then columns)."""
    C = x.shape[1]
    T = TH * TW
    Ht, Wt = 4 * TH + 2, 4 * TW + 2
    xs = np.zeros((Ht, Wt), dtype=flat.dtype)  # the border stays zero
    Y = np.empty((36, L), dtype=flat.dtype)  # Y[6i + j]
    S = np.empty((6, 6, L), dtype=flat.dtype)  # S[a, j]
    for c in range(C):
        for g in range(G):
            for s in range(L // T):  # sample g + s of the run
                pad_into(x[g + s, c], ph, pw, xs)
                for th in range(TH):
                    for i in range(6):
                        row = xs[4 * th + i]
                        ya, yb, yc = Y[6 * i], Y[6 * i + 1], Y[6 * i + 2]
                        yd, ye, yf = Y[6 * i + 3], Y[6 * i + 4], Y[6 * i + 5]
                        for tw in range(TW):
                            u, q = s * T + th * TW + tw, 4 * tw
                            ya[u], yb[u], yc[u] = row[q], row[q + 1], row[q + 2]
                            yd[u], ye[u], yf[u] = row[q + 3], row[q + 4], row[q + 5]
            for j in range(6):  # B^T down the columns (the rows of each tile first)
                e0, e1, e2 = Y[j], Y[6 + j], Y[12 + j]
                e3, e4, e5 = Y[18 + j], Y[24 + j], Y[30 + j]
                s0, s1, s2, s3, s4, s5 = S[0, j], S[1, j], S[2, j], S[3, j], S[4, j], S[5, j]
                for u in range(L):
                    s0[u], s1[u], s2[u], s3[u], s4[u], s5[u] = _bt(e0[u], e1[u], e2[u], e3[u],
                                                                   e4[u], e5[u])
            o = g * sn + c * sc
            for a in range(6):  # then along the rows, into V's planes
                e0, e1, e2 = S[a, 0], S[a, 1], S[a, 2]
                e3, e4, e5 = S[a, 3], S[a, 4], S[a, 5]
                k = o + 6 * a * sk
                v0, v1, v2 = flat[k:k + L], flat[k + sk:][:L], flat[k + 2 * sk:][:L]
                v3, v4, v5 = flat[k + 3 * sk:][:L], flat[k + 4 * sk:][:L], flat[k + 5 * sk:][:L]
                for u in range(L):
                    v0[u], v1[u], v2[u], v3[u], v4[u], v5[u] = _bt(e0[u], e1[u], e2[u], e3[u],
                                                                   e4[u], e5[u])


def input_transform(x, ph, pw, V):
    """``V[6a+b, n, c, th, tw] = (B^T d B)[a, b]``, ``d = xt[n, c, 4th:4th+6, 4tw:4tw+6]``
    with ``xt = _winograd4._tile_pad(x, (ph, pw), TH, TW)``; ``V`` (36, n, C, TH, TW).

    Per chunk (1 thread, CPU time, best of 9, contended) against the per-image loop it
    replaced (B^T down whole image columns, then along each tile row; same results):
    16x32x32 (7 samples) 0.193 -> 0.187 ms, 32x16x16 (14 samples) 0.229 -> 0.177."""
    if V.size == 0:
        return
    write_planes(V, lambda root, P: _input_entry(root, P, x, ph, pw, LONGEST_RUN))


@_jit
def _input_entry(root, V, x, ph, pw, longest):
    ok, flat, sk, sn, sc, G, L = runs(root, V, longest)
    if ok:
        _input_planes(x, ph, pw, flat, sk, sn, sc, G, L, V.shape[3], V.shape[4])
    return ok


# Longest run for the F(4x4) output transform and input adjoint: their 36- and 72-plane
# scratch (S, Y) for longer runs no longer fit in L1. Per chunk (1 thread, CPU, best of
# 9, 2 rounds, contended), per-sample runs -> one run per chunk: 32x16x16 (14 samples,
# 224 tiles) output 0.158-0.169 -> 0.137-0.141 ms, adjoint 0.224-0.227 -> 0.187-0.195;
# 16x32x32 (7 samples, 448 tiles) output 0.114-0.126 -> 0.129-0.133, adjoint
# 0.171-0.182 -> 0.189-0.194. The dout transform (16 planes) gained on both: 0.19-0.20
# -> 0.12 and 0.17-0.23 -> 0.12. The input transform (72 planes of scratch) takes the
# limit too: 16x32x32 with cold inputs (a batch of 128 from 6 rotating arrays, 1 thread,
# best of 18, two rounds), one 448-tile run per chunk 3.70 / 3.66 ms -> per-sample runs
# 3.15 / 3.23; 32x16x16 (224 tiles) and 64x8x8 run as before.
LONGEST_RUN = 256


@_jit
def _output_planes(flat, sk, sn, sf, G, L, TH, TW, out):
    """``out[n, f, 4th+i, 4tw+j] = (A^T M A)[i, j]``, plane ``M[k, n, f]`` at
    ``flat[k*sk + n*sn + f*sf:][:TH*TW]``, ``G`` runs of ``L`` tiles per channel
    (``runs``). A^T down the tile rows, then along them, each a loop over the run, into
    column phases (``P[j][i*L + u]`` is ``Y[i, j]`` of tile ``u``); one ``merge`` makes the
    output rows of every tile of the run (``_phases``), which are copied out last."""
    F = out.shape[1]
    T = TH * TW
    ns = L // T
    Wr = 4 * TW
    S = np.empty((4, 6, L), dtype=out.dtype)
    P = np.empty((4, 4 * L), dtype=out.dtype)
    rows = np.empty(16 * L, dtype=out.dtype)  # 4 * ns * TH rows of Wr
    for f in range(F):
        for g in range(G):
            o = g * sn + f * sf
            for b in range(6):  # A^T down the tile rows: S[i, b] from M[6a + b], a = 0..5
                m0, m1 = flat[o + b * sk:o + b * sk + L], flat[o + (6 + b) * sk:][:L]
                m2, m3 = flat[o + (12 + b) * sk:][:L], flat[o + (18 + b) * sk:][:L]
                m4, m5 = flat[o + (24 + b) * sk:][:L], flat[o + (30 + b) * sk:][:L]
                s0, s1, s2, s3 = S[0, b], S[1, b], S[2, b], S[3, b]
                for u in range(L):
                    s0[u], s1[u], s2[u], s3[u] = _at(m0[u], m1[u], m2[u], m3[u], m4[u], m5[u])
            for i in range(4):  # then along them: Y[i, j] into P[j][i*L:]
                e0, e1, e2, e3, e4, e5 = S[i, 0], S[i, 1], S[i, 2], S[i, 3], S[i, 4], S[i, 5]
                y0, y1 = P[0, i * L:(i + 1) * L], P[1, i * L:(i + 1) * L]
                y2, y3 = P[2, i * L:(i + 1) * L], P[3, i * L:(i + 1) * L]
                for u in range(L):
                    y0[u], y1[u], y2[u], y3[u] = _at(e0[u], e1[u], e2[u], e3[u], e4[u], e5[u])
            merge(P, rows, 4 * L)
            for s in range(ns):  # sample g + s of the run
                p = out[g + s, f]
                for i in range(4):
                    for th in range(TH):
                        row_out(rows, block_row(i, s, th, ns, TH) * Wr, p, 4 * th + i, 0, Wr)


def output_transform(M, out):
    """``out[n, f, 4th+i, 4tw+j] = (A^T M A)[i, j]``; ``M`` (36, n, F, TH, TW)."""
    if M.size == 0:
        return
    read_planes(M, lambda root, P: _output_entry(root, P, out, LONGEST_RUN))


@_jit
def _output_entry(root, M, out, longest):
    ok, flat, sk, sn, sf, G, L = runs(root, M, longest)
    if ok:
        _output_planes(flat, sk, sn, sf, G, L, M.shape[3], M.shape[4], out)
    return ok


@_jit
def _dout_planes(d, flat, sk, sn, sf, G, L, TH, TW):
    """``D[6a+b, n, f] = (A dY A^T)[a, b]`` per 4x4 block of ``d[n, f]``, plane ``D[k, n, f]``
    at ``flat[k*sk + n*sn + f*sf:][:TH*TW]``, ``G`` runs of ``L`` tiles per channel
    (``runs``): the rows of every sample of a run in block order, their four column
    phases in one ``split`` (``_phases``: ``P[j][i*L + u]`` is ``dY[i, j]`` of tile ``u``),
    then A down them and along them in loops over the run."""
    F = d.shape[1]
    T = TH * TW
    ns = L // T
    Wr = 4 * TW
    rows = np.empty(16 * L, dtype=d.dtype)  # 4 * ns * TH rows of Wr, all written per run
    P = np.empty((4, 4 * L), dtype=d.dtype)
    S = np.empty((6, 4, L), dtype=d.dtype)
    for f in range(F):
        for g in range(G):
            for s in range(ns):  # sample g + s of the run
                p = d[g + s, f]
                for i in range(4):
                    for th in range(TH):
                        row_in(p, 4 * th + i, 0, rows, block_row(i, s, th, ns, TH) * Wr, Wr)
            split(rows, P, 4 * L)
            for j in range(4):  # A down the rows: S[a, j] from dY[i, j], i = 0..3
                pj = P[j]
                e0, e1, e2, e3 = pj[:L], pj[L:2 * L], pj[2 * L:3 * L], pj[3 * L:4 * L]
                s0, s1, s2, s3, s4, s5 = S[0, j], S[1, j], S[2, j], S[3, j], S[4, j], S[5, j]
                for u in range(L):
                    s0[u], s1[u], s2[u], s3[u], s4[u], s5[u] = _a(e0[u], e1[u], e2[u], e3[u])
            o = g * sn + f * sf
            for a in range(6):  # then along the columns, into D's planes
                e0, e1, e2, e3 = S[a, 0], S[a, 1], S[a, 2], S[a, 3]
                k = o + 6 * a * sk
                v0, v1, v2 = flat[k:k + L], flat[k + sk:][:L], flat[k + 2 * sk:][:L]
                v3, v4, v5 = flat[k + 3 * sk:][:L], flat[k + 4 * sk:][:L], flat[k + 5 * sk:][:L]
                for u in range(L):
                    v0[u], v1[u], v2[u], v3[u], v4[u], v5[u] = _a(e0[u], e1[u], e2[u], e3[u])


def dout_transform(d, D):
    """``D[6a+b, n, f, th, tw] = (A dY A^T)[a, b]`` of the 4x4 block
    ``dY = d[n, f, 4th:4th+4, 4tw:4tw+4]``; ``d`` (n, F, 4TH, 4TW) zero-extended."""
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
def _b(e0, e1, e2, e3, e4, e5):
    """``B e`` of one 6-vector (B = (B^T)^T): the input transform's adjoint."""
    return (_4 * e0, _4 * (e2 - e1) + _2 * (e4 - e3) + _4 * e5,
            -_5 * e0 - _4 * (e1 + e2) - e3 - e4, e1 - e2 + _2 * (e3 - e4) - _5 * e5,
            e0 + e1 + e2 + e3 + e4, e5)


@_jit
def _input_adjoint_planes(flat, sk, sn, sc, G, L, TH, TW, ph, pw, dx):
    """``dx[n, c] = crop(sum_tiles B dV B^T)``, plane ``dV[k, n, c]`` at
    ``flat[k*sk + n*sn + c*sc:][:TH*TW]``, ``G`` runs of ``L`` tiles per channel (``runs``)
    (``_winograd_backward.input_adjoint``): B along the tile rows, then the columns, each
    a loop over the run; then each sample's 6x6 tiles are added into a padded image (in
    tile order) and its interior copied out."""
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    T = TH * TW
    Ht, Wt = 4 * TH + 2, 4 * TW + 2
    sh, sw = max(0, -ph), max(0, -pw)
    dh, dw = max(0, ph), max(0, pw)
    h, w = min(H - sh, Ht - dh), min(W - sw, Wt - dw)
    S = np.empty((6, 6, L), dtype=dx.dtype)  # S[i, b]
    Y = np.empty((36, L), dtype=dx.dtype)  # Y[6i + j]
    xs = np.empty((Ht, Wt), dtype=dx.dtype)
    for c in range(C):
        for g in range(G):
            o = g * sn + c * sc
            for b in range(6):  # B down the tile rows: S[i, b] from dV[6a + b], a = 0..5
                e0, e1 = flat[o + b * sk:o + b * sk + L], flat[o + (6 + b) * sk:][:L]
                e2, e3 = flat[o + (12 + b) * sk:][:L], flat[o + (18 + b) * sk:][:L]
                e4, e5 = flat[o + (24 + b) * sk:][:L], flat[o + (30 + b) * sk:][:L]
                s0, s1, s2, s3, s4, s5 = S[0, b], S[1, b], S[2, b], S[3, b], S[4, b], S[5, b]
                for u in range(L):
                    s0[u], s1[u], s2[u], s3[u], s4[u], s5[u] = _b(e0[u], e1[u], e2[u], e3[u],
                                                                  e4[u], e5[u])
            for i in range(6):  # then along them: Y[6i + j]
                e0, e1, e2, e3, e4, e5 = S[i, 0], S[i, 1], S[i, 2], S[i, 3], S[i, 4], S[i, 5]
                y0, y1, y2 = Y[6 * i], Y[6 * i + 1], Y[6 * i + 2]
                y3, y4, y5 = Y[6 * i + 3], Y[6 * i + 4], Y[6 * i + 5]
                for u in range(L):
                    y0[u], y1[u], y2[u], y3[u], y4[u], y5[u] = _b(e0[u], e1[u], e2[u], e3[u],
                                                                  e4[u], e5[u])
            for s in range(L // T):  # sample g + s of the run
                xs[:, :] = 0
                for th in range(TH):
                    for i in range(6):
                        row = xs[4 * th + i]
                        ya, yb, yc = Y[6 * i], Y[6 * i + 1], Y[6 * i + 2]
                        yd, ye, yf = Y[6 * i + 3], Y[6 * i + 4], Y[6 * i + 5]
                        for tw in range(TW):
                            u, q = s * T + th * TW + tw, 4 * tw
                            row[q] += ya[u]
                            row[q + 1] += yb[u]
                            row[q + 2] += yc[u]
                            row[q + 3] += yd[u]
                            row[q + 4] += ye[u]
                            row[q + 5] += yf[u]
                p = dx[g + s, c]
                if h < H or w < W:  # rows/columns the tiles never reach (a cropping padding)
                    p[:, :] = 0
                for i in range(h):
                    pr, xr = p[sh + i], xs[dh + i]
                    for j in range(w):
                        pr[sw + j] = xr[dw + j]


def input_adjoint(dV, ph, pw, dx):
    """``_winograd_backward.input_adjoint`` for F(4x4): ``dV`` (36, n, C, TH, TW)."""
    if dV.size == 0:
        dx[...] = 0
        return
    read_planes(dV, lambda root, P: _adjoint_entry(root, P, ph, pw, dx, LONGEST_RUN))


@_jit
def _adjoint_entry(root, dV, ph, pw, dx, longest):
    ok, flat, sk, sn, sc, G, L = runs(root, dV, longest)
    if ok:
        _input_adjoint_planes(flat, sk, sn, sc, G, L, dV.shape[3], dV.shape[4], ph, pw, dx)
    return ok


# batch-parallel (``_threads.over_batch``): V, M and D hold the batch on axis 1
register("winograd4_input", "numpy", over_batch(input_transform, (0, None, None, 1)))
register("winograd4_output", "numpy", over_batch(output_transform, (1, 0)))
register("winograd4_dout", "numpy", over_batch(dout_transform, (0, 1)))
register("winograd4_input_adjoint", "numpy", over_batch(input_adjoint, (1, None, None, 0)))
