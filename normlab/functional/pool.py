"""Max, average and adaptive average pooling, vectorised (loops only over kernel offsets).

Max pooling: ``out[n, c, oh, ow] = max_{i, j} xpad[n, c, oh*sh + i, ow*sw + j]`` with
``xpad`` padded by ``-inf``. The gradient of each window goes to ONE input: the FIRST
maximum in row-major window order ``(i, j)`` (PyTorch CPU's rule: a later value replaces
the running maximum only if it is strictly greater, or NaN). Average pooling divides the
window sum by ``KH*KW`` (``count_include_pad=True``, ``ceil_mode=False``).

Fast paths: non-overlapping windows (``stride == kernel_size``, no padding) are a reshape
``(N, C, OH, KH, OW, KW)`` of the input, so backward is one broadcast write; otherwise a
loop over the ``KH*KW`` kernel offsets updates one strided slice of the whole batch at a
time. On NumPy arrays with numba installed, max and average pooling use the one-pass
kernels of ``compiled/numba_pool.py`` instead (same results, chosen by
``dispatch.lookup``; ``normlab.kernels("reference")`` forces this file's code). 1D pooling is the 2D routine on ``H = 1``. Loop references:
``pool_naive.py``.
"""

from __future__ import annotations

from typing import NamedTuple

from normlab import backend
from normlab.errors import NormlabTypeError, NormlabValueError, ShapeError
from normlab.functional import _kernels, dispatch
from normlab.functional._spatial import as_tuple, check_input, pool_args
from normlab.validation import check_dout, native_byteorder

__all__ = ["max_pool1d_forward", "max_pool1d_backward", "max_pool2d_forward",
           "max_pool2d_backward", "avg_pool1d_forward", "avg_pool1d_backward",
           "avg_pool2d_forward", "avg_pool2d_backward", "adaptive_avg_pool2d_forward",
           "adaptive_avg_pool2d_backward"]


class PoolCache(NamedTuple):
    argmax: object  # (N, C, OH, OW) window offset i*KW + j of the first maximum; None for avg
    x_shape: tuple
    kernel: tuple
    stride: tuple
    padding: tuple
    squeeze: bool  # a 1D call: drop the H axis again in backward


def _tiled(kernel, stride, padding) -> bool:
    """Windows tile the input without overlap or padding: the reshape fast path applies."""
    return stride == kernel and padding == (0, 0)


def _blocks(a, kernel, out_hw):
    """View ``(N, C, OH, KH, OW, KW)`` of the top-left ``OH*KH x OW*KW`` part of ``a``."""
    N, C = a.shape[:2]
    (KH, KW), (OH, OW) = kernel, out_hw
    return a[:, :, :OH * KH, :OW * KW].reshape(N, C, OH, KH, OW, KW)


def _padded_zeros(dout, x_shape, padding):
    """Zero gradient buffer for the padded input ``(N, C, H + 2*ph, W + 2*pw)``."""
    xp = backend.namespace(dout)
    N, C, H, W = x_shape
    return xp.zeros((N, C, H + 2 * padding[0], W + 2 * padding[1]), dtype=dout.dtype)


def _pool2d(forward, x, kernel_size, stride, padding, owner):
    """Validate the arguments and run ``forward`` (``_max_forward`` or ``_avg_forward``)."""
    k, s, p, out_hw = pool_args(x, kernel_size, stride, padding, 2, owner)
    return forward(native_byteorder(x), k, s, p, out_hw, False)


def _pool1d(forward, x, kernel_size, stride, padding, owner):
    """1D pooling on (N, C, L): ``forward`` on the ``H = 1`` view with a ``(1, K)`` window."""
    k, s, p, out_l = pool_args(x, kernel_size, stride, padding, 1, owner)
    x = native_byteorder(x)
    out, cache = forward(x[:, :, None, :], (1,) + k, (1,) + s, (0,) + p, (1,) + out_l, True)
    return out[:, :, 0, :], cache


