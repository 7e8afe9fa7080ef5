"""Convolution (PyTorch's cross-correlation) by im2col and batched matrix products.

``out[n, f, oh, ow] = bias[f] + sum_{c, i, j} weight[f, c, i, j] *
xpad[n, g*C/G + c, oh*sh + i*dh, ow*sw + j*dw]`` with ``g = f // (F/G)``.

The input is padded and unfolded (``_kernels.columns``: ``im2col`` of ``pad2d``; its
compiled kernel pads one plane at a time) into columns ``(n, G, C/G*KH*KW, OH*OW)`` and
multiplied by ``weight.reshape(G, F/G, -1)``. Backward is two more products (``dweight =
dout @ cols^T``, ``dcols = weight^T @ dout``) and ``_kernels.col2im``. On CPU the batch
goes through in chunks of ``n`` samples whose columns fit in cache
(``_kernels.batch_chunks``); the cache keeps the input, not the columns (9x larger for
3x3), and backward unfolds each chunk again. The readable
loop version is ``conv_naive.py``. 1D convolution is the 2D routine on ``H = 1``.

Stride-1 3x3 convolutions with groups 1, at least 16 channels in and out and at least
128 output tiles over the batch (``_winograd.MIN_TILES``) run through Winograd instead:
F(4x4, 3x3) (``_winograd4.py``) where the output is at least 16x16 (8x8 with at least 128
of its tiles over the batch, ``_winograd.tile_for``), F(2x2, 3x3) (``_winograd.py``) on
smaller outputs (measured 1.4-2x faster forward+backward than im2col on ResNet-20's
layers; ``_winograd.use_winograd`` and ``use_tile`` switch them); backward follows the
path the forward took (``ConvCache.winograd``, ``wino_tile``), transforms ``dout`` once
for both gradients (``_winograd_backward``) and computes the input transform again
(keeping the forward's, ``_winograd.REUSE_MIN_CHANNELS``, cost as much time in fresh
pages as it saved). Convs with vertical stride 1 and kernels of 5 or more rows run by
kernel rows instead of im2col (``_rowconv``: one product per kernel row on slices of a
KH times smaller copy; ``ConvCache.rows``).
"""

from __future__ import annotations

from typing import NamedTuple

from normlab import backend
from normlab.functional import (
    _flatconv,
    _kernels,
    _parallel,
    _rowconv,
    _winograd,
    _winograd4,
    _winograd_backward,
)
from normlab.functional._spatial import conv_args, out_size
from normlab.validation import check_bool, check_cache, check_dout, native_byteorder, overwritable

# Largest OH*OW for which the im2col path multiplies the whole chunk in one GEMM over
# n*OH*OW columns instead of n per-sample GEMMs: with few pixels (ResNet-18's stage 4 at
# 64x64 input: 512 channels, 2x2) each per-sample product re-reads the whole weight for
# 4-16 columns.
FEW_PIXELS = 64

__all__ = ["FEW_PIXELS", "ConvCache", "conv1d_forward", "conv1d_backward", "conv2d_forward", "conv2d_backward"]


class ConvCache(NamedTuple):
    x: object  # (N, C, H, W): the input itself (each batch chunk is padded when used)
    weight: object  # (F, C/G, KH, KW)
    x_shape: tuple
    padding: tuple
    stride: tuple
    dilation: tuple
    groups: int
    has_bias: bool
    squeeze: bool  # a conv1d call: drop the H axis again in backward
    winograd: bool = False  # forward ran the Winograd path; backward does too
    # Winograd only: the forward's input transforms, [(batch slice, V (16, C, n, TH, TW))],
    # reused by the weight gradient (4x the input's memory, saves one transform pass);
    # None when C < _winograd.REUSE_MIN_CHANNELS (None by default: never kept)
    wino_tiles: object = None
    wino_tile: int = 2  # Winograd output tile: 2 (_winograd) or 4 (_winograd4)
    rows: bool = False  # forward ran the kernel-row path (_rowconv); backward does too
    flat: bool = False  # forward ran the flat-row path (_flatconv); backward's dweight too


