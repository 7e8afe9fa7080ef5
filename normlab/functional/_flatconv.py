"""Convolution of a single input channel by shifted rows of the flattened padded image.

With stride 1, output ``(oh, ow)`` of kernel offset ``(i, j)`` reads the padded input at
``(oh + i*dh, ow + j*dw)``. Flatten the padded image row-major (width ``Wp``) and let the
output run over the same flat positions ``p = oh*Wp + ow`` for ``ow < Wp`` (the last
``Wp - OW`` of each row are junk, dropped at the end): then offset ``(i, j)`` reads
``xflat[p + i*dh*Wp + j*dw]``, one contiguous run of ``L = OH*Wp`` values, and

    out_flat[f] = sum_{c, i, j} weight[f, c, i, j] * xflat[c, i*dh*Wp + j*dw : ... + L]

is ``C*KH*KW`` scaled adds of long contiguous rows per filter, with no columns at all.

The weight gradient reads the same rows: with ``dout`` laid out at the padded width (zero
in the junk columns),

    dweight[f, c, i, j] = sum_n sum_p dout_flat[n, f, p] * xflat[n, c, s_ij + p]

one dot product of two contiguous rows per filter and offset, ``s_ij = i*dh*Wp + j*dw``.
The compiled kernel takes the offsets four at a time, so each pass over ``dout``'s row
feeds four sums; each image's sums are added into float64 totals, and the batch's chunks'
totals in chunk order (the same result on any number of threads). The input gradient
stays im2col's (``weight^T @ dout``, col2im).

im2col's product has an inner size of ``C*KH*KW`` and ``F`` rows, for LeNet's first conv
(1 -> 6 channels, 5x5) a (6, 25) @ (25, 784) product per image that BLAS runs far below
its peak, and its weight gradient 256 (25, 784) @ (784, 6) products (256 x 1 x 28 x 28, 1
thread, CPU time, best of 10-15, ms, im2col -> these loops: forward 3.15-3.17 -> 2.17-2.23
with the padding and the crop counted, 3.79-3.83 -> 2.06-2.09 since the kernel adds four
taps a pass; weight gradient 3.03-3.06 -> 1.35-1.40). With more input channels the
product wins again (forward, 6 -> 16 channels 5x5: 3.25 against 6.27, with four taps a
pass 2.56-2.63 against 4.45-4.49; 3 -> 32 channels 7x7: 12.4 against 25.6), so
``chosen`` takes one input channel.

The forward sums run over ``(c, i, j)`` in order, each term rounded before it is added, in
the reference below and in the compiled kernel alike (bit-identical); im2col's product
adds in BLAS's order, so the two paths differ in the last bits. The weight gradient's dot
products are reordered (vectorised) by the compiled kernel, so there the reference and the
kernel agree to round-off only.
"""

from __future__ import annotations

from normlab import backend
from normlab.functional import _kernels, _parallel, dispatch

__all__ = ["MAX_CHANNELS", "chosen", "forward", "backward"]

MAX_CHANNELS = 1  # input channels up to which "auto" takes this path (measured above)
use_flat = True  # the switch tests and benchmarks flip (False: never this path)


def chosen(C, stride, groups, gpu=False) -> bool:
    """Whether a conv with ``C`` input channels takes this path (not on CuPy, where the
    adds would be one launch each)."""
    return use_flat and not gpu and groups == 1 and tuple(stride) == (1, 1) \
        and C <= MAX_CHANNELS


def _flat_padded(x, padding, extra):
    """``(N, C, Hp*Wp + extra)`` zero-padded copy of ``x``, rows laid end to end; the
    ``extra`` zeros let the last row's shifted runs read past its end."""
    xp = backend.namespace(x)
    N, C, H, W = x.shape
    ph, pw = padding
    Hp, Wp = H + 2 * ph, W + 2 * pw
    xf = xp.zeros((N, C, Hp * Wp + extra), dtype=x.dtype)
    xf[:, :, :Hp * Wp].reshape(N, C, Hp, Wp)[:, :, ph:ph + H, pw:pw + W] = x
    return xf


