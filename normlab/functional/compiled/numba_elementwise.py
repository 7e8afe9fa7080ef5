"""Compiled (numba) elementwise activations: one pass each, see ``activation.py``.

NumPy's ``where(mask, dout, 0)`` on a ~50 % random mask (ReLU's backward) runs a
data-dependent branch per element that the CPU mispredicts half the time: 79 ms of
ResNet-20's ~380 ms step (batch 128, 1 thread). These loops compute the same values with
selects the compiler turns into branch-free vector code (ReLU backward 8.8 -> 1.9 ms on a
128x16x32x32 float32 array, leaky ReLU forward 11 -> 3.4, sigmoid forward 20 -> 11; CPU
time, 1 thread; sigmoid: see ``sigmoid_forward``). Same semantics as the reference, NaN
included: the backward keeps a NaN gradient where the mask is set and gives 0 where it is
not. The same bits too, but for float32 sigmoid, whose ``exp`` is computed in the loop
(``_fpmath.sigmoid32``, within 2 ulp of the correctly rounded value; the reference's
NumPy ``exp``, 3). ReLU's forward is NumPy's ``maximum`` on one thread (branch-free already; a compiled
loop measured no faster) and the compiled loop on more (``maximum`` is serial).

Each kernel is a serial loop. From ``_parallel_min()`` elements on, with more than one
normlab thread, ``_threads.over_batch`` runs it on contiguous parts of the arrays on
normlab's own pool (the threads conv and batch norm use). These kernels used numba's
``prange`` before: in a model pass its launches on numba's separate thread pool cost more
than they saved (2 threads, a whole pass in one process, alternating, min / median ms:
LeNet eval forward 14.1 / 16.0 with prange, 11.5 / 11.6 serial; ResNet-20 b128 train
step 301.7 / 309.0 with prange, 298.8 / 306.5 serial, 286.3 / 292.5 on normlab's pool).
Call sites pass C-contiguous float arrays of one shape (``activation._flat_pair``) and
run the reference code otherwise.
"""

from __future__ import annotations

import numba
import numpy as np

from normlab.functional import _parallel
from normlab.functional.compiled._fpmath import sigmoid32
from normlab.functional.compiled._threads import over_batch
from normlab.functional.dispatch import register

__all__ = ["bn_eval_affine", "bn_eval_sigmoid", "affine_sigmoid", "relu_forward",
           "relu_backward", "leaky_relu_forward", "leaky_relu_backward", "sigmoid_forward",
           "sigmoid_backward"]

PROVIDER = f"numba {numba.__version__}"
_jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")

# (the zero is passed in the data's dtype: a literal 0 would make the select float64)


def _parallel_min() -> int:
    """Elements from which a pass runs on more than one thread: twice
    ``_parallel.MIN_ELEMENTS`` (these passes are lighter than batch norm's; on ResNet-20
    b128 at 2 threads a ReLU of 1M elements took 0.85 ms split in two against 0.68 on one
    thread, while the 2M-element ones gained)."""
    return 2 * _parallel.MIN_ELEMENTS


@_jit
def _select(out, dout, dx, zero):
    for i in range(dout.size):
        dx[i] = dout[i] if out[i] > zero else zero


@_jit
def _select_inplace(out, dout, zero):
    """``_select`` with ``dx`` = ``dout``: one array written, so its loop stays vectorised
    (two aliasing arguments would send it to its scalar version, see
    ``_channel_affine_inplace``)."""
    for i in range(dout.size):
        dout[i] = dout[i] if out[i] > zero else zero


@_jit
def _relu(x, out, zero):
    for i in range(x.size):
        v = x[i]
        out[i] = v if v > zero or v != v else zero  # as maximum(x, 0): NaN kept, -0.0 -> 0


@_jit
def _select_scaled(positive, a, out, slope):
    for i in range(a.size):
        v = a[i]
        out[i] = v if positive[i] else v * slope