def _forward(x, weight, bias, stride, padding, dilation, groups, out_hw, squeeze,
             keep_transforms=True, into=None):
    """One path's product (Winograd, flat rows, kernel rows or im2col), then the bias.

    ``into``: an array of the output's shape and dtype (``x`` itself, for
    ``overwrite_x``) that the Winograd and im2col paths write the output into. Both go
    through the batch in chunks and read a chunk's input (into their transform or
    columns) before they write its output, and a sample's output depends on that sample
    alone, so the output may overwrite the input. The other paths ignore it."""
    N, C = x.shape[:2]
    F, _, KH, KW = weight.shape
    OH, OW = out_hw
    m = _winograd.tile_for(OH, OW, N)
    gpu = backend.is_cupy_array(x)
    path = {}  # the ConvCache fields saying which path ran (backward follows it)
    if N and _winograd.chosen(C, F, (KH, KW), stride, dilation, groups,  # N=0: im2col
                              N * -(-OH // m) * -(-OW // m), gpu):
        wino = _winograd4 if m == 4 else _winograd
        reuse = _winograd.REUSE_MIN_CHANNELS
        keep = keep_transforms and reuse is not None and C >= reuse
        out, tiles = wino.conv3x3(x, weight, padding, keep=keep) if keep else \
            (wino.conv3x3(x, weight, padding, out=into), None)
        path = dict(winograd=True, wino_tiles=tiles, wino_tile=m)
    elif N and _flatconv.chosen(C, stride, groups, gpu):  # one input channel
        out = _flatconv.forward(x, weight, padding, dilation, out_hw)
        path = dict(flat=True)
    elif N and _rowconv.chosen(C, (KH, KW), stride, groups, gpu):
        out = _rowconv.forward(x, weight, padding, stride, dilation, out_hw)
        path = dict(rows=True)
    else:
        out = _im2col_forward(x, weight, stride, padding, dilation, groups, out_hw, into)
    if bias is not None:
        out += bias.reshape(F, 1, 1)
    return out, ConvCache(x, weight, x.shape, padding, stride, dilation, groups,
                          bias is not None, squeeze, **path)


def _im2col_forward(x, weight, stride, padding, dilation, groups, out_hw, into=None):
    """``weight @ columns`` per batch chunk, no bias: (N, F, OH, OW), into ``into`` if
    given (``_forward``)."""
    xp = backend.namespace(x, weight)
    N, C = x.shape[:2]
    F, Cg, KH, KW = weight.shape
    OH, OW = out_hw
    w3 = weight.reshape(groups, F // groups, Cg * KH * KW)
    out = xp.empty((N, F, OH, OW), dtype=x.dtype) if into is None else into
    chunks = _kernels.batch_chunks(x, C * KH * KW * OH * OW * x.dtype.itemsize)
    few = OH * OW <= FEW_PIXELS  # one (F/G, K) @ (K, n*OH*OW) product per group

    def one(i, _):  # chunk i (on any thread: _parallel)
        sl = chunks[i]
        # padded per chunk: no padded copy of the whole batch is made, or kept for the
        # backward (ResNet-20's stride-2 and first convs kept 15.8 MiB at batch 128)
        cols = _kernels.columns(x[sl], (KH, KW), (OH, OW), padding, stride, dilation, groups,
                                few)
        if few:
            n = sl.stop - sl.start
            prod = xp.matmul(w3, cols)  # (G, F/G, n*OH*OW)
            out[sl] = prod.reshape(groups, F // groups, n, OH * OW).transpose(
                2, 0, 1, 3).reshape(n, F, OH, OW)
        else:  # (n, G, F/G, OH*OW) is NCHW already: written in place, no copy
            xp.matmul(w3, cols, out=out[sl].reshape(-1, groups, F // groups, OH * OW))

    _parallel.run(len(chunks), one, _parallel.threads_for(x, len(chunks)))
    return out


def _sample_major(a):
    """(n, G, R, P) -> (G, R, n*P): the samples side by side along the columns (a copy)."""
    n, G, R, P = a.shape
    return a.transpose(1, 2, 0, 3).reshape(G, R, n * P)


def conv2d_forward(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1,
                   keep_transforms=True, overwrite_x=False):
    """2D convolution with zero padding: ``out = weight * x + bias`` (cross-correlation).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    weight : ndarray, shape (F, C/groups, KH, KW)
    bias : ndarray or None, shape (F,)
    stride, padding, dilation : int or (int, int)
    groups : int
        Input and output channels are split into ``groups`` independent convolutions.
    keep_transforms : bool
        Keep the Winograd input transforms for the weight gradient (``ConvCache.wino_tiles``,
        2.25-4x the input's memory). ``False`` (eval forwards) keeps none; a backward then
        recomputes them.
    overwrite_x : bool
        For inference: where the output has ``x``'s shape (and ``x`` is C-contiguous and
        writable), the Winograd and im2col paths may write it over ``x``, whose values
        are then lost; ``cache`` is then None (nothing may run backward). Elsewhere a new
        array is returned, as without it. The values are the same bits either way.

    Shape
    -----
    ``OH = floor((H + 2*ph - dh*(KH-1) - 1) / sh) + 1``, likewise ``OW``.

    Returns
    -------
    out : ndarray, shape (N, F, OH, OW), dtype of ``x``
    cache : ConvCache, or None where ``x`` was overwritten

    Raises
    ------
    ValueError
        Wrong rank, channel mismatch, channels not divisible by groups, non-positive
        stride or dilation, kernel larger than the padded input.
    TypeError
        ``overwrite_x`` not a bool.
    """
    s, p, d, out_hw = conv_args(x, weight, bias, stride, padding, dilation, groups, 2,
                                "conv2d_forward")
    overwrite_x = check_bool(overwrite_x, "overwrite_x", "conv2d_forward")
    x, weight, bias = native_byteorder(x), native_byteorder(weight), native_byteorder(bias)
    into = None
    if overwrite_x and overwritable(x, (x.shape[0], weight.shape[0]) + tuple(out_hw), x.dtype):
        into = x
    out, cache = _forward(x, weight, bias, s, p, d, int(groups), out_hw, False,
                          keep_transforms and into is None, into)
    return (out, None) if out is x else (out, cache)


def _checked_dout(dout, cache, owner):
    """``dout`` against the forward output's shape, before any kernel runs.

    A smaller ``dout`` would otherwise flow through the reshapes into a wrong gradient.
    """
    cache = check_cache(cache, ConvCache, owner)
    N, C, H, W = cache.x_shape
    F, _, KH, KW = cache.weight.shape
    (ph, pw), (sh, sw), (dh, dw) = cache.padding, cache.stride, cache.dilation
    OH, OW = out_size(H, KH, sh, ph, dh), out_size(W, KW, sw, pw, dw)
    return check_dout(dout, (N, F, OW) if cache.squeeze else (N, F, OH, OW), owner,
                      like=cache.weight)


def conv2d_backward(dout, cache: ConvCache, need_dx: bool = True, overwrite_dout=False):
    """Gradients of ``conv2d_forward``.

    ``dweight = sum_n dout_n @ cols_n^T``, ``dx = col2im(weight^T @ dout)``,
    ``dbias = sum_{n, oh, ow} dout``.

    Parameters
    ----------
    need_dx : bool
        ``False`` skips the input gradient (returned as ``None``): no transposed
        product, no col2im.
    overwrite_dout : bool
        The caller hands ``dout`` over (nothing else holds it): where ``dx`` has its shape
        and dtype (a stride-1 Winograd conv with as many input as output channels; ``dout``
        C-contiguous and writable), ``dx`` is written over it, chunk by chunk after that
        chunk's ``dout`` is transformed. Elsewhere ``dx`` is a new array. The same bits.

    Returns
    -------
    dx : (N, C, H, W) or None; dweight : (F, C/groups, KH, KW); dbias : (F,) or None

    Raises
    ------
    ShapeError, NormlabTypeError
        A ``dout`` other than the forward output's shape, or not a floating array;
        ``overwrite_dout`` not a bool.
    """
    overwrite = check_bool(overwrite_dout, "overwrite_dout", "conv2d_backward")
    return _backward(_checked_dout(dout, cache, "conv2d_backward"), cache, need_dx, overwrite)


def _backward(dout, cache: ConvCache, need_dx: bool = True, overwrite_dout: bool = False):
    x, weight, x_shape, padding, stride, dilation, groups, has_bias, _, winograd = cache[:10]
    xp = backend.namespace(dout, x)
    N, C, H, W = x_shape
    F, Cg, KH, KW = weight.shape
    OH, OW = dout.shape[2:]
    d4 = dout.reshape(N, groups, F // groups, OH * OW)
    dbias = dout.sum(axis=(0, 2, 3)) if has_bias else None
    if winograd:
        # one dout transform per chunk feeds both gradients (_winograd_backward)
        into = dout if overwrite_dout and need_dx and overwritable(dout, x_shape, x.dtype) \
            else None
        dx, dweight = _winograd_backward.backward3x3(cache.wino_tile, x, dout, weight,
                                                     padding, cache.wino_tiles, need_dx, into)
        return dx, dweight, dbias
    if cache.flat:  # the flat rows' dot products (_flatconv)
        dx, dweight = _flatconv.backward(dout, x, weight, padding, dilation, need_dx)
        return dx, dweight, dbias
    if cache.rows:  # the kernel-row products, as in the forward (_rowconv)
        dx, dweight = _rowconv.backward(dout, x, weight, padding, stride, dilation, need_dx)
        return dx, dweight, dbias
    w3t = weight.reshape(groups, F // groups, Cg * KH * KW).swapaxes(-1, -2)
    dx = xp.empty(x_shape, dtype=dout.dtype) if need_dx else None
    chunks = _kernels.batch_chunks(x, C * KH * KW * OH * OW * x.dtype.itemsize)
    parts = _parallel.InOrderSum()  # the chunks' dweight parts, added in chunk order

    def col2im(dcols, sl):  # dcols (n, G, C/G*KH*KW, OH*OW) onto dx[sl], through padding
        _kernels.col2im_into(dcols, dx[sl], padding, (KH, KW), (OH, OW), stride, dilation)

    few = OH * OW <= FEW_PIXELS  # whole-chunk products, as in the forward

    def one(i, _):  # chunk i (on any thread: _parallel)
        sl = chunks[i]
        cols = _kernels.columns(x[sl], (KH, KW), (OH, OW), padding, stride, dilation, groups,
                                few)
        if few:
            n = sl.stop - sl.start
            d2 = _sample_major(d4[sl])  # (G, F/G, n*OH*OW)
            parts.add(i, xp.matmul(d2, cols.swapaxes(-1, -2)))
            del cols  # freed before dcols (as large) is made: one of them at a time
            if need_dx:
                dcols = xp.matmul(w3t, d2).reshape(groups, Cg * KH * KW, n, OH * OW)
                col2im(dcols.transpose(2, 0, 1, 3), sl)
            return
        # n small products then a sum over n: avoids a transposing copy of the columns.
        # dweight^T = cols @ dout^T, (K, OH*OW) @ (OH*OW, F/G): OpenBLAS ran this 1.2-1.7x
        # faster than dout @ cols^T (1 thread, per 50-256-sample batch: 7x7 3 -> 32
        # channels 8.3 -> 5.8 ms, LeNet's 5x5 6 -> 16 2.7 -> 1.6, 3x3 stride-2 32 -> 64
        # 3.9 -> 3.3)
        parts.add(i, _kernels.matmul_sum(cols, d4[sl].swapaxes(-1, -2)).swapaxes(-1, -2))
        del cols
        if need_dx:
            dcols = xp.matmul(w3t, d4[sl])  # (n, G, C/G*KH*KW, OH*OW)
            col2im(dcols, sl)

    _parallel.run(len(chunks), one, _parallel.threads_for(x, len(chunks)))
    dweight = parts.total
    if dweight is None:  # an empty batch
        return dx, xp.zeros(weight.shape, dtype=weight.dtype), dbias
    return dx, dweight.astype(weight.dtype, copy=False).reshape(weight.shape), dbias


def conv1d_forward(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    """1D convolution: ``conv2d_forward`` on ``x[:, :, None, :]`` with a ``(1, K)`` kernel.

    Parameters
    ----------
    x : ndarray, shape (N, C, L)
    weight : ndarray, shape (F, C/groups, K)
    bias : ndarray or None, shape (F,)
    stride, padding, dilation : int or (int,)
    groups : int

    Shape
    -----
    ``OL = floor((L + 2*p - d*(K-1) - 1) / s) + 1``.

    Returns
    -------
    out : ndarray, shape (N, F, OL)
    cache : ConvCache

    Raises
    ------
    ValueError
        As ``conv2d_forward``.
    """
    s, p, d, out_l = conv_args(x, weight, bias, stride, padding, dilation, groups, 1,
                               "conv1d_forward")
    x, weight, bias = native_byteorder(x), native_byteorder(weight), native_byteorder(bias)
    out, cache = _forward(x[:, :, None, :], weight[:, :, None, :], bias, (1,) + s, (0,) + p,
                          (1,) + d, int(groups), (1,) + out_l, True)
    return out[:, :, 0, :], cache


def conv1d_backward(dout, cache: ConvCache, need_dx: bool = True, overwrite_dout=False):
    """Gradients of ``conv1d_forward`` (``need_dx``, ``overwrite_dout`` as in
    ``conv2d_backward``; no 1D path writes over ``dout`` so far).

    Returns
    -------
    dx : (N, C, L) or None; dweight : (F, C/groups, K); dbias : (F,) or None
    """
    check_bool(overwrite_dout, "overwrite_dout", "conv1d_backward")
    dout = _checked_dout(dout, cache, "conv1d_backward")
    dx, dweight, dbias = _backward(dout[:, :, None, :], cache, need_dx)
    return None if dx is None else dx[:, :, 0, :], dweight[:, :, 0, :], dbias