def _checked_dout(dout, cache, owner):
    """``dout`` checked against the forward output's shape, BEFORE any (compiled) kernel runs.

    The compiled backward kernels index ``dxpad`` with ``dout``'s shape: a larger ``dout``
    would write outside the buffer, so this check is what keeps them in bounds.
    """
    if not isinstance(cache, PoolCache):
        raise NormlabTypeError(f"{owner}: expected the PoolCache returned by the forward, got "
                               f"{type(cache).__name__}.")
    N, C, H, W = cache.x_shape
    (KH, KW), (sh, sw), (ph, pw) = cache.kernel, cache.stride, cache.padding
    OH, OW = (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1
    shape = (N, C, OW) if cache.squeeze else (N, C, OH, OW)
    like = cache.argmax if cache.argmax is not None else None
    return check_dout(dout, shape, owner, like=like)


def _unpool1d(backward, dout, cache, owner):
    """``backward`` of a ``_pool1d`` call: through the ``H = 1`` view and back to (N, C, L)."""
    dout = _checked_dout(dout, cache, owner)
    return backward(dout[:, :, None, :], cache)[:, :, 0, :]


def _max_forward(x, kernel, stride, padding, out_hw, squeeze):
    xp = backend.namespace(x)
    KH, KW = kernel
    xpad = _kernels.pad2d(x, padding, value=-xp.inf)
    out = None
    idx_dtype = xp.uint8 if KH * KW < 256 else xp.int64
    impl = dispatch.lookup("max_pool_forward", xp, xpad)
    if impl is not None:
        out = xp.empty((x.shape[0], x.shape[1]) + tuple(out_hw), dtype=x.dtype)
        argmax = xp.empty(out.shape, dtype=idx_dtype)
        impl(xpad, KH, KW, *stride, out, argmax)
        return out, PoolCache(argmax, x.shape, kernel, stride, padding, squeeze)
    for i in range(KH):
        for j in range(KW):
            v = xpad[_kernels.offset_slice(i, j, out_hw, stride, (1, 1))]
            if out is None:
                out = v.copy()
                argmax = xp.zeros(out.shape, dtype=idx_dtype)
                continue
            # Strictly greater keeps the first maximum on ties; NaN always wins (torch CPU).
            upd = (v > out) | xp.isnan(v)
            out = xp.where(upd, v, out)
            argmax = xp.where(upd, idx_dtype(i * KW + j), argmax)
    return out, PoolCache(argmax, x.shape, kernel, stride, padding, squeeze)


def _max_backward(dout, cache: PoolCache):
    xp = backend.namespace(dout)
    argmax, x_shape, kernel, stride, padding, _ = cache
    N, C, H, W = x_shape
    KH, KW = kernel
    OH, OW = dout.shape[2:]
    impl = dispatch.lookup("max_pool_backward", xp, dout, argmax)
    if impl is not None:
        dxpad = _padded_zeros(dout, x_shape, padding)
        impl(dout, argmax, KH, KW, *stride, dxpad)
        return _kernels.crop2d(dxpad, padding, (H, W))
    if _tiled(kernel, stride, padding):
        dx = xp.zeros(x_shape, dtype=dout.dtype)
        offsets = xp.arange(KH * KW, dtype=argmax.dtype).reshape(KH, 1, KW)
        hit = argmax[:, :, :, None, :, None] == offsets  # (N, C, OH, KH, OW, KW)
        _blocks(dx, kernel, (OH, OW))[...] = xp.where(hit, dout[:, :, :, None, :, None], 0)
        return dx
    dxpad = _padded_zeros(dout, x_shape, padding)
    for i in range(KH):
        for j in range(KW):
            sl = _kernels.offset_slice(i, j, (OH, OW), stride, (1, 1))
            dxpad[sl] += xp.where(argmax == i * KW + j, dout, 0)
    return _kernels.crop2d(dxpad, padding, (H, W))


def _avg_forward(x, kernel, stride, padding, out_hw, squeeze):
    KH, KW = kernel
    xp = backend.namespace(x)
    impl = dispatch.lookup("avg_pool_forward", xp, x)
    if impl is not None:
        out = xp.empty((x.shape[0], x.shape[1]) + tuple(out_hw), dtype=x.dtype)
        impl(_kernels.pad2d(x, padding), KH, KW, *stride, out)
        return out, PoolCache(None, x.shape, kernel, stride, padding, squeeze)
    if _tiled(kernel, stride, padding):
        out = _blocks(x, kernel, out_hw).sum(axis=(3, 5))
    else:
        xpad = _kernels.pad2d(x, padding)
        out = None
        for i in range(KH):
            for j in range(KW):
                v = xpad[_kernels.offset_slice(i, j, out_hw, stride, (1, 1))]
                out = v.copy() if out is None else out + v
    out /= float(KH * KW)
    return out, PoolCache(None, x.shape, kernel, stride, padding, squeeze)


def _avg_backward(dout, cache: PoolCache):
    xp = backend.namespace(dout)
    _, x_shape, kernel, stride, padding, _ = cache
    N, C, H, W = x_shape
    KH, KW = kernel
    OH, OW = dout.shape[2:]
    share = dout / float(KH * KW)
    impl = dispatch.lookup("avg_pool_backward", xp, share)
    if impl is not None:
        dxpad = _padded_zeros(dout, x_shape, padding)
        impl(share, KH, KW, *stride, dxpad)
        return _kernels.crop2d(dxpad, padding, (H, W))
    if _tiled(kernel, stride, padding):
        dx = xp.zeros(x_shape, dtype=dout.dtype)
        _blocks(dx, kernel, (OH, OW))[...] = share[:, :, :, None, :, None]
        return dx
    dxpad = _padded_zeros(dout, x_shape, padding)
    for i in range(KH):
        for j in range(KW):
            dxpad[_kernels.offset_slice(i, j, (OH, OW), stride, (1, 1))] += share
    return _kernels.crop2d(dxpad, padding, (H, W))


def max_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """2D max pooling: ``out = max over each KH x KW window`` of the ``-inf``-padded input.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int, (int, int) or None (default: ``kernel_size``)
    padding : int or (int, int), at most half the kernel size

    Shape
    -----
    ``OH = floor((H + 2*ph - KH) / sh) + 1``, likewise ``OW`` (``ceil_mode=False``).

    Returns
    -------
    out : (N, C, OH, OW); cache : PoolCache (``argmax`` = first maximum per window)

    Raises
    ------
    ValueError
        Wrong rank, non-positive kernel/stride, padding above half the kernel, kernel
        larger than the padded input.
    """
    return _pool2d(_max_forward, x, kernel_size, stride, padding, "max_pool2d_forward")


def max_pool2d_backward(dout, cache: PoolCache):
    """Gradient of ``max_pool2d_forward``: each window's ``dout`` goes to its first maximum.

    Returns
    -------
    dx : (N, C, H, W)
    """
    return _max_backward(_checked_dout(dout, cache, "max_pool2d_backward"), cache)


def max_pool1d_forward(x, kernel_size, stride=None, padding=0):
    """1D max pooling on (N, C, L): ``max_pool2d_forward`` with a ``(1, K)`` window.

    Returns
    -------
    out : (N, C, OL); cache : PoolCache

    Raises
    ------
    ValueError
        As ``max_pool2d_forward``.
    """
    return _pool1d(_max_forward, x, kernel_size, stride, padding, "max_pool1d_forward")


def max_pool1d_backward(dout, cache: PoolCache):
    """Gradient of ``max_pool1d_forward``; returns ``dx`` (N, C, L)."""
    return _unpool1d(_max_backward, dout, cache, "max_pool1d_backward")


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """2D average pooling: ``out = sum over each KH x KW window of xpad / (KH*KW)``.

    Zero padding counts in the average (``count_include_pad=True``), ``ceil_mode=False``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size, stride, padding : as ``max_pool2d_forward``

    Returns
    -------
    out : (N, C, OH, OW); cache : PoolCache

    Raises
    ------
    ValueError
        As ``max_pool2d_forward``.
    """
    return _pool2d(_avg_forward, x, kernel_size, stride, padding, "avg_pool2d_forward")


def avg_pool2d_backward(dout, cache: PoolCache):
    """Gradient of ``avg_pool2d_forward``: each input gets ``dout / (KH*KW)`` per window."""
    return _avg_backward(_checked_dout(dout, cache, "avg_pool2d_backward"), cache)


def avg_pool1d_forward(x, kernel_size, stride=None, padding=0):
    """1D average pooling on (N, C, L), ``count_include_pad=True``.

    Returns
    -------
    out : (N, C, OL); cache : PoolCache

    Raises
    ------
    ValueError
        As ``max_pool2d_forward``.
    """
    return _pool1d(_avg_forward, x, kernel_size, stride, padding, "avg_pool1d_forward")


def avg_pool1d_backward(dout, cache: PoolCache):
    """Gradient of ``avg_pool1d_forward``; returns ``dx`` (N, C, L)."""
    return _unpool1d(_avg_backward, dout, cache, "avg_pool1d_backward")


class AdaptivePoolCache(NamedTuple):
    rows: object  # (OH, H) averaging matrix, row i = 1/len on bin i
    cols: object  # (OW, W)
    x_shape: tuple


def _bins(size: int, out: int, xp, dtype):
    """PyTorch's adaptive bins as a matrix: bin ``i`` is ``[floor(i*size/out),
    ceil((i+1)*size/out))`` and row ``i`` holds ``1/len`` on it."""
    i = xp.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    pos = xp.arange(size)
    inside = (pos >= start[:, None]) & (pos < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def adaptive_avg_pool2d_forward(x, output_size):
    """Adaptive 2D average pooling to ``output_size`` (1 = global average pooling).

    ``out[n, c, i, j] = mean of x[n, c, bin_i, bin_j]`` with PyTorch's bins
    ``[floor(i*H/OH), ceil((i+1)*H/OH))``; computed as ``R @ x @ S^T`` with the
    averaging matrices ``R (OH, H)``, ``S (OW, W)``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    output_size : int or (int or None, int or None); None keeps that input size

    Returns
    -------
    out : (N, C, OH, OW); cache : AdaptivePoolCache

    Raises
    ------
    ValueError
        Wrong rank or a non-positive output size.
    """
    owner = "adaptive_avg_pool2d_forward"
    check_input(x, 2, owner)
    N, C, H, W = x.shape
    if H == 0 or W == 0:
        raise ShapeError(f"{owner}: expected a non-empty spatial size (H, W), got input of shape "
                         f"{tuple(x.shape)}.")
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = tuple(H if o is None and k == 0 else W if o is None else o
                            for k, o in enumerate(output_size))
    OH, OW = as_tuple(output_size, 2, "output_size", owner)
    if OH <= 0 or OW <= 0:
        raise NormlabValueError(f"{owner}: expected positive output_size, got {(OH, OW)}.")
    xp = backend.namespace(x)
    if OH == 1 and OW == 1:  # global average pooling: no matrices needed
        return x.mean(axis=(2, 3), keepdims=True), AdaptivePoolCache(None, None, x.shape)
    rows, cols = _bins(H, OH, xp, x.dtype), _bins(W, OW, xp, x.dtype)
    out = xp.matmul(xp.matmul(rows, x), cols.T)
    return out, AdaptivePoolCache(rows, cols, x.shape)


def adaptive_avg_pool2d_backward(dout, cache: AdaptivePoolCache):
    """Gradient of ``adaptive_avg_pool2d_forward``: ``dx = R^T @ dout @ S``."""
    owner = "adaptive_avg_pool2d_backward"
    if not isinstance(cache, AdaptivePoolCache):
        raise NormlabTypeError(f"{owner}: expected the AdaptivePoolCache returned by the "
                               f"forward, got {type(cache).__name__}.")
    rows, cols, x_shape = cache
    out_hw = (1, 1) if rows is None else (rows.shape[0], cols.shape[0])
    dout = check_dout(dout, tuple(x_shape[:2]) + out_hw, owner, like=rows)
    xp = backend.namespace(dout)
    if rows is None:
        H, W = x_shape[2:]
        return xp.broadcast_to(dout / float(H * W), x_shape).copy()
    return xp.matmul(xp.matmul(rows.T, dout), cols)
