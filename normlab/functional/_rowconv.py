"""Convolution by kernel rows: columns over ``(c, j)`` only, one product per kernel row.

For a convolution with vertical stride 1, im2col's column for kernel offset ``(c, i, j)``
at output ``(oh, ow)`` is ``xpad[c, oh + i*dh, ow*sw + j*dw]``. The row columns
``Z[(c, j), (h, ow)] = xpad[c, h, ow*sw + j*dw]`` (im2col with a one-row kernel over all
``Hp`` padded rows) hold them all: kernel row ``i``'s columns are the contiguous slice
``Z[:, i*dh*OW : i*dh*OW + OH*OW]``. So

    out = sum_i weight[:, :, i, :] @ Z_i          (KH products of inner size C*KW)

on views of one copy that is about KH times smaller than im2col's columns. The weight
gradient mirrors it, ``dweight[:, :, i, :] = sum_n dout_n @ Z_i^T``; the input gradient
is im2col's (``weight^T @ dout``, col2im). The sums over ``i`` are grouped per kernel
row, so results differ from im2col's in the last bits.

Chosen (``chosen``) for groups 1, vertical stride 1, kernels of 5 rows or more and
``C*KW >= 16`` (per batch chunk, 1 thread, forward, ms, im2col -> rows: LeNet's 5x5
6 -> 16 on 14x14 1.02 -> 0.70, ThreeLayerConvNet's 7x7 3 -> 32 on 32x32 1.07 -> 0.93;
LeNet's first 5x5 1 -> 6, ``C*KW = 5``: 0.58 -> 0.76, so it stays on im2col).
"""

from __future__ import annotations

from normlab import backend
from normlab.functional import _kernels, _parallel

__all__ = ["use_rows", "chosen", "forward", "backward"]

use_rows = True  # the switch tests and benchmarks flip (False: im2col for every conv)
MIN_ROWS = 5
MIN_INNER = 16
BLOCK_BYTES = 2**18  # output bytes per block of the forward's sums (``forward``)


def chosen(C, kernel, stride, groups, gpu=False) -> bool:
    """Whether a conv with ``C`` input channels takes this path (``gpu``: CuPy arrays,
    which take im2col's single product instead: the smaller copy pays in CPU caches)."""
    KH, KW = kernel
    return (use_rows and not gpu and groups == 1 and stride[0] == 1 and KH >= MIN_ROWS
            and C * KW >= MIN_INNER)


def _rows(x, padding, KW, OW, sw, dw):
    """``Z`` (n, C*KW, Hp*OW): the one-row im2col of ``x`` (n, C, H, W) zero-padded."""
    Hp = x.shape[2] + 2 * padding[0]
    return _kernels.columns(x, (1, KW), (Hp, OW), padding, (1, sw), (1, dw), 1)[:, 0]


def _row_weights(weight):
    """``(KH, F, C*KW)``: kernel row ``i`` of every filter, as one matrix per row."""
    F, C, KH, KW = weight.shape
    xp = backend.namespace(weight)
    return xp.ascontiguousarray(weight.transpose(2, 0, 1, 3)).reshape(KH, F, C * KW)


def forward(x, weight, padding, stride, dilation, out_hw):
    """``out`` (N, F, OH, OW) of the cross-correlation, no bias (``conv._forward`` adds it)."""
    xp = backend.namespace(x, weight)
    N, C, H, W = x.shape
    F, _, KH, KW = weight.shape
    OH, OW = out_hw
    Hp = H + 2 * padding[0]
    P = OH * OW
    shift = dilation[0] * OW
    Wr = _row_weights(weight)
    out = xp.empty((N, F, OH, OW), dtype=x.dtype)
    chunks = _kernels.batch_chunks(x, C * KW * Hp * OW * x.dtype.itemsize)

    # the KH products are summed a block of samples at a time, so the partial sums and
    # the product being added stay in cache (1 thread, forward, ms, whole chunks -> 256
    # KiB blocks: ThreeLayerConvNet's 7x7 3 -> 32 8.55 -> 5.62, where six whole-chunk
    # additions had cost 2.8 ms; LeNet's 5x5 6 -> 16 2.64 -> 2.08; 512 KiB as fast, 128
    # KiB and 1 MiB slower)
    step = max(1, BLOCK_BYTES // (F * P * x.dtype.itemsize))

    def one(k, _):  # chunk k (on any thread: _parallel)
        sl = chunks[k]
        Z = _rows(x[sl], padding, KW, OW, stride[1], dilation[1])
        o_all = out[sl].reshape(-1, F, P)
        tmp_all = xp.empty_like(o_all[:step])
        for j in range(0, o_all.shape[0], step):
            o, Zj = o_all[j:j + step], Z[j:j + step]
            tmp = tmp_all[:o.shape[0]]
            xp.matmul(Wr[0], Zj[:, :, :P], out=o)
            for i in range(1, KH):
                xp.matmul(Wr[i], Zj[:, :, i * shift:i * shift + P], out=tmp)
                o += tmp

    _parallel.run(len(chunks), one, _parallel.threads_for(x, len(chunks)))
    return out


def backward(dout, x, weight, padding, stride, dilation, need_dx=True):
    """``(dx or None, dweight)`` of ``forward``; ``dout`` (N, F, OH, OW)."""
    xp = backend.namespace(dout, x)
    N, C, H, W = x.shape
    F, _, KH, KW = weight.shape
    OH, OW = dout.shape[2:]
    Hp = H + 2 * padding[0]
    P = OH * OW
    shift = dilation[0] * OW
    w2t = weight.reshape(F, C * KH * KW).T if need_dx else None  # (C*KH*KW, F)
    dx = xp.empty(x.shape, dtype=dout.dtype) if need_dx else None
    # chunks sized by what is largest: the input gradient's full columns when it is made
    # (chunks of Z's size made them KH times too large for the cache: 1.15-1.25x slower)
    per_sample = C * KH * KW * P if need_dx else C * KW * Hp * OW
    chunks = _kernels.batch_chunks(x, per_sample * x.dtype.itemsize)
    parts = _parallel.InOrderSum()  # the chunks' (KH, C*KW, F) parts, in chunk order

    def one(k, _):  # chunk k (on any thread: _parallel)
        sl = chunks[k]
        n = sl.stop - sl.start
        Z = _rows(x[sl], padding, KW, OW, stride[1], dilation[1])
        d = dout[sl].reshape(n, F, P)
        dT = d.swapaxes(-1, -2)  # (n, P, F)
        # dweight_i^T = sum_n Z_i @ dout^T, as im2col's (K, P) @ (P, F) products
        parts.add(k, xp.stack([_kernels.matmul_sum(Z[:, :, i * shift:i * shift + P], dT)
                               for i in range(KH)]))
        if not need_dx:
            return
        del Z
        # dx as im2col's: the full columns' gradient, then col2im over all KH*KW offsets
        # (dZ's KH overlapping slice additions measured 1.25x slower on 7x7 3 -> 32)
        _kernels.col2im_into(xp.matmul(w2t, d), dx[sl], padding, (KH, KW), (OH, OW), stride,
                             dilation)

    _parallel.run(len(chunks), one, _parallel.threads_for(x, len(chunks)))
    total = parts.total  # (KH, C*KW, F) -> (F, C, KH, KW)
    if total is None:  # an empty batch
        return dx, xp.zeros(weight.shape, dtype=weight.dtype)
    dweight = total.reshape(KH, C, KW, F).transpose(3, 1, 0, 2)
    return dx, xp.ascontiguousarray(dweight).astype(weight.dtype, copy=False)