def _reference(x, weight, padding, dilation, out):
    """The sum above on the whole batch at once (NumPy or CuPy), into ``out`` (N, F, OH, OW)."""
    xp = backend.namespace(x, weight)
    N, C, H, W = x.shape
    F, _, KH, KW = weight.shape
    OH, OW = out.shape[2:]
    dh, dw = dilation
    Wp = W + 2 * padding[1]
    L = OH * Wp
    xf = _flat_padded(x, padding, (KW - 1) * dw)
    acc = xp.zeros((N, F, L), dtype=x.dtype)
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                s = i * dh * Wp + j * dw
                acc += weight[:, c, i, j].reshape(1, F, 1) * xf[:, c:c + 1, s:s + L]
    out[...] = acc.reshape(N, F, OH, Wp)[:, :, :, :OW]


def forward(x, weight, padding, dilation, out_hw):
    """``conv2d`` (stride 1, groups 1) of ``x`` (N, C, H, W) with ``weight`` (F, C, KH, KW),
    no bias: ``out`` (N, F, OH, OW)."""
    xp = backend.namespace(x, weight)
    out = xp.empty((x.shape[0], weight.shape[0]) + tuple(out_hw), dtype=x.dtype)
    impl = dispatch.lookup("conv_flat_forward", xp, x, weight, out)
    if impl is None:
        _reference(x, weight, padding, dilation, out)
    else:  # batch-parallel inside (threads from normlab.set_num_threads)
        impl(x, weight, padding[0], padding[1], dilation[0], dilation[1], out)
    return out


def _dout_flat(dout, Wp):
    """``dout`` (n, F, OH, OW) at the padded width: (n, F, OH*Wp), zero past ``OW``."""
    xp = backend.namespace(dout)
    n, F, OH, OW = dout.shape
    d = xp.zeros((n, F, OH, Wp), dtype=dout.dtype)
    d[..., :OW] = dout
    return d.reshape(n, F, OH * Wp)


def _weight_part(x, dout, weight_shape, padding, dilation):
    """float64 ``dweight`` (F, C, KH, KW) of one batch chunk."""
    xp = backend.namespace(x, dout)
    F, C, KH, KW = weight_shape
    part = xp.empty((F, C, KH, KW), dtype=xp.float64)
    impl = dispatch.lookup("conv_flat_weight_grad", xp, x, dout)
    if impl is not None:
        impl(x, dout, padding[0], padding[1], dilation[0], dilation[1], x.dtype.type(0), part)
        return part
    Wp = x.shape[3] + 2 * padding[1]
    L = dout.shape[2] * Wp
    xf = _flat_padded(x, padding, (KW - 1) * dilation[1])
    d = _dout_flat(dout, Wp)
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                s = i * dilation[0] * Wp + j * dilation[1]
                part[:, c, i, j] = xp.einsum("nfp,np->f", d, xf[:, c, s:s + L])
    return part


def backward(dout, x, weight, padding, dilation, need_dx=True):
    """``(dx or None, dweight)`` of ``forward``; ``dout`` (N, F, OH, OW)."""
    xp = backend.namespace(dout, x)
    N, C, H, W = x.shape
    F, _, KH, KW = weight.shape
    OH, OW = dout.shape[2:]
    w2t = weight.reshape(F, C * KH * KW).T if need_dx else None  # (C*KH*KW, F)
    dx = xp.empty(x.shape, dtype=dout.dtype) if need_dx else None
    per_sample = C * KH * KW * OH * OW if need_dx else (C * H + F * OH) * (W + 2 * padding[1])
    chunks = _kernels.batch_chunks(x, per_sample * x.dtype.itemsize)
    parts = _parallel.InOrderSum()  # the chunks' float64 parts, in chunk order

    def one(k, _):  # chunk k (on any thread: _parallel)
        sl = chunks[k]
        parts.add(k, _weight_part(x[sl], dout[sl], weight.shape, padding, dilation))
        if need_dx:  # im2col's: the columns' gradient, then col2im
            d = dout[sl].reshape(sl.stop - sl.start, F, OH * OW)
            _kernels.col2im_into(xp.matmul(w2t, d), dx[sl], padding, (KH, KW), (OH, OW),
                                 (1, 1), dilation)

    _parallel.run(len(chunks), one, _parallel.threads_for(x, len(chunks)))
    total = parts.total
    if total is None:  # an empty batch
        return dx, xp.zeros(weight.shape, dtype=weight.dtype)
    return dx, total.astype(weight.dtype)