@_jit
def _positive(x, positive):
    for i in range(x.size):
        positive[i] = x[i] > 0


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
    """``_sigmoid_grad`` with ``dx`` = ``dout`` (see ``_select_inplace``)."""
    for i in range(dout.size):
        dout[i] = dout[i] * (one - s[i]) * s[i]


# inlined into its callers' IR: called as a function, the in-place kernel's one row
# passed twice reached the loop as two pointers, whose overlap check sent the loop to its
# scalar version (82 µs in place vs 14 µs inlined, 7x16x32x32 with a residual and ReLU)
@numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", inline="always")
def _affine_row(xr, r, o, m, sc, t, add, relu, zero):
    """``o = (xr - m) * sc + t``, then ``+ r`` where ``add`` and ``max(., 0)`` where
    ``relu`` (as ReLU's kernel: NaN kept, -0.0 -> 0): the separate ops' arithmetic in
    their order. One loop per flag setting (a test inside the loop would stop its
    vectorisation; four loops measured as fast as one). ``o`` may be ``xr`` itself."""
    B = xr.shape[0]
    if add and relu:
        for b in range(B):
            v = (xr[b] - m) * sc + t + r[b]
            o[b] = v if v > zero or v != v else zero
    elif relu:
        for b in range(B):
            v = (xr[b] - m) * sc + t
            o[b] = v if v > zero or v != v else zero
    elif add:
        for b in range(B):
            o[b] = (xr[b] - m) * sc + t + r[b]
    else:
        for b in range(B):
            o[b] = (xr[b] - m) * sc + t


@_jit
def _channel_affine(x, res, out, mean, scale, shift, add, relu, zero):
    """``_affine_row`` per channel of (A, C, B) views: ``out = (x - mean) * scale +
    shift`` (``+ res``, ReLU)."""
    A, C, B = x.shape
    for a in range(A):
        for c in range(C):
            _affine_row(x[a, c], res[a, c], out[a, c], mean[c], scale[c], shift[c], add,
                        relu, zero)


@_jit
def _channel_affine_inplace(out, res, mean, scale, shift, add, relu, zero):
    """``_channel_affine`` with ``x`` = ``out``, rewritten in place. A kernel of its own:
    given ``x`` and ``out`` as two arguments that alias, the loops' overlap check sends
    them to their scalar version (7x16x32x32 with a residual and ReLU: 82 µs in place,
    16 µs into another array); one row passed as both (inlined) is seen to be the same."""
    A, C, B = out.shape
    for a in range(A):
        for c in range(C):
            o = out[a, c]
            _affine_row(o, res[a, c], o, mean[c], scale[c], shift[c], add, relu, zero)


# each kernel on contiguous parts of its arrays on normlab's pool (``_threads.over_batch``,
# axis 0 of every array; scalars and per-channel vectors whole), from _parallel_min() on
_select_p = over_batch(_select, (0, 0, 0, None), _parallel_min)
_select_inplace_p = over_batch(_select_inplace, (0, 0, None), _parallel_min)
_relu_p = over_batch(_relu, (0, 0, None), _parallel_min)
_select_scaled_p = over_batch(_select_scaled, (0, 0, 0, None), _parallel_min)
_positive_p = over_batch(_positive, (0, 0), _parallel_min)
_sigmoid_grad_p = over_batch(_sigmoid_grad, (0, 0, 0, None), _parallel_min)
_sigmoid_grad_inplace_p = over_batch(_sigmoid_grad_inplace, (0, 0, None), _parallel_min)
_channel_affine_p = over_batch(_channel_affine, (0, 0, 0, None, None, None, None, None, None),
                               _parallel_min)
_channel_affine_inplace_p = over_batch(
    _channel_affine_inplace, (0, 0, None, None, None, None, None, None), _parallel_min)


