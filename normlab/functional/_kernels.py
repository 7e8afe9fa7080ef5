"""Fast array kernels for convolution and pooling: padding, im2col, col2im, window offsets.

Everything here runs on NumPy and CuPy alike: the only strided trick, the window view,
goes through ``backend.sliding_window_view``; col2im and pooling loop over the
``KH*KW`` kernel offsets (never over output positions), each step one vectorised
slice update over the whole batch.

Layout (chosen by measurement, see ``benchmarks/bench_conv.py``): the column matrix is
``(N, G, C/G*KH*KW, OH*OW)``. One batched product ``weight (G, F/G, K) @ cols`` then
lands directly in ``(N, F, OH*OW)``, i.e. NCHW, so neither the columns nor the output
need a transposing copy. Measured alternatives, float32, 1 thread, batch 128, 16x32x32
input: building ``(N*OH*OW, C*KH*KW)`` columns cost 29 ms against 7 ms for this layout;
``(C*KH*KW, N*OH*OW)`` columns with single large products were no faster overall.
"""

from __future__ import annotations

import math

from normlab import backend
from normlab.functional import dispatch

__all__ = ["pad2d", "offset_slice", "window_view", "im2col", "columns", "col2im",
           "col2im_into", "crop2d", "batch_chunks", "matmul_sum"]

# Column bytes per chunk of samples on CPU: small enough that the columns written by
# im2col are still in cache when the matrix product reads them (chunking also keeps peak
# memory near the input's). First measured best at 2-3 MiB on a 16x32x32 stride-1 layer
# (now Winograd's); on the layers im2col runs now 4 MiB was as fast or faster in every
# pass (1 thread, CPU best of 11, 3 rounds, contended; forward / backward without dx /
# with dx, ms, 2 -> 4 MiB): 7x7 3->32 b50 9.9-10.2 -> 9.6-10.1 / 9.4-9.7 -> 8.6-9.0 /
# 21.6-22.8 -> 19.5-20.8; LeNet 5x5 1->6 b256 3.3-3.5 -> 3.0 / 3.3-3.4 -> 3.0; 5x5 6->16
# 4.2-4.3 -> 3.9-4.1 / 4.7 -> 4.3-4.6 / 9.8-10.1 -> 9.2-9.3; 3x3 s2 16->32 b128
# 8.4-9.1 -> 8.0-8.5 / 7.6-8.1 -> 6.9-7.9 / 18.2-18.8 -> 16.9-17.8; s2 32->64
# 6.8-7.1 -> 6.4-6.8 / 6.5-6.7 -> 6.1-6.3 / 13.0-13.4 -> 12.7-13.2.
CHUNK_BYTES = 4 * 2**20

