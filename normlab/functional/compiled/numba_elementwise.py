"""Compiled (numba) elementwise activations: one pass each, see ``activation.py``.

NumPy's ``where(mask, dout, 0)`` on a ~50 % random mask (ReLU's backward) runs a
data-dependent branch per element that the CPU mispredicts half the time: 79 ms of
ResNet-20's ~380 ms step (batch 128, 1 thread). These loops compute the same values with
selects the compiler turns into branch-free vector code (ReLU backward 8.8 -> 1.9 ms on a
128x16x32x32 float32 array, leaky ReLU forward 11 -> 3.4; CPU time, 1 thread). Same
semantics and the same bits as the reference, NaN included: the backward keeps a NaN
gradient where the mask is set and gives 0 where it is not. ReLU's forward is NumPy's
``maximum`` on one thread (branch-free already; a compiled loop measured no faster) and
the compiled loop on more (``maximum`` is serial). Sigmoid's kernels, which build on
these, are in ``numba_sigmoid``.

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
from normlab.functional.compiled._threads import over_batch
from normlab.functional.dispatch import register

__all__ = ["bn_eval_affine", "relu_forward", "relu_backward", "leaky_relu_forward",
           "leaky_relu_backward"]

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
_channel_affine_p = over_batch(_channel_affine, (0, 0, 0, None, None, None, None, None, None),
                               _parallel_min)
_channel_affine_inplace_p = over_batch(
    _channel_affine_inplace, (0, 0, None, None, None, None, None, None), _parallel_min)


def eval_vectors(x, mean, scale, beta):
    """Batch norm eval's ``(mean, scale, shift)`` per channel of ``x`` (N, C, *): (C,)
    C-contiguous vectors in x's dtype, ``shift`` zeros where ``beta`` is None."""
    C = x.shape[1]
    shift = np.zeros(C, x.dtype) if beta is None else np.ascontiguousarray(beta, x.dtype)
    return np.ascontiguousarray(mean.reshape(C)), np.ascontiguousarray(scale.reshape(C)), shift


def bn_eval_affine(x, mean, scale, beta, residual=None, relu=False, out=None):
    """``(x - mean) * scale + beta`` per channel of a C-contiguous (N, C, *) array, one pass
    (batch norm in eval mode); ``mean``, ``scale`` (keepdims) and ``beta`` in x's dtype.
    With ``residual`` (x's shape, dtype, C-contiguous) it is added to the result, with
    ``relu`` the result goes through ReLU, in the same pass (``functional.fused``).
    ``out``: where to write (x's shape and dtype, C-contiguous; ``x`` itself works: each
    value is read before it is written); a new array when None."""
    A, C = x.shape[0], x.shape[1]
    xv = x.reshape(A, C, -1)
    res = xv if residual is None else residual.reshape(xv.shape)
    args = eval_vectors(x, mean, scale, beta) + (residual is not None, bool(relu),
                                                 x.dtype.type(0))
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


def grad_pass(kernel, inplace, saved, dout, into, const):
    """An activation's backward pass: ``kernel(saved, dout, dx, const)`` into a new ``dx``,
    or ``inplace(saved, dout, const)`` over ``dout`` itself when ``into is dout`` (flat
    views; ``const`` in dout's dtype)."""
    const = dout.dtype.type(const)
    if into is dout:
        inplace(*_flat(saved, dout), const)
        return dout
    dx = np.empty_like(dout)
    kernel(*_flat(saved, dout, dx), const)
    return dx


def relu_backward(out, dout, into=None):
    """``where(out > 0, dout, 0)`` (``out``: ReLU's output, of dout's dtype), into a new
    array, or over ``dout`` itself when ``into is dout``."""
    return grad_pass(_select_p, _select_inplace_p, out, dout, into, 0)


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


register("relu_forward", "numpy", relu_forward)
register("relu_backward", "numpy", relu_backward)
register("bn_eval_affine", "numpy", bn_eval_affine)
register("leaky_relu_forward", "numpy", leaky_relu_forward)
register("leaky_relu_backward", "numpy", leaky_relu_backward)