def bn_eval_affine(x, mean, scale, beta, residual=None, relu=False, out=None):
    """``(x - mean) * scale + beta`` per channel of a C-contiguous (N, C, *) array, one pass
    (batch norm in eval mode); ``mean``, ``scale`` (keepdims) and ``beta`` in x's dtype.
    With ``residual`` (x's shape, dtype, C-contiguous) it is added to the result, with
    ``relu`` the result goes through ReLU, in the same pass (``functional.fused``).
    ``out``: where to write (x's shape and dtype, C-contiguous; ``x`` itself works: each
    value is read before it is written); a new array when None."""
    A, C = x.shape[0], x.shape[1]
    xv = x.reshape(A, C, -1)
    shift = np.zeros(C, x.dtype) if beta is None else np.ascontiguousarray(beta, x.dtype)
    res = xv if residual is None else residual.reshape(xv.shape)
    args = (np.ascontiguousarray(mean.reshape(C)), np.ascontiguousarray(scale.reshape(C)),
            shift, residual is not None, bool(relu), x.dtype.type(0))
    if out is x:
        _channel_affine_inplace_p(xv, res, *args)
        return out
    out = np.empty_like(x) if out is None else out
    _channel_affine_p(xv, res, out.reshape(xv.shape), *args)
    return out


def _flat(*arrays):
    return tuple(a.reshape(-1) for a in arrays)


def relu_forward(x):
    """``maximum(x, 0)``: NumPy's own (serial) under ``_parallel_min()`` elements or on one
    thread, else the compiled loop on normlab's threads."""
    if x.size < _parallel_min() or _parallel.thread_count() <= 1:
        return np.maximum(x, 0)
    out = np.empty_like(x)
    _relu_p(*_flat(x, out), x.dtype.type(0))
    return out


def relu_backward(out, dout, into=None):
    """``where(out > 0, dout, 0)`` (``out``: ReLU's output, of dout's dtype), into a new
    array, or over ``dout`` itself when ``into is dout``."""
    if into is dout:
        _select_inplace_p(*_flat(out, dout), dout.dtype.type(0))
        return dout
    dx = np.empty_like(dout)
    _select_p(*_flat(out, dout, dx), dout.dtype.type(0))
    return dx


def leaky_relu_forward(x, slope):
    """``(where(x > 0, x, x * slope), x > 0)``."""
    positive = np.empty(x.shape, dtype=np.bool_)
    _positive_p(*_flat(x, positive))
    out = np.empty_like(x)
    _select_scaled_p(*_flat(positive, x, out), x.dtype.type(slope))
    return out, positive


def leaky_relu_backward(positive, dout, slope):
    """``where(positive, dout, dout * slope)``."""
    dx = np.empty_like(dout)
    _select_scaled_p(*_flat(positive, dout, dx), dout.dtype.type(slope))
    return dx


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
    """``o = sigmoid32(float32((xr - m) * sc + t))``: ``_affine_row``'s arithmetic (in
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
    ``_channel_affine_inplace``)."""
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
    (``_channel_affine``'s arithmetic) and ``e = -|y|``, row after row."""
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
    C = x.shape[1]
    shift = np.zeros(C, x.dtype) if beta is None else np.ascontiguousarray(beta, x.dtype)
    return affine_sigmoid(x, np.ascontiguousarray(mean.reshape(C)),
                          np.ascontiguousarray(scale.reshape(C)), shift,
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
    if into is dout:
        _sigmoid_grad_inplace_p(*_flat(s, dout), dout.dtype.type(1))
        return dout
    dx = np.empty_like(dout)
    _sigmoid_grad_p(*_flat(s, dout, dx), dout.dtype.type(1))
    return dx


register("relu_forward", "numpy", relu_forward)
register("relu_backward", "numpy", relu_backward)
register("bn_eval_affine", "numpy", bn_eval_affine)
register("leaky_relu_forward", "numpy", leaky_relu_forward)
register("leaky_relu_backward", "numpy", leaky_relu_backward)
register("sigmoid_forward", "numpy", sigmoid_forward)
register("bn_eval_sigmoid", "numpy", bn_eval_sigmoid)
register("sigmoid_backward", "numpy", sigmoid_backward)
