"""Optional compiled CPU kernels (numba) for the memory-bound steps of conv and pooling.

Profiling (``benchmarks/bench_conv.py --profile``) showed that on CPU the vectorised NumPy
versions of col2im and max pooling make several passes over large arrays (one strided
read-modify-write per kernel offset, plus temporaries for ``where``); these loops make one.
They compute exactly what the NumPy paths in ``_kernels.py`` / ``pool.py`` compute, in the
same order of additions, and the tests run both. (im2col is a single copy in NumPy
already and a loop here was slower, so it has no compiled twin.) Imported lazily, only for NumPy arrays
and only when numba is installed (``pip install normlab[fast]``).
"""

from __future__ import annotations

import numba

__all__ = ["col2im", "max_pool_forward", "max_pool_backward", "avg_pool_forward",
           "avg_pool_backward"]

_jit = numba.njit(cache=True, nogil=True, fastmath=False)


@_jit
def col2im(dcols, dxpad, sh, sw, dh, dw):
    """Adjoint of im2col: ``dxpad[n, c, oh*sh + i*dh, ow*sw + j*dw] += dcols[...]``.

    ``dxpad`` must be zero on entry. Offsets are visited in the same (i, j) order as the
    NumPy slice loop, so both give bit-identical sums.
    """
    N, C, KH, KW, OH, OW = dcols.shape
    for n in range(N):
        for c in range(C):
            for i in range(KH):
                for j in range(KW):
                    for oh in range(OH):
                        r = oh * sh + i * dh
                        for ow in range(OW):
                            dxpad[n, c, r, ow * sw + j * dw] += dcols[n, c, i, j, oh, ow]


@_jit
def max_pool_forward(xpad, KH, KW, sh, sw, out, argmax):
    """Window maximum and the offset ``i*KW + j`` of its FIRST occurrence (NaN wins)."""
    N, C, OH, OW = out.shape
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    best = xpad[n, c, oh * sh, ow * sw]
                    k = 0
                    for i in range(KH):
                        for j in range(KW):
                            v = xpad[n, c, oh * sh + i, ow * sw + j]
                            if v > best or v != v:
                                best = v
                                k = i * KW + j
                    out[n, c, oh, ow] = best
                    argmax[n, c, oh, ow] = k


@_jit
def max_pool_backward(dout, argmax, KW, sh, sw, dxpad):
    """``dxpad`` (zero on entry) += each window's ``dout`` at its argmax."""
    N, C, OH, OW = dout.shape
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    k = argmax[n, c, oh, ow]
                    dxpad[n, c, oh * sh + k // KW, ow * sw + k % KW] += dout[n, c, oh, ow]


@_jit
def avg_pool_forward(xpad, KH, KW, sh, sw, out):
    """Window sum in row-major window order, divided by ``KH*KW``."""
    N, C, OH, OW = out.shape
    inv = KH * KW
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
    """``dxpad`` (zero on entry) += ``share = dout / (KH*KW)`` over every window member."""
    N, C, OH, OW = share.shape
    for n in range(N):
        for c in range(C):
            for i in range(KH):
                for j in range(KW):
                    for oh in range(OH):
                        for ow in range(OW):
                            dxpad[n, c, oh * sh + i, ow * sw + j] += share[n, c, oh, ow]
