"""Compiled CPU kernels (numba) for the memory-bound steps of conv.

Profiling (``benchmarks/bench_conv.py --profile``) showed that on CPU the vectorised NumPy
version of col2im makes several passes over large arrays (one strided read-modify-write
per kernel offset); these loops make one. They compute exactly what the reference paths
in ``_kernels.py`` / ``_winograd.py`` compute, in the same order of additions, and the
tests run both (pooling's kernels: ``numba_pool``). im2col
is a copy; its kernel pads one plane at a time into a scratch plane instead of the
whole batch, and copies each column row with the stride fixed in its loop
(``im2col``).
Imported by ``dispatch`` on the first lookup for NumPy arrays, only when numba imports (it
is a dependency; the reference code is the fallback). Each kernel registers under its op
name (``im2col``, ``col2im``, ``winograd2_input_adjoint``) for ``"numpy"``;
the other F(2x2) transforms are in ``numba_winograd2``.
"""

from __future__ import annotations

import numba
import numpy as np

from normlab.functional.compiled._flat import flat_memory
from normlab.functional.compiled._pad import pad_into
from normlab.functional.compiled._threads import over_batch
from normlab.functional.dispatch import register

__all__ = ["im2col", "col2im", "winograd_input_adjoint"]

PROVIDER = f"numba {numba.__version__}"
_jit = numba.njit(cache=True, nogil=True, fastmath=False)


