"""Compiled (numba) CPU kernels for the stages of batch norm, NumPy arrays only.

The reference stages in ``batchnorm_stages.py`` make about eleven passes over the data
with ufuncs; these kernels make five (moments: mean, variance; forward: normalise +
affine; backward: both sums, ``dx``) and accumulate in float64, so they are both faster
and more accurate in float32. Same two-pass statistics, same closed-form backward. No
``x_hat`` array is written: the backward kernels read the input the cache keeps and form
``x_hat = (x - mean) * inv_std`` per element in float64.
Registered with the dispatch as ``bn_moments``, ``bn_normalize_affine``,
``bn_grad_sums``, ``bn_grad_input`` for ``"numpy"``, and ``bn_forward``/``bn_backward``:
the one-process training forward and backward, those stages channel by channel in one
kernel (a channel's data read again from L2, not from memory; the same bits). The call
sites use them only for
float32/float64 input reduced over every axis but the channel axis 1, ``(0, 2, 3, ...)``.

The input is viewed as ``(A, C, B)``: ``A`` = product of the axes before the channel
axis, ``B`` = product of those after (``(N, C)``: B = 1; ``(N, C, H, W)``: B = H*W).
The (A, C, B) kernels split the channels over ``normlab.set_num_threads`` threads
(``functional/_parallel``; bit-identical for any count), the (A, C) ones run on one
thread; numba compiles them on first use (cached on disk).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from normlab.functional import _parallel
from normlab.functional.compiled import numba_sigmoid
from normlab.functional.compiled._bn_rows import (_coefficients, _dx_row, _dx_row_2d,
                                                  _grad_sums_row, _inv_std, _normalize_row,
                                                  _sum_dev, _sum_sq_dev, _times)
from normlab.functional.dispatch import register

__all__ = ["moments", "normalize_affine", "normalize_sigmoid", "grad_sums", "grad_input",
           "forward", "backward"]

PROVIDER = f"numba {numba.__version__}"
_kernels = None


def _build(cache: bool = True):
    jit = numba.njit(cache=cache, nogil=True, fastmath={"reassoc", "nsz", "arcp"})

    # The (A, C, B) kernels work on the channels c0 <= c < c1 only (``_over_channels``
    # runs disjoint ranges on threads): each channel's numbers come from the same code
    # whatever the range, so results are bit-identical for any thread count.
    @jit
    def stats(x, mean, var, c0, c1):  # x (A, C, B); mean, var (C,) float64
        A, C, B = x.shape
        mean[c0:c1] = 0.0
        var[c0:c1] = 0.0
        # Sum deviations from one sample per channel, then add it back: a constant channel
        # (or |mean| >> std, e.g. 1e30) then gets its mean exactly, not off by an ulp that
        # the variance would square into a spurious 1e28 (issue 10, item 11).
        shift = np.empty(C, np.float64)
        for c in range(c0, c1):
            shift[c] = x[0, c, 0]
        for a in range(A):
            for c in range(c0, c1):
                mean[c] += _sum_dev(x[a, c], shift[c])
        m = A * B
        for c in range(c0, c1):
            mean[c] = shift[c] + mean[c] / m
        for a in range(A):  # second pass: mean of squared deviations
            for c in range(c0, c1):
                var[c] += _sum_sq_dev(x[a, c], mean[c])
        for c in range(c0, c1):
            var[c] /= m

    @jit
    def stats_2d(x, mean, var):  # x (A, C): the channel loop is the contiguous one
        A, C = x.shape
        mean[:] = 0.0
        var[:] = 0.0
        for a in range(A):  # deviations from the first row: see ``stats``
            for c in range(C):
                mean[c] += x[a, c] - x[0, c]
        for c in range(C):
            mean[c] = x[0, c] + mean[c] / A
        for a in range(A):
            for c in range(C):
                d = x[a, c] - mean[c]
                var[c] += d * d
        for c in range(C):
            var[c] /= A

    # The kernels below never store x_hat: the forward writes only ``out``, and the
    # backward recomputes x_hat = (x - mean) * inv_std per element from the input the
    # cache keeps (the difference taken in float64). (Their row helpers are module-level
    # functions: a jitted helper from this closure made them uncacheable, and every
    # process compiled them again, 1.7-2 s.)
    @jit
    def normalize_affine(x, res, mean, scale, beta, out, add, relu, zero, c0, c1):
        A = x.shape[0]
        for a in range(A):
            for c in range(c0, c1):
                _normalize_row(x[a, c], res[a, c], out[a, c], mean[c], scale[c], beta[c],
                               add, relu, zero)

    @jit
    def normalize_affine_2d(x, res, mean, scale, beta, out, add, relu, zero):
        A, C = x.shape
        for a in range(A):
            o = out[a]
            for c in range(C):
                o[c] = (x[a, c] - mean[c]) * scale[c] + beta[c]
            if add or relu:
                r = res[a]
                for c in range(C):
                    v = o[c] + r[c] if add else o[c]
                    o[c] = v if not relu or v > zero or v != v else zero

    @jit
    def grad_sums(dy, x, mean, inv_std, sum_dy, sum_dyx, c0, c1):
        # sum(dy * x_hat) = inv_std * sum(dy * (x - mean)) per channel
        A = dy.shape[0]
        sum_dy[c0:c1] = 0.0
        sum_dyx[c0:c1] = 0.0
        for a in range(A):
            for c in range(c0, c1):
                s, t = _grad_sums_row(dy[a, c], x[a, c], mean[c])
                sum_dy[c] += s
                sum_dyx[c] += t
        for c in range(c0, c1):
            sum_dyx[c] *= inv_std[c]

    @jit
    def grad_sums_2d(dy, x, mean, inv_std, sum_dy, sum_dyx):
        A, C = dy.shape
        sum_dy[:] = 0.0
        sum_dyx[:] = 0.0
        for a in range(A):
            for c in range(C):
                g = dy[a, c]
                sum_dy[c] += g
                sum_dyx[c] += g * (x[a, c] - mean[c])
        for c in range(C):
            sum_dyx[c] *= inv_std[c]

    @jit
    def grad_input(dy, x, mean, k, shift, slope, dx, c0, c1):
        for a in range(dy.shape[0]):
            for c in range(c0, c1):
                _dx_row(dy[a, c], x[a, c], dx[a, c], mean[c], k[c], shift[c], slope[c])

    @jit
    def grad_input_2d(dy, x, mean, k, shift, slope, dx):
        for a in range(dy.shape[0]):
            _dx_row_2d(dy[a], x[a], dx[a], mean, k, shift, slope)

    @jit
    def grad_input_over(dy, x, mean, k, shift, slope, c0, c1):
        for a in range(dy.shape[0]):
            for c in range(c0, c1):
                o = dy[a, c]
                _dx_row(o, x[a, c], o, mean[c], k[c], shift[c], slope[c])

    @jit
    def grad_input_over_2d(dy, x, mean, k, shift, slope):
        for a in range(dy.shape[0]):
            o = dy[a]
            _dx_row_2d(o, x[a], o, mean, k, shift, slope)

    # Training forward and backward channel by channel (``forward``, ``backward``): the
    # loops above, restricted to one channel, one after the other. A channel's data
    # (128x32x32 float32: 512 KiB) is still in L2 when its next pass reads it; the stages
    # above each sweep every channel (8 MiB at 128x16x32x32) before the next begins.
    @jit
    def forward(x, res, mean, var, inv_std, gamma, beta, eps, out, add, relu, zero, c0, c1):
        A, C, B = x.shape
        m = A * B
        shift = np.empty(C, np.float64)
        for c in range(c0, c1):  # ``stats``
            shift[c] = x[0, c, 0]
            mean[c] = 0.0
            var[c] = 0.0
            for a in range(A):
                mean[c] += _sum_dev(x[a, c], shift[c])
            mean[c] = shift[c] + mean[c] / m
            for a in range(A):
                var[c] += _sum_sq_dev(x[a, c], mean[c])
            var[c] /= m
            inv_std[c] = _inv_std(var[c], eps)  # ``_affine_f64``, then ``normalize_affine``
            k = _times(inv_std[c], gamma[c])
            for a in range(A):
                _normalize_row(x[a, c], res[a, c], out[a, c], mean[c], k, beta[c], add, relu,
                               zero)

    @jit
    def backward(dy, x, mean, inv_std, k, count, sum_dy, sum_dyx, dx, over, c0, c1):
        A, C = dy.shape[:2]
        shift, slope = np.empty(C, np.float64), np.empty(C, np.float64)
        for c in range(c0, c1):  # ``grad_sums``
            sum_dy[c] = 0.0
            sum_dyx[c] = 0.0
            for a in range(A):
                s, t = _grad_sums_row(dy[a, c], x[a, c], mean[c])
                sum_dy[c] += s
                sum_dyx[c] += t
            sum_dyx[c] *= inv_std[c]
            # ``_backward_elementwise``'s shift and slope, then ``grad_input(_over)``
            _coefficients(sum_dy, sum_dyx, inv_std, count, shift, slope, c)
            for a in range(A):
                if over:  # dx over dy: one row passed as both (see _row above)
                    o = dy[a, c]
                    _dx_row(o, x[a, c], o, mean[c], k[c], shift[c], slope[c])
                else:
                    _dx_row(dy[a, c], x[a, c], dx[a, c], mean[c], k[c], shift[c], slope[c])

    return {"stats": (stats, stats_2d), "affine": (normalize_affine, normalize_affine_2d),
            "sums": (grad_sums, grad_sums_2d), "dx": (grad_input, grad_input_2d),
            "dx_over": (grad_input_over, grad_input_over_2d), "forward": (forward, None),
            "backward": (backward, None)}


def _kernel(name: str, flat: bool):
    global _kernels
    if _kernels is None:
        try:
            _kernels = _build()
        except RuntimeError:  # no writable cache location (read-only install): compile only
            _kernels = _build(cache=False)
    return _kernels[name][1 if flat else 0]


def _run(kernel, flat, x, *args):
    """``kernel(*args)`` (2D) or ``kernel(*args, c0, c1)`` over disjoint channel ranges on
    ``normlab.set_num_threads`` threads (3D arrays of at least ``_parallel.MIN_ELEMENTS``
    elements)."""
    if flat:
        kernel(*args)
        return
    C = x.shape[1]
    k = _parallel.threads_for(x, C) if x.size >= _parallel.MIN_ELEMENTS else 1
    bounds = [C * i // k for i in range(k + 1)]
    _parallel.run(k, lambda i, _: kernel(*args, bounds[i], bounds[i + 1]), k)


def _view(a):
    """``(A, C, B)`` view of a contiguous array, or ``(A, C)`` when B == 1."""
    A, C = a.shape[0], a.shape[1]
    B = math.prod(a.shape[2:])
    a = np.ascontiguousarray(a)
    return (a.reshape(A, C), True) if B == 1 else (a.reshape(A, C, B), False)


def moments(x):
    """Two-pass per-channel ``(mean, biased var)`` of ``x`` (N, C, *), float64 (C,) arrays."""
    C = x.shape[1]
    xv, flat = _view(x)
    mean = np.empty(C, np.float64)
    var = np.empty(C, np.float64)
    _run(_kernel("stats", flat), flat, xv, xv, mean, var)
    return mean, var


def normalize_affine(x, mean, inv_std, gamma, beta, residual=None, relu=False):
    """``out = (x - mean) * inv_std * gamma + beta`` in one pass (no ``x_hat`` kept).

    ``mean`` and ``inv_std`` are float64 (C,) vectors (the difference is taken in float64);
    ``gamma``/``beta`` may be None. Returns ``out``, of the shape and dtype of ``x``.
    ``residual`` (x's shape and dtype, C-contiguous) is added to ``out`` and ``relu``
    applied after, in x's dtype, in the same pass (``functional.fused``).
    """
    dt = x.dtype
    xv, flat = _view(x)
    scale, b = _affine_f64(x, inv_std, gamma, beta)
    out = np.empty(x.shape, dt)
    res = xv if residual is None else residual.reshape(xv.shape)
    _run(_kernel("affine", flat), flat, xv, xv, res, np.ascontiguousarray(mean, np.float64),
         scale, b, out.reshape(xv.shape), residual is not None, bool(relu), dt.type(0))
    return out


def _affine_f64(x, inv_std, gamma, beta):
    """float64 ``scale = inv_std * gamma`` and ``shift = beta`` (zeros for None), (C,)."""
    C = x.shape[1]
    scale = np.asarray(inv_std, np.float64)
    if gamma is not None:
        scale = scale * np.asarray(gamma, np.float64)
    shift = np.zeros(C, np.float64) if beta is None else np.asarray(beta, np.float64)
    return np.ascontiguousarray(scale), np.ascontiguousarray(shift)


def normalize_sigmoid(x, mean, inv_std, gamma, beta):
    """``sigmoid(normalize_affine(x, ...))`` with the same bits as the compiled separate
    ops: the normalising pass's arithmetic (float64 difference, rounded to x's dtype), then
    the sigmoid (``numba_sigmoid.affine_sigmoid``: float32 in the same pass, float64
    through block buffers and NumPy's ``exp``)."""
    scale, shift = _affine_f64(x, inv_std, gamma, beta)
    return numba_sigmoid.affine_sigmoid(
        np.ascontiguousarray(x), np.ascontiguousarray(mean, np.float64), scale, shift,
        lambda: normalize_affine(x, mean, inv_std, gamma, beta))


def grad_sums(dout, x, mean, inv_std):
    """Per-channel ``(sum(dy), sum(dy * x_hat))`` with ``x_hat = (x - mean) * inv_std``
    recomputed per element; float64 (C,) ``mean``, ``inv_std`` and results."""
    C = x.shape[1]
    dyv, flat = _view(dout.astype(x.dtype, copy=False))
    xv = _view(x)[0]
    sum_dy = np.empty(C, np.float64)
    sum_dyx = np.empty(C, np.float64)
    _run(_kernel("sums", flat), flat, dyv, dyv, xv, np.ascontiguousarray(mean, np.float64),
         np.ascontiguousarray(inv_std, np.float64), sum_dy, sum_dyx)
    return sum_dy, sum_dyx


def grad_input(dout, x, mean, inv_std, k, shift, slope, into=None):
    """``dx = k * (dy - shift - x_hat * slope)``, ``x_hat = (x - mean) * inv_std`` recomputed
    per element; float64 (C,) ``mean``, ``inv_std``, ``k``, ``shift``, ``slope``. Into a
    new array, or over ``dout`` itself when ``into is dout`` (x's dtype, C-contiguous)."""
    dt = x.dtype
    dyv, flat = _view(dout.astype(dt, copy=False))
    xv = _view(x)[0]
    slope = np.asarray(slope, np.float64) * np.asarray(inv_std, np.float64)
    args = (np.ascontiguousarray(mean, np.float64), np.ascontiguousarray(k, np.float64),
            np.ascontiguousarray(shift, np.float64), np.ascontiguousarray(slope))
    if into is dout:  # the caller checked it (validation.overwritable): dyv is its view
        _run(_kernel("dx_over", flat), flat, dyv, dyv, xv, *args)
        return dout
    dx = np.empty(x.shape, dt)
    _run(_kernel("dx", flat), flat, dyv, dyv, xv, *args, dx.reshape(dyv.shape))
    return dx


# Shortest row (the values of one sample and channel) in bytes for which ``forward`` and
# ``backward`` go channel by channel; for shorter rows (the ``flat`` case too) they return
# None and the caller runs the stages. Going channel by channel reads rows one sample apart (C rows), and short rows
# then cost more than the second read from memory saves. Measured (CPU ms, 1 thread /
# wall, 2 threads; best of 60, six rotating inputs, forward with residual + ReLU /
# backward over dout; stages -> channel by channel): 128x16x32x32 3.33 -> 3.07 / 2.34 ->
# 2.13 and 2.20 -> 1.64 / 1.31 -> 1.14; 32x16x32x32 0.68 -> 0.52 / 0.40 -> 0.33;
# 128x32x16x16 1.50 -> 1.76 / 0.81 -> 1.13 (two threads 1.08 -> 1.02 / 0.78 -> 0.65);
# 128x64x8x8 0.63 -> 0.83 / 0.40 -> 0.41.
MIN_ROW_BYTES = 4096


def _by_channel(x) -> bool:
    """Whether ``forward``/``backward`` run channel by channel on ``x`` (not the stages)."""
    return x.ndim > 2 and math.prod(x.shape[2:]) * x.itemsize >= MIN_ROW_BYTES


def forward(x, gamma, beta, eps, residual=None, relu=False):
    """Training forward of an (N, C, *) input channel by channel: ``moments``, then
    ``normalize_affine`` (with ``residual`` and ``relu``), in one kernel and one pass over
    each channel's data from memory; the same bits as those two calls. Returns ``(out,
    mean, var, inv_std)`` (``out`` of x's shape and dtype, float64 (C,) statistics,
    ``inv_std = 1 / sqrt(var + eps)``), or None where the rows are short
    (``MIN_ROW_BYTES``): the caller runs the stages."""
    if not _by_channel(x):
        return None
    xv = _view(x)[0]  # (A, C, B): rows long enough (B > 1)
    C = x.shape[1]
    mean, var, inv_std = (np.empty(C, np.float64) for _ in range(3))
    gamma = np.ones(C, np.float64) if gamma is None else np.asarray(gamma, np.float64)
    shift = np.zeros(C, np.float64) if beta is None else np.asarray(beta, np.float64)
    out = np.empty(x.shape, x.dtype)
    res = xv if residual is None else residual.reshape(xv.shape)
    _run(_kernel("forward", False), False, xv, xv, res, mean, var, inv_std,
         np.ascontiguousarray(gamma), np.ascontiguousarray(shift), float(eps),
         out.reshape(xv.shape), residual is not None, bool(relu), x.dtype.type(0))
    return out, mean, var, inv_std


def backward(dout, x, mean, inv_std, k, count, into=None):
    """Training backward of an (N, C, *) input channel by channel: ``grad_sums``, then
    ``grad_input`` with ``shift = sum_dy / count`` and ``slope = sum_dyx / count``, in one
    kernel; the same bits as those calls. ``k``: float64 (C,) ``inv_std * gamma``
    (``inv_std`` as the cache keeps it, in x's dtype); ``into is dout``: dx over dout.
    Returns ``(dx, sum_dy, sum_dyx)``, or None where the rows are short
    (``MIN_ROW_BYTES``): the caller runs the stages."""
    if not _by_channel(x):
        return None
    dyv = _view(dout.astype(x.dtype, copy=False))[0]  # (A, C, B), B > 1
    xv = _view(x)[0]
    C = x.shape[1]
    sum_dy, sum_dyx = np.empty(C, np.float64), np.empty(C, np.float64)
    over = into is dout  # the caller checked it (validation.overwritable): dyv is its view
    dx = dout if over else np.empty(x.shape, x.dtype)
    _run(_kernel("backward", False), False, dyv, dyv, xv, np.ascontiguousarray(mean, np.float64),
         np.ascontiguousarray(inv_std, np.float64), np.ascontiguousarray(k, np.float64),
         int(count), sum_dy, sum_dyx, dx.reshape(dyv.shape), over)
    return dx, sum_dy, sum_dyx


register("bn_moments", "numpy", moments)
register("bn_forward", "numpy", forward)
register("bn_backward", "numpy", backward)
register("bn_normalize_affine", "numpy", normalize_affine)
register("bn_normalize_sigmoid", "numpy", normalize_sigmoid)
register("bn_grad_sums", "numpy", grad_sums)
register("bn_grad_input", "numpy", grad_input)
