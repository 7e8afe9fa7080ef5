"""Compiled (numba) kernels of the flat-row conv path (``functional/_flatconv.py``): one
input channel, stride 1, each kernel offset's inputs one contiguous run of the flattened
padded image. The forward adds the runs in the reference's ``(c, i, j)`` order (the same
bits); the weight gradient's dot products may be reordered (vectorised). Registers
``conv_flat_forward`` (batch-parallel) and ``conv_flat_weight_grad`` (a sum over the
images it is given: the caller chunks the batch) for ``"numpy"``.
"""

from __future__ import annotations

import numba
import numpy as np

from normlab.functional.compiled._threads import over_batch
from normlab.functional.dispatch import register

__all__ = ["conv_flat_forward", "conv_flat_weight_grad"]

PROVIDER = f"numba {numba.__version__}"
_jit = numba.njit(cache=True, nogil=True, fastmath=False)


@_jit
def _rows_into(src, flat, top, left, Wp):
    """``flat[c, (h + top)*Wp + left + q] = src[c, h, q]``: the rows of ``src`` (C, H, W)
    into rows of width ``Wp`` laid end to end (what lies around them is left as it is)."""
    C, H, W = src.shape
    for c in range(C):
        for h in range(H):
            row = flat[c, (h + top) * Wp + left:(h + top) * Wp + left + W]
            s = src[c, h]
            for q in range(W):
                row[q] = s[q]


@_jit
def _taps(C, KH, KW, dh, dw, Wp):
    """Channel and flat offset of each kernel tap ``t`` in ``(c, i, j)`` order, with 3
    spare zero entries (the weight gradient's last pass of four reads past the last)."""
    T = C * KH * KW
    chan = np.zeros(T + 3, dtype=np.int64)
    offs = np.zeros(T + 3, dtype=np.int64)
    for t in range(T):
        c, r = divmod(t, KH * KW)
        i, j = divmod(r, KW)
        chan[t], offs[t] = c, i * dh * Wp + j * dw
    return chan, offs


@_jit
def conv_flat_forward(x, w, ph, pw, dh, dw, out):
    """``_flatconv``'s sum, one image at a time: the image is copied into a zeroed flat
    padded row buffer, each filter's ``OH*Wp`` sums are built there from shifted rows,
    four taps a pass (``a = (((a + w0 x0) + w1 x1) + w2 x2) + w3 x3``: the reference's
    adds in its ``(c, i, j)`` order, each product rounded first, the same bits), every
    filter in turn on the same four rows, and the valid ``OW`` of each output row are
    copied out."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    OH, OW = out.shape[2], out.shape[3]
    Hp, Wp = H + 2 * ph, W + 2 * pw
    L = OH * Wp
    T = C * KH * KW
    T4 = T - T % 4  # taps in passes of four; the rest one a pass
    chan, offs = _taps(C, KH, KW, dh, dw, Wp)
    wt = np.ascontiguousarray(w).reshape(F, T)  # the weights in tap order
    xf = np.zeros((C, Hp * Wp + (KW - 1) * dw), dtype=x.dtype)  # borders stay zero
    acc = np.empty((F, L), dtype=x.dtype)
    for n in range(N):
        _rows_into(x[n], xf, ph, pw, Wp)
        for f in range(F):
            a = acc[f]
            for p in range(L):
                a[p] = 0.0
        for t in range(0, T4, 4):
            x0 = xf[chan[t], offs[t]:offs[t] + L]  # slices: numba vectorises over them
            x1 = xf[chan[t + 1], offs[t + 1]:offs[t + 1] + L]
            x2 = xf[chan[t + 2], offs[t + 2]:offs[t + 2] + L]
            x3 = xf[chan[t + 3], offs[t + 3]:offs[t + 3] + L]
            for f in range(F):
                a = acc[f]
                w0, w1, w2, w3 = wt[f, t], wt[f, t + 1], wt[f, t + 2], wt[f, t + 3]
                for p in range(L):
                    a[p] = (((a[p] + w0 * x0[p]) + w1 * x1[p]) + w2 * x2[p]) + w3 * x3[p]
        for t in range(T4, T):
            xs = xf[chan[t], offs[t]:offs[t] + L]
            for f in range(F):
                a = acc[f]
                wv = wt[f, t]
                for p in range(L):
                    a[p] += wv * xs[p]
        for f in range(F):
            a = acc[f]
            for oh in range(OH):
                r = a[oh * Wp:oh * Wp + OW]
                o = out[n, f, oh]
                for q in range(OW):
                    o[q] = r[q]


# the weight gradient's dot products may be reordered (vectorised); nothing else here may
_jit_sums = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz", "arcp"})


@_jit_sums
def conv_flat_weight_grad(x, dout, ph, pw, dh, dw, zero, out):
    """``_flatconv``'s weight gradient of ``x[n]``, ``dout[n]`` summed over the ``n`` given,
    into float64 ``out`` (F, C, KH, KW): per image, each filter's ``dout`` row (at the
    padded width, zero past ``OW``) is dotted with four shifted input rows per pass
    (offsets in ``(c, i, j)`` order, the last pass padded with repeats whose sums are
    dropped); ``zero`` (0 of x's dtype) starts each image's sums in that dtype."""
    N, C, H, W = x.shape
    F, _, KH, KW = out.shape
    OH = dout.shape[2]
    Hp, Wp = H + 2 * ph, W + 2 * pw
    L = OH * Wp
    T = C * KH * KW
    xf = np.zeros((C, Hp * Wp + (KW - 1) * dw), dtype=x.dtype)  # borders stay zero
    dpad = np.zeros((F, L), dtype=x.dtype)  # columns past OW stay zero
    chan, offs = _taps(C, KH, KW, dh, dw, Wp)
    o = out.reshape(F, T)
    o[...] = 0.0
    for n in range(N):
        _rows_into(x[n], xf, ph, pw, Wp)
        _rows_into(dout[n], dpad, 0, 0, Wp)
        for f in range(F):
            d = dpad[f]
            for t in range(0, T, 4):
                x0 = xf[chan[t], offs[t]:offs[t] + L]
                x1 = xf[chan[t + 1], offs[t + 1]:offs[t + 1] + L]
                x2 = xf[chan[t + 2], offs[t + 2]:offs[t + 2] + L]
                x3 = xf[chan[t + 3], offs[t + 3]:offs[t + 3] + L]
                s0 = s1 = s2 = s3 = zero
                for p in range(L):
                    g = d[p]
                    s0 += g * x0[p]
                    s1 += g * x1[p]
                    s2 += g * x2[p]
                    s3 += g * x3[p]
                o[f, t] += s0
                if t + 1 < T:
                    o[f, t + 1] += s1
                if t + 2 < T:
                    o[f, t + 2] += s2
                if t + 3 < T:
                    o[f, t + 3] += s3


register("conv_flat_forward", "numpy",
         over_batch(conv_flat_forward, (0, None, None, None, None, None, 0)))
register("conv_flat_weight_grad", "numpy", conv_flat_weight_grad)  # a sum: chunked by the caller