@_jit
def _col2im_planes(dcols, flat, sn, sc, si, sj, sh_, dx, ph, pw, sh, sw, dh, dw):
    """``col2im``'s loops: ``flat[n*sn + c*sc + i*si + j*sj + oh*sh_ + ow]`` is
    ``dcols[n, c, i, j, oh, ow]`` (``_flat_view``)."""
    N, C, KH, KW, OH, OW = dcols.shape
    H, W = dx.shape[2], dx.shape[3]
    Wp = W + 2 * pw
    pf = np.empty((H + 2 * ph) * Wp, dx.dtype)  # one padded plane
    pairs = sw == 2 and dw == 1
    row = np.empty(2 * OW, dx.dtype)  # two offsets' rows, interleaved
    by_channel = sn < sc  # sample-major columns: read in memory order
    for q in range(N * C):
        n, c = (q % N, q // N) if by_channel else (q // C, q % C)
        pf[:] = 0
        for i in range(KH):
            j = 0
            while j < KW:
                s0 = n * sn + c * sc + i * si + j * sj
                if pairs and j + 1 < KW:  # offsets j, j + 1: the two phases of one run
                    for oh in range(OH):
                        r0 = max(s0 + oh * sh_, 0)
                        r1 = max(r0 + sj, 0)
                        base = max((oh * sh + i * dh) * Wp + j, 0)
                        for ow in range(OW):
                            row[2 * ow] = flat[r0 + ow]
                            row[2 * ow + 1] = flat[r1 + ow]
                        for t in range(2 * OW):
                            pf[base + t] += row[t]
                    j += 2
                    continue
                if sw == 1:  # through the offset's (OH, OW) view: faster here than flat
                    src = dcols[n, c, i, j]
                    for oh in range(OH):
                        base = max((oh * sh + i * dh) * Wp + j * dw, 0)
                        for ow in range(OW):
                            pf[base + ow] += src[oh, ow]
                else:
                    for oh in range(OH):
                        r0 = max(s0 + oh * sh_, 0)
                        base = max((oh * sh + i * dh) * Wp + j * dw, 0)
                        if sw == 2:  # a constant stride: the compiler's loop is faster
                            for ow in range(OW):
                                pf[base + 2 * ow] += flat[r0 + ow]
                        else:
                            for ow in range(OW):
                                pf[base + ow * sw] += flat[r0 + ow]
                j += 1
        for h in range(H):
            b = (h + ph) * Wp + pw
            for w in range(W):
                dx[n, c, h, w] = pf[b + w]


@_jit
def _im2col_planes(x, ph, pw, KH, KW, sh, sw, dh, dw, OW, cols, sample_major):
    """``im2col``'s loops; ``cols`` (n, C*KH*KW, OH*OW), or (C*KH*KW, n, OH*OW) with
    ``sample_major``, C-contiguous."""
    n, C, H, W = x.shape
    P = cols.shape[2]
    OH = P // OW if OW else 0
    padded = np.zeros((H + 2 * ph, W + 2 * pw), x.dtype)  # the border stays zero
    for s in range(n):
        for c in range(C):
            plane = x[s, c]
            if ph or pw:
                pad_into(plane, ph, pw, padded)
                plane = padded
            for i in range(KH):
                for j in range(KW):
                    r = (c * KH + i) * KW + j
                    dst = cols[r, s] if sample_major else cols[s, r]
                    q = j * dw
                    for oh in range(OH):
                        src = plane[oh * sh + i * dh]
                        o = oh * OW
                        # the stride a constant in the common loops: they vectorise
                        if sw == 1:
                            for ow in range(OW):
                                dst[o + ow] = src[ow + q]
                        elif sw == 2:
                            for ow in range(OW):
                                dst[o + ow] = src[2 * ow + q]
                        else:
                            for ow in range(OW):
                                dst[o + ow] = src[ow * sw + q]


def im2col(x, ph, pw, KH, KW, sh, sw, dh, dw, OW, cols, sample_major=False):
    """``_kernels.im2col`` of ``x`` (n, C, H, W) zero-padded by ``(ph, pw)``, into ``cols``:
    ``cols[n, (c*KH + i)*KW + j, oh*OW + ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]``
    (``cols`` (n, C*KH*KW, OH*OW)), or ``cols[(c*KH + i)*KW + j, n, ...]`` with
    ``sample_major`` ((C*KH*KW, n, OH*OW)); C-contiguous ``cols``, written whole.

    The same values as the NumPy window copy (a copy: bit-identical). Per batch chunk, 1
    thread, CPU time, best of 15, ms, NumPy's padded copy and window copy -> this (into a
    reused ``cols``; with a new array per call the stem's chunk was even with NumPy):
    ResNet-20's 3x3 stride-2 16x32x32 (22 samples) 0.57-0.68 -> 0.34, 32x16x16 (32)
    0.45-0.50 -> 0.37, its 3x3 stem 3x32x32 (37) 0.29-0.34 -> 0.18; ThreeLayerConvNet's 7x7
    3x32x32 (6) 0.23 -> 0.13; ResNet-18's 7x7 stride-2 stem 3x64x64 (6) 0.32 -> 0.19, 3x3
    stride-2 64x16x16 (28) 0.86-0.94 -> 0.66; LeNet's 5x5 6x14x14 (69) 0.52-0.61 -> 0.47.
    """
    if cols.size:  # an empty input plane gives the padding's zeros
        _im2col_planes(np.ascontiguousarray(x), ph, pw, KH, KW, sh, sw, dh, dw, OW, cols,
                       sample_major)


def _flat_view(a):
    """``flat_memory(a)``, of a contiguous copy where the last axis is not contiguous or
    ``a``'s memory has no such view."""
    view = flat_memory(a) if a.strides[-1] == a.itemsize else None
    return view if view is not None else flat_memory(np.ascontiguousarray(a))


def col2im(dcols, dx, ph, pw, sh, sw, dh, dw):
    """Adjoint of im2col through zero padding ``(ph, pw)``: ``dx`` (n, C, H, W) is
    overwritten with ``crop(dxpad)``, ``dxpad[n, c, oh*sh + i*dh, ow*sw + j*dw] +=
    dcols[n, c, i, j, oh, ow]`` summed in one padded plane at a time (cache-sized
    scratch), so neither a zeroed padded copy of the batch nor a crop pass over it is
    made.

    Offsets are visited in the same (i, j) order as the NumPy slice loop
    (``_kernels.col2im``), so both give bit-identical sums. Each offset's row is one loop
    over a run of the plane, indexed from a flat view of the columns (no per-row array
    views; indices kept non-negative with ``max``, so numba adds no wraparound test). With
    stride 2 and no dilation, offsets ``j`` and ``j + 1`` fall on the two phases of one
    run: their rows are interleaved into a scratch row and added in one pass (each pixel
    gets one of them, so its additions keep their order). Sample-major columns (the
    few-pixels path) are summed channel by channel, in memory order. Per batch chunk, 1
    thread, best of 40, the per-row slice loop this replaced -> now (us): 3x3 stride-2
    16x32x32 (16 samples) 552 -> 353, 32x16x16 361 -> 224, 64x16x16 747 -> 426;
    ResNet-18's few-pixels 256x4x4 1097 -> 678, stride 2 484 -> 327, 512x2x2 862 -> 621;
    LeNet's 5x5 6 -> 16 (34 samples) 321 -> 294; but 7x7 3 -> 32 (7 samples; no model
    here asks for its dx) 225 -> 260.
    """
    flat, (sn, sc, si, sj, sh_, _) = _flat_view(dcols)
    if flat.size == 0 or dx.size == 0:
        dx[...] = 0
        return
    _col2im_planes(dcols, flat, sn, sc, si, sj, sh_, dx, ph, pw, sh, sw, dh, dw)


@_jit
def _b(e0, e1, e2, e3):
    """``B e`` of one 4-vector (B = (B^T)^T): the F(2x2) input transform's adjoint."""
    return e0, e1 - e2 + e3, e1 + e2 - e0, -e3


@_jit
def _add_row(row, q, a0, a1, a2, a3):
    """``row[q:q+4] += B (a0, a1, a2, a3)``."""
    y0, y1, y2, y3 = _b(a0, a1, a2, a3)
    row[q] += y0
    row[q + 1] += y1
    row[q + 2] += y2
    row[q + 3] += y3


@_jit
def winograd_input_adjoint(dV, ph, pw, dx):
    """F(2x2, 3x3) ``_winograd_backward.input_adjoint``: ``dx[n, c] = crop(sum_tiles
    B dV B^T)``, ``dV`` (16, n, C, TH, TW); each 4x4 tile is added into a padded image
    in tile order, then its interior copied out."""
    _, N, C, TH, TW = dV.shape
    H, W = dx.shape[2], dx.shape[3]
    Ht, Wt = 2 * TH + 2, 2 * TW + 2
    sh, sw = max(0, -ph), max(0, -pw)
    dh, dw = max(0, ph), max(0, pw)
    h, w = min(H - sh, Ht - dh), min(W - sw, Wt - dw)
    xs = np.empty((Ht, Wt), dtype=dx.dtype)
    for n in range(N):
        for c in range(C):
            xs[:, :] = 0
            for th in range(TH):
                for tw in range(TW):
                    # B down the tile rows: column b of the 4x4 dV tile
                    s00, s10, s20, s30 = _b(dV[0, n, c, th, tw], dV[4, n, c, th, tw],
                                            dV[8, n, c, th, tw], dV[12, n, c, th, tw])
                    s01, s11, s21, s31 = _b(dV[1, n, c, th, tw], dV[5, n, c, th, tw],
                                            dV[9, n, c, th, tw], dV[13, n, c, th, tw])
                    s02, s12, s22, s32 = _b(dV[2, n, c, th, tw], dV[6, n, c, th, tw],
                                            dV[10, n, c, th, tw], dV[14, n, c, th, tw])
                    s03, s13, s23, s33 = _b(dV[3, n, c, th, tw], dV[7, n, c, th, tw],
                                            dV[11, n, c, th, tw], dV[15, n, c, th, tw])
                    r, q = 2 * th, 2 * tw  # then along each row, added into the image
                    _add_row(xs[r], q, s00, s01, s02, s03)
                    _add_row(xs[r + 1], q, s10, s11, s12, s13)
                    _add_row(xs[r + 2], q, s20, s21, s22, s23)
                    _add_row(xs[r + 3], q, s30, s31, s32, s33)
            p = dx[n, c]
            if h < H or w < W:  # rows/columns the tiles never reach (a cropping padding)
                p[:, :] = 0
            for i in range(h):
                for j in range(w):
                    p[sh + i, sw + j] = xs[dh + i, dw + j]


# Registered batch-parallel (``_threads.over_batch``): the batch axis of each argument.
_B0 = 0
for _op, _impl, _axes in (
        ("col2im", col2im, (_B0, _B0, None, None, None, None, None, None)),
        ("winograd2_input_adjoint", winograd_input_adjoint, (1, None, None, _B0))):
    register(_op, "numpy", over_batch(_impl, _axes))
_im2col_by_sample = over_batch(im2col, (_B0,) + (None,) * 9 + (_B0, None))
_im2col_sample_major = over_batch(im2col, (_B0,) + (None,) * 9 + (1, None))


def _im2col_threads(x, ph, pw, KH, KW, sh, sw, dh, dw, OW, cols, sample_major=False):
    run = _im2col_sample_major if sample_major else _im2col_by_sample
    run(x, ph, pw, KH, KW, sh, sw, dh, dw, OW, cols, sample_major)


register("im2col", "numpy", _im2col_threads)
