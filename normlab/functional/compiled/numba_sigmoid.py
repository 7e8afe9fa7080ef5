"""Compiled (numba) sigmoid: its forward, its backward, and batch norm's affine followed by
it (``functional.fused``), see ``activation.py``.

Float64 gives the reference's bits: ``-|x|`` and the select compiled, NumPy's ``exp``
between them, in cache-sized blocks (``_sigmoid_blocks``; forward 20 -> 11 ms on a
128x16x32x32 array against the reference, CPU time, 1 thread). Float32 is one pass with
its own ``exp`` (``_fpmath.sigmoid32``: within 2 ulp of the correctly rounded value, the
reference's NumPy ``exp`` 3; 256x6x28x28: 0.68 -> 0.235 ms). The backward is the
reference's operations in its order, one pass. Threads, call sites and contiguity as in
``numba_elementwise``, whose ``_jit``, ``_flat``, ``_parallel_min``, ``bn_eval_affine``,
``eval_vectors`` and ``grad_pass`` these build on.
"""

from __future__ import annotations

import numba
import numpy as np

from normlab.functional.compiled._fpmath import sigmoid32
from normlab.functional.compiled._threads import over_batch
from normlab.functional.compiled.numba_elementwise import (_flat, _jit, _parallel_min,
                                                           bn_eval_affine, eval_vectors,
                                                           grad_pass)
from normlab.functional.dispatch import register

__all__ = ["bn_eval_sigmoid", "affine_sigmoid", "sigmoid_forward", "sigmoid_backward"]

PROVIDER = f"numba {numba.__version__}"


@_jit
def _sigmoid(x, e, out, one):
    for i in range(x.size):
        d = one + e[i]
        out[i] = one / d if x[i] >= 0 else e[i] / d


@_jit
def _neg_abs(x, e):
    for i in range(x.size):
        e[i] = -abs(x[i])  # np.negative(np.abs(x)): the same bits, NaN's sign included


@_jit
def _sigmoid_grad(s, dout, dx, one):
    for i in range(dout.size):
        dx[i] = dout[i] * (one - s[i]) * s[i]


@_jit
def _sigmoid_grad_inplace(s, dout, one):
    """``_sigmoid_grad`` with ``dx`` = ``dout`` (see
    ``numba_elementwise._select_inplace``)."""
    for i in range(dout.size):
        dout[i] = dout[i] * (one - s[i]) * s[i]


_sigmoid_grad_p = over_batch(_sigmoid_grad, (0, 0, 0, None), _parallel_min)
_sigmoid_grad_inplace_p = over_batch(_sigmoid_grad_inplace, (0, 0, None), _parallel_min)


# Elements per block of float64 sigmoid's three passes: its ``-|x|`` and ``exp`` (128 KiB in
# float64) stay in cache between the passes (256x6x28x28 float32, 1 thread: 1.46 ms in
# three whole-array passes, 0.93 in 16384-element blocks; 2048: 1.52, 8192: 1.04, 65536:
# 0.98).
SIGMOID_BLOCK = 16384


def _sigmoid_blocks(x, out):
    """``out = sigmoid(x)`` on flat arrays, block by block: ``-|x|`` (compiled), NumPy's
    vectorised ``exp`` (numba's scalar ``expf`` in the loop measured 4-5x slower than
    PyTorch's sigmoid) in place, then one select for the two stable branches."""
    n = x.size
    e = np.empty(min(n, SIGMOID_BLOCK), x.dtype)
    one = x.dtype.type(1)
    for lo in range(0, n, SIGMOID_BLOCK):
        hi = min(lo + SIGMOID_BLOCK, n)
        xs, es = x[lo:hi], e[:hi - lo]
        _neg_abs(xs, es)
        np.exp(es, out=es)
        _sigmoid(xs, es, out[lo:hi], one)


_sigmoid_blocks_p = over_batch(_sigmoid_blocks, (0, 0), _parallel_min)


@_jit
def _sigmoid_f32(x, out):
    """``out = sigmoid(x)`` on flat float32 arrays, one pass (``_fpmath.sigmoid32``)."""
    for i in range(x.size):
        out[i] = sigmoid32(x[i])


_sigmoid_f32_p = over_batch(_sigmoid_f32, (0, 0), _parallel_min)


@numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", inline="always")
def _affine_sigmoid_row(xr, o, m, sc, t):
    """``o = sigmoid32(float32((xr - m) * sc + t))``: ``numba_elementwise._affine_row``'s arithmetic (in
    the vectors' dtype), rounded to float32 as batch norm's output is, then the sigmoid.
    ``o`` may be ``xr`` itself (inlined, see ``_affine_row``)."""
    for b in range(xr.shape[0]):
        o[b] = sigmoid32(np.float32((xr[b] - m) * sc + t))


@_jit
def _channel_affine_sigmoid_f32(x, out, mean, scale, shift):
    """``_affine_sigmoid_row`` per channel of float32 (A, C, B) views."""
    A, C, B = x.shape
    for a in range(A):
        for c in range(C):
            _affine_sigmoid_row(x[a, c], out[a, c], mean[c], scale[c], shift[c])


@_jit
def _channel_affine_sigmoid_f32_inplace(out, mean, scale, shift):
    """``_channel_affine_sigmoid_f32`` with ``x`` = ``out`` (see
    ``numba_elementwise._channel_affine_inplace``)."""
    A, C, B = out.shape
    for a in range(A):
        for c in range(C):
            o = out[a, c]
            _affine_sigmoid_row(o, o, mean[c], scale[c], shift[c])


