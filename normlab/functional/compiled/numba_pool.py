"""Compiled CPU kernels (numba) for pooling: max and average, forward and backward.

The vectorised NumPy versions in ``pool.py`` make one pass per window offset over the
whole batch, with ``where`` temporaries for the maximum; these loops make one pass, plane
by plane, and compute exactly what the reference computes (the same comparisons in the
same order for the maximum and its offset, the same additions in the same order for the
gradients; the average up to its order of additions), and the tests run both.
Imported by ``dispatch`` on the first lookup for NumPy arrays, only when numba imports;
each kernel registers under its op name for ``"numpy"``, batch-parallel
(``_threads.over_batch``).
"""

from __future__ import annotations

import numba
import numpy as np

from normlab.functional.compiled._threads import over_batch
from normlab.functional.dispatch import register

__all__ = ["max_pool_forward", "max_pool_backward", "avg_pool_forward", "avg_pool_backward"]

PROVIDER = f"numba {numba.__version__}"
_jit = numba.njit(cache=True, nogil=True, fastmath=False)


@numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", inline="always")
def _max_tap_row(src, o, am, OW, step, j, k):
    """One window offset over one output row: ``v = src[ow*step + j]`` replaces ``o[ow]``
    (and ``k`` goes to ``am[ow]``) where ``v > o[ow]`` or ``v`` is NaN, as selects. The
    step a constant in the common loops: they vectorise."""
    if step == 1:
        for ow in range(OW):
            v, b = src[ow + j], o[ow]
            u = (v > b) | (v != v)
            o[ow] = v if u else b
            am[ow] = k if u else am[ow]
    else:
        for ow in range(OW):
            v, b = src[ow * step + j], o[ow]
            u = (v > b) | (v != v)
            o[ow] = v if u else b
            am[ow] = k if u else am[ow]


@numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def max_pool_forward(xpad, KH, KW, sh, sw, out, argmax):
    """Window maximum and the offset ``i*KW + j`` of its FIRST occurrence (NaN wins: a
    later NaN takes the offset, as the reference's ``(v > out) | isnan(v)``).

    The 2x2 stride-2 window has its own loop over pairs of rows: the same four
    comparisons in the same order, as selects the compiler can vectorise. Other windows
    go plane by plane, one window offset ``(i, j)`` at a time over every output row
    (``_max_tap_row``), the offsets in the per-window order, so every output sees the
    same comparisons in the same order as a loop over its window (the same values and
    offsets, ties and NaN included) but as vectorised selects instead of a branch per
    element that the CPU mispredicts. With a horizontal stride of 2 each padded plane is
    first split into its even and odd columns, so offset ``j`` reads phase ``j % 2`` from
    column ``j // 2`` on, contiguously. Per call, 1 thread, float32, ms, the per-window
    loop -> this (the kernel; the whole op with its padded copy): ResNet-18's 3x3 stride 2
    16x64x32x32 5.0 -> 0.68 (op 5.25 -> 0.91, PyTorch's 6.4), 3x3 stride 1 128x16x32x32
    39.6 -> 2.9 (op 39.1 -> 3.4, PyTorch's 40)."""
    N, C, OH, OW = out.shape
    if KH == 2 and KW == 2 and sh == 2 and sw == 2:
        for n in range(N):
            for c in range(C):
                for oh in range(OH):
                    r0, r1 = xpad[n, c, 2 * oh], xpad[n, c, 2 * oh + 1]
                    o, am = out[n, c, oh], argmax[n, c, oh]
                    for ow in range(OW):
                        best, k = r0[2 * ow], 0
                        v = r0[2 * ow + 1]
                        if v > best or v != v:
                            best, k = v, 1
                        v = r1[2 * ow]
                        if v > best or v != v:
                            best, k = v, 2
                        v = r1[2 * ow + 1]
                        if v > best or v != v:
                            best, k = v, 3
                        o[ow] = best
                        am[ow] = k
        return
    Hp, Wp = xpad.shape[2], xpad.shape[3]
    half = (Wp + 1) // 2
    phases = np.empty((2, Hp, half if sw == 2 else 0), xpad.dtype)
    for n in range(N):
        for c in range(C):
            p, o, am = xpad[n, c], out[n, c], argmax[n, c]
            if sw == 2:  # phases[q, h, m] = p[h, 2m + q]
                for h in range(Hp):  # (indexed: three row views a row cost 0.7 ms here)
                    for m in range(Wp // 2):
                        phases[0, h, m] = p[h, 2 * m]
                        phases[1, h, m] = p[h, 2 * m + 1]
                    if Wp % 2:
                        phases[0, h, half - 1] = p[h, Wp - 1]
            for oh in range(OH):  # offset (0, 0)
                row, orow, arow = p[oh * sh], o[oh], am[oh]
                for ow in range(OW):
                    orow[ow] = row[ow * sw]
                    arow[ow] = 0
            for i in range(KH):
                for j in range(KW):
                    if i == 0 and j == 0:
                        continue
                    k = i * KW + j
                    for oh in range(OH):
                        h = oh * sh + i
                        if sw == 2:
                            _max_tap_row(phases[j % 2, h], o[oh], am[oh], OW, 1, j // 2, k)
                        else:
                            _max_tap_row(p[h], o[oh], am[oh], OW, sw, j, k)


@_jit
def max_pool_backward(dout, argmax, KH, KW, sh, sw, dxpad):
    """``dxpad`` (zero on entry) += each window's ``dout`` at its argmax. The 2x2
    stride-2 window by pairs of rows: each of its four places gets ``dout`` or zero
    added (selects instead of a scattered store; the same values, zeros included)."""
    N, C, OH, OW = dout.shape
    if KH == 2 and KW == 2 and sh == 2 and sw == 2:
        z = dout.dtype.type(0)
        for n in range(N):
            for c in range(C):
                for oh in range(OH):
                    d, am = dout[n, c, oh], argmax[n, c, oh]
                    r0, r1 = dxpad[n, c, 2 * oh], dxpad[n, c, 2 * oh + 1]
                    for ow in range(OW):
                        v, k = d[ow], am[ow]
                        r0[2 * ow] += v if k == 0 else z
                        r0[2 * ow + 1] += v if k == 1 else z
                        r1[2 * ow] += v if k == 2 else z
                        r1[2 * ow + 1] += v if k == 3 else z
        return
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    k = argmax[n, c, oh, ow]
                    dxpad[n, c, oh * sh + k // KW, ow * sw + k % KW] += dout[n, c, oh, ow]


@_jit
def avg_pool_forward(xpad, KH, KW, sh, sw, out):
    """Window sum in row-major window order, divided by ``KH*KW``. The 2x2 stride-2 window
    (LeNet's, d2l's) has its own loop over pairs of input rows, which the compiler
    vectorises (the same additions in the same order: 256x6x28x28 float32, 1 thread,
    1.69 -> 0.24 ms)."""
    N, C, OH, OW = out.shape
    inv = KH * KW
    if KH == 2 and KW == 2 and sh == 2 and sw == 2:
        for n in range(N):
            for c in range(C):
                for oh in range(OH):
                    r0, r1, o = xpad[n, c, 2 * oh], xpad[n, c, 2 * oh + 1], out[n, c, oh]
                    for ow in range(OW):
                        o[ow] = (r0[2 * ow] + r0[2 * ow + 1] + r1[2 * ow]
                                 + r1[2 * ow + 1]) / inv
        return
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    acc = xpad[n, c, oh * sh, ow * sw]
                    for i in range(KH):
                        for j in range(KW):
                            if i > 0 or j > 0:
                                acc += xpad[n, c, oh * sh + i, ow * sw + j]
                    out[n, c, oh, ow] = acc / inv


@_jit
def avg_pool_backward(share, KH, KW, sh, sw, dxpad):
    """``dxpad`` (zero on entry) += ``share = dout / (KH*KW)`` over every window member
    (the 2x2 stride-2 window by pairs of rows, as in the forward)."""
    N, C, OH, OW = share.shape
    if KH == 2 and KW == 2 and sh == 2 and sw == 2:
        for n in range(N):
            for c in range(C):
                for oh in range(OH):
                    v, r0, r1 = share[n, c, oh], dxpad[n, c, 2 * oh], dxpad[n, c, 2 * oh + 1]
                    for ow in range(OW):
                        r0[2 * ow] += v[ow]
                        r0[2 * ow + 1] += v[ow]
                        r1[2 * ow] += v[ow]
                        r1[2 * ow + 1] += v[ow]
        return
    for n in range(N):
        for c in range(C):
            for i in range(KH):
                for j in range(KW):
                    for oh in range(OH):
                        for ow in range(OW):
                            dxpad[n, c, oh * sh + i, ow * sw + j] += share[n, c, oh, ow]


# Registered batch-parallel: the batch axis of each argument (None: passed whole).
for _op, _impl, _axes in (
        ("max_pool_forward", max_pool_forward, (0, None, None, None, None, 0, 0)),
        ("max_pool_backward", max_pool_backward, (0, 0, None, None, None, None, 0)),
        ("avg_pool_forward", avg_pool_forward, (0, None, None, None, None, 0)),
        ("avg_pool_backward", avg_pool_backward, (0, None, None, None, None, 0))):
    register(_op, "numpy", over_batch(_impl, _axes))