def pad2d(x, padding, value=0.0):
    """``x`` (N, C, H, W) padded by ``padding = (ph, pw)`` on both sides with ``value``.

    Returns ``x`` itself (no copy) when there is no padding; callers never write to it.
    """
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    xp = backend.namespace(x)
    N, C, H, W = x.shape
    out = xp.full((N, C, H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph:ph + H, pw:pw + W] = x
    return out


def col2im_into(dcols, dx, padding, kernel, out_hw, stride, dilation):
    """``dx`` (n, C, H, W, overwritten) = the input gradient of columns ``dcols`` (any
    shape ``col2im`` takes) through ``padding``. The compiled kernel sums one padded plane
    at a time and writes its interior; the reference goes through a zeroed padded buffer
    and a crop (straight into ``dx`` without padding)."""
    n, C, H, W = dx.shape
    KH, KW = kernel
    OH, OW = out_hw
    impl = dispatch.lookup("col2im", backend.namespace(dcols), dcols, dx)
    if impl is not None:  # one pass, no padded copy of the batch
        impl(dcols.reshape(n, C, KH, KW, OH, OW), dx, *padding, *stride, *dilation)
        return dx
    ph, pw = padding
    if ph == 0 and pw == 0:
        dx[...] = 0
        col2im(dcols, dx, kernel, out_hw, stride, dilation)
        return dx
    xp = backend.namespace(dx)
    dxpad = xp.zeros((n, C, H + 2 * ph, W + 2 * pw), dtype=dx.dtype)
    col2im(dcols, dxpad, kernel, out_hw, stride, dilation)
    dx[...] = dxpad[:, :, ph:ph + H, pw:pw + W]
    return dx


def crop2d(x, padding, size):
    """Inverse of ``pad2d``: the central ``size = (H, W)`` part, as a contiguous array."""
    ph, pw = padding
    H, W = size
    if ph == 0 and pw == 0 and x.shape[2:] == (H, W):
        return x
    xp = backend.namespace(x)
    return xp.ascontiguousarray(x[:, :, ph:ph + H, pw:pw + W])


balanced = True  # the switch benchmarks flip (False: full chunks and a short last one)
# An even number of chunks where there are several, so that two threads get equal shares
# (ResNet-20 b128 at 2 threads: 5 chunks of 26 ran 3 + 2; step 333.5 -> 324.8 and 348.3
# -> 333.0 ms, ResNet-18 207.7 -> 202.0, one thread unchanged). The chunks never depend
# on the thread count, so results are the same on any number of threads.
EVEN_COUNT = True


def batch_chunks(a, bytes_per_sample: int, chunk_bytes: int | None = None):
    """Slices of the batch axis, processed one after another by conv on CPU: as few as
    hold the batch with at most ``chunk_bytes`` (default ``CHUNK_BYTES``) each (at least one
    sample), rounded up to an even count (``EVEN_COUNT``), of sizes differing by at most
    one, the larger first (scratch buffers are sized by the first). Balanced: 32 samples
    of 28 per chunk are 16 + 16, not 28 + 4, which left the second thread idle and the
    buffers sized for 28.

    One slice (the whole batch) for CuPy arrays: a GPU wants the largest products.
    """
    N = a.shape[0]
    if backend.is_cupy_array(a):
        return [slice(0, N)]
    size = max(1, (chunk_bytes or CHUNK_BYTES) // max(1, bytes_per_sample))
    if balanced and N:  # as many chunks, of sizes differing by at most one, largest first
        count = -(-N // size)
        if EVEN_COUNT and count > 1 and count % 2 and count < N:
            count += 1
        size, extra = divmod(N, count)
        starts = [i * size + min(i, extra) for i in range(count + 1)]
        return [slice(starts[i], starts[i + 1]) for i in range(count)]
    return [slice(s, min(s + size, N)) for s in range(0, N, size)]


# Bytes of per-sample products ``matmul_sum`` makes at once: ResNet-18's stride-2 64 -> 128
# weight gradient made 16 of 0.29 MiB (4.5 MiB at the step's peak) where one suffices.
SUM_BLOCK_BYTES = 2**20


def matmul_sum(a, b):
    """``sum_j a[j] @ b[j]`` over the leading axis, with the bits of
    ``matmul(a, b).sum(axis=0)`` (a left fold: ``((p0 + p1) + p2) + ...``), but the
    per-sample products made a block of about ``SUM_BLOCK_BYTES`` at a time on the CPU.

    a (n, ..., K, P), b (n, ..., P, F) -> (..., K, F). Each block's running total goes
    into its first product (``p + total``, the same sum as ``total + p``), then the block
    is folded by NumPy's sum over its first axis.
    """
    xp = backend.namespace(a, b)
    n = a.shape[0]
    per = math.prod(a.shape[1:-1]) * b.shape[-1] * a.dtype.itemsize  # one sample's products
    step = max(1, SUM_BLOCK_BYTES // max(per, 1))
    if step >= n or backend.is_cupy_array(a):
        return xp.matmul(a, b).sum(axis=0)
    total = None
    for j in range(0, n, step):
        prods = xp.matmul(a[j:j + step], b[j:j + step])
        if total is not None:
            prods[0] += total
        total = prods.sum(axis=0)
    return total


def offset_slice(i: int, j: int, out_hw, stride, dilation):
    """Index of the input pixels that kernel offset ``(i, j)`` meets, one per output pixel.

    For output ``(oh, ow)`` the padded input pixel is ``(oh*sh + i*dh, ow*sw + j*dw)``,
    so over all outputs it is a strided slice: shape ``(..., OH, OW)``.
    """
    OH, OW = out_hw
    sh, sw = stride
    dh, dw = dilation
    return (slice(None), slice(None),
            slice(i * dh, i * dh + sh * (OH - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (OW - 1) + 1, sw))


def window_view(xpad, kernel, out_hw, stride, dilation):
    """Read-only view ``(N, C, OH, OW, KH, KW)`` of every window of the padded input."""
    KH, KW = kernel
    OH, OW = out_hw
    sh, sw = stride
    dh, dw = dilation
    eff = ((KH - 1) * dh + 1, (KW - 1) * dw + 1)
    v = backend.sliding_window_view(xpad, eff, axis=(2, 3))
    return v[:, :, :sh * (OH - 1) + 1:sh, :sw * (OW - 1) + 1:sw, ::dh, ::dw]


def im2col(xpad, kernel, out_hw, stride, dilation, groups, sample_major=False):
    """Columns ``(N, G, C/G*KH*KW, OH*OW)`` of the padded input (one copy, no Python loop).

    Row ``(c, i, j)`` of group ``g`` holds input channel ``g*C/G + c`` seen through kernel
    offset ``(i, j)`` at every output pixel, matching ``weight.reshape(G, F/G, -1)``.
    ``sample_major``: ``(G, C/G*KH*KW, N*OH*OW)`` instead, the samples' columns side by
    side, for one product over the whole batch (the same one copy, in another order).
    """
    N, C = xpad.shape[:2]
    KH, KW = kernel
    OH, OW = out_hw
    v = window_view(xpad, kernel, out_hw, stride, dilation)  # (N, C, OH, OW, KH, KW)
    if sample_major:
        v = v.transpose(1, 4, 5, 0, 2, 3)  # (C, KH, KW, N, OH, OW)
        return v.reshape(groups, (C // groups) * KH * KW, N * OH * OW)
    v = v.transpose(0, 1, 4, 5, 2, 3)  # (N, C, KH, KW, OH, OW)
    return v.reshape(N, groups, (C // groups) * KH * KW, OH * OW)


def columns(x, kernel, out_hw, padding, stride, dilation, groups, sample_major=False):
    """``im2col(pad2d(x, padding), ...)``: the columns of ``x`` (N, C, H, W) through zero
    ``padding``, in ``im2col``'s layouts. The compiled kernel (``im2col``) pads one plane
    at a time instead of copying the batch first; the same values."""
    xp = backend.namespace(x)
    N, C = x.shape[:2]
    KH, KW = kernel
    OH, OW = out_hw
    K = (C // groups) * KH * KW
    impl = dispatch.lookup("im2col", xp, x)
    if impl is None:
        return im2col(pad2d(x, padding), kernel, out_hw, stride, dilation, groups,
                      sample_major)
    cols = xp.empty((groups, K, N * OH * OW) if sample_major else (N, groups, K, OH * OW),
                    dtype=x.dtype)
    rows = (C * KH * KW, N) if sample_major else (N, C * KH * KW)  # the kernel's 3D view
    impl(x, *padding, KH, KW, *stride, *dilation, OW, cols.reshape(rows + (OH * OW,)),
         sample_major)
    return cols


def col2im(dcols, dxpad, kernel, out_hw, stride, dilation):
    """Adjoint of ``im2col``: add every column entry onto its padded-input pixel of ``dxpad``.

    ``dxpad`` (N, C, Hp, Wp) is updated in place (pass zeros, or a slice of a zeroed
    array). Loops over the ``KH*KW`` kernel offsets; each adds one strided slice for the
    whole batch. Overlapping windows (stride < kernel) accumulate, as the chain rule
    requires.

    Returns
    -------
    dxpad, for convenience.
    """
    N, C = dxpad.shape[:2]
    KH, KW = kernel
    OH, OW = out_hw
    d6 = dcols.reshape(N, C, KH, KW, OH, OW)
    impl = dispatch.lookup("col2im", backend.namespace(dcols), dcols, dxpad)
    if impl is not None:  # one pass instead of KH*KW strided read-modify-writes (the
        impl(d6, dxpad, 0, 0, *stride, *dilation)  # kernel overwrites: dxpad was zero)
        return dxpad
    for i in range(KH):
        for j in range(KW):
            dxpad[offset_slice(i, j, out_hw, stride, dilation)] += d6[:, :, i, j]
    return dxpad