_channel_affine_sigmoid_f32_p = over_batch(_channel_affine_sigmoid_f32, (0, 0, None, None, None),
                                           _parallel_min)
_channel_affine_sigmoid_f32_inplace_p = over_batch(
    _channel_affine_sigmoid_f32_inplace, (0, None, None, None), _parallel_min)


@_jit
def _affine_neg_abs(x, y, e, mean, scale, shift, r0, r1):
    """Rows ``r0 <= r < r1`` of the (A, C, B) view ``x`` (row ``r`` = ``(r // C, r % C)``)
    into the block buffers: ``y = (x - mean) * scale + shift`` per channel
    (``numba_elementwise._channel_affine``'s arithmetic) and ``e = -|y|``, row after row."""
    C, B = x.shape[1], x.shape[2]
    k = 0
    for r in range(r0, r1):
        c = r % C
        xr = x[r // C, c]
        m, sc, t = mean[c], scale[c], shift[c]
        yr, er = y[k:k + B], e[k:k + B]  # (indexing y[k + b] measured 1.7x slower)
        for b in range(B):
            v = (xr[b] - m) * sc + t
            yr[b] = v
            er[b] = -abs(v)
        k += B


def _bn_sigmoid_rows(x, out, mean, scale, shift):
    """``out = sigmoid((x - mean) * scale + shift)`` on (A, C, B) views, in blocks of whole
    rows of about ``SIGMOID_BLOCK`` elements: the affine and ``-|y|`` (one compiled loop
    into two block buffers), NumPy's ``exp`` on the block, the select into ``out`` (not
    in place: the compiler's overlap check would turn an aliased select scalar, 1.6x
    slower)."""
    A, C, B = x.shape
    rows = max(1, SIGMOID_BLOCK // max(B, 1))
    y = np.empty(min(A * C, rows) * B, x.dtype)
    e = np.empty_like(y)
    one = x.dtype.type(1)
    of = out.reshape(-1)
    for r0 in range(0, A * C, rows):
        r1 = min(r0 + rows, A * C)
        n = (r1 - r0) * B
        ys, es = y[:n], e[:n]
        _affine_neg_abs(x, ys, es, mean, scale, shift, r0, r1)
        np.exp(es, out=es)
        _sigmoid(ys, es, of[r0 * B:r1 * B], one)


bn_sigmoid_rows = over_batch(_bn_sigmoid_rows, (0, 0, None, None, None), _parallel_min)


def affine_sigmoid(x, mean, scale, shift, affine, out=None):
    """``sigmoid((x - mean) * scale + shift)`` per channel of a C-contiguous (N, C, *)
    array in one pass (float32: ``_channel_affine_sigmoid_f32``; float64:
    ``_bn_sigmoid_rows``; (C,) vectors: x's dtype for eval, float64 for training). Rows of
    fewer than 8 values ((N, C) input: one value per row, too short for a loop each) run
    ``sigmoid_forward(affine())`` instead: the separate ops. ``out``: where to write (x's
    shape and dtype, C-contiguous; ``x`` itself works: each value, or each block of rows,
    is read before its results are written); a new array when None, and on the short-rows
    path."""
    A, C = x.shape[0], x.shape[1]
    xv = x.reshape(A, C, -1)
    if xv.shape[2] < 8:
        return sigmoid_forward(affine())
    f32 = x.dtype == np.float32  # one pass, the exp inline (_fpmath.sigmoid32)
    if f32 and out is x:
        _channel_affine_sigmoid_f32_inplace_p(xv, mean, scale, shift)
        return out
    out = np.empty_like(x) if out is None else out
    kernel = _channel_affine_sigmoid_f32_p if f32 else bn_sigmoid_rows
    kernel(xv, out.reshape(xv.shape), mean, scale, shift)
    return out


def bn_eval_sigmoid(x, mean, scale, beta, out=None):
    """``sigmoid((x - mean) * scale + beta)``: batch norm in eval mode, then Sigmoid
    (``functional.fused``), the same bits as ``bn_eval_affine`` then ``sigmoid_forward``;
    ``out`` as ``affine_sigmoid``'s."""
    return affine_sigmoid(x, *eval_vectors(x, mean, scale, beta),
                          lambda: bn_eval_affine(x, mean, scale, beta), out)


def sigmoid_forward(x):
    """``1 / (1 + exp(-x))`` by the same two stable branches as the reference: float32 in
    one pass with its own ``exp`` (``_fpmath.sigmoid32``: within 2 ulp of the correctly
    rounded sigmoid, as PyTorch's; the reference's NumPy ``exp`` gives up to 3), float64
    with NumPy's ``exp`` (``_sigmoid_blocks``: the reference's bits)."""
    out = np.empty_like(x)
    if x.dtype == np.float32:
        _sigmoid_f32_p(*_flat(x, out))
    else:
        _sigmoid_blocks_p(*_flat(x, out))
    return out


def sigmoid_backward(s, dout, into=None):
    """``dout * (1 - s) * s`` in one pass, the reference's operations in its order
    (``s``: the forward's output, of dout's dtype), into a new array, or over ``dout``
    itself when ``into is dout``."""
    return grad_pass(_sigmoid_grad_p, _sigmoid_grad_inplace_p, s, dout, into, 1)


register("sigmoid_forward", "numpy", sigmoid_forward)
register("bn_eval_sigmoid", "numpy", bn_eval_sigmoid)
register("sigmoid_backward", "numpy", sigmoid_backward)
